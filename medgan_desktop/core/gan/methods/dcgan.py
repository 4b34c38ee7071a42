"""DCGAN (Radford et al. 2016) and the shared noise -> image adversarial method.

:class:`AdversarialSynthesis` composes the DCGAN networks (:mod:`..networks.dcgan`) with a
loss pair (:mod:`..losses`) and the small-data options every synthesis method here shares:
DiffAugment, generator EMA, R1 / gradient penalties and spectral normalisation. LSGAN,
WGAN-GP and the conditional GAN are subclasses that change defaults only.

Method-specific options (:class:`DCGANOptions`; the subclasses change their defaults):
    loss: "ns" | "lsgan" | "wgan" | "hinge".
    spectral_norm: spectral normalisation in the discriminator (bool).
    d_norm / g_norm: "batch" | "layer" | "none".
    gp_lambda: weight of the WGAN-GP gradient penalty (0 = off).
    r1_gamma: R1 penalty weight gamma (penalty * gamma / 2; 0 = off).
    n_critic: discriminator updates per generator update.
    g_cond: "cbn" (conditional batch norm) or "concat" (label embedding + z).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from medgan_desktop.core.gan.augment import diff_augment
from medgan_desktop.core.gan.losses import AdvLoss, adversarial_losses, penalised_d_loss, set_requires_grad
from medgan_desktop.core.gan.methods._synthesis import SynthesisMethod
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_desktop.core.gan.options import MethodOptions, option

_SPECTRAL = ("Spectral normalisation of the discriminator (Miyato et al. 2018): bounds its slope; "
             "steadier on small data.")
_R1 = ("R1 penalty on real images (Mescheder et al. 2018), weight γ (adds γ/2·|∇D(x)|²); 0: off. "
       "Try 0.1–10 on small data.")
_NORMS = ("batch", "layer", "none")


@dataclass(frozen=True)
class DCGANOptions(MethodOptions):
    loss: str = option("ns", "Loss", "Adversarial loss: ns (BCE), lsgan, wgan or hinge.",
                       choices=tuple(a.value for a in AdvLoss), form=False)
    spectral_norm: bool = option(False, "Spectral norm", _SPECTRAL)
    r1_gamma: float = option(0.0, "R1 γ", _R1, hi=100.0)
    d_norm: str = option("batch", "D normalisation", "Normalisation of the discriminator.",
                         choices=_NORMS, form=False)
    g_norm: str = option("batch", "G normalisation", "Normalisation of the generator.",
                         choices=_NORMS, form=False)
    gp_lambda: float = option(0.0, "GP weight λ", "Weight of the WGAN-GP gradient penalty (0: off).",
                              hi=100.0, form=False)
    n_critic: int = option(1, "Critic steps", "Discriminator updates per generator update.", lo=1,
                           hi=20, form=False)
    g_cond: str = option("cbn", "Label input", "How the generator sees the class (class-conditional "
                         "methods): conditional batch norm (cbn) or an embedding concatenated to the "
                         "noise (concat).", choices=("cbn", "concat"), form=False)


class AdversarialSynthesis(SynthesisMethod):
    """Unconditional or class-conditional noise -> image GAN on the DCGAN networks.

    Subclasses change the defaults of :class:`DCGANOptions` (their own ``Options``) and
    their published optimiser settings (``recommended``); every option can be set through
    ``MethodConfig.extra`` (see the module docstring).
    """

    Options: ClassVar[type[DCGANOptions]] = DCGANOptions
    options: DCGANOptions

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        c, o = config, self.options
        num_classes = c.num_classes if self.uses_labels else 0
        self.loss_kind = o.loss
        self._d_loss, self._g_loss = adversarial_losses(self.loss_kind)
        self.gp_lambda = o.gp_lambda
        self.r1_gamma = o.r1_gamma
        self.n_critic = max(1, o.n_critic)
        self.G = DCGANGenerator(latent_dim=c.latent_dim, channels=c.channels, size=c.size, base_filters=c.base_filters,
                                num_classes=num_classes, cond=o.g_cond, norm=o.g_norm).to(device)
        self.D = DCGANDiscriminator(channels=c.channels, size=c.size, base_filters=c.base_filters,
                                    num_classes=num_classes, norm=o.d_norm, spectral=o.spectral_norm).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=c.betas)
        self._with_ema()
        self._augment: Callable[[torch.Tensor], torch.Tensor] | None = None
        if c.diffaugment:
            policy = c.diffaugment
            self._augment = lambda x: diff_augment(x, policy)
        self._last_g = 0.0

    def differentiated_twice(self, name: str) -> bool:
        return name == "D" and (self.gp_lambda > 0 or self.r1_gamma > 0)  # GP, R1

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self._augment(x) if self._augment is not None else x

    def train_step(self, batch: Batch, step: int) -> LossDict:
        real = batch.target
        y = self.batch_labels(batch.labels)
        b = real.shape[0]
        z = self.sample_noise(b)
        fake = self.parallel(self.G)(z, y)

        # Discriminator update (generator output detached).
        set_requires_grad(self.D, True)
        d = self.parallel(self.D)
        real_in = self._aug(real)
        fake_in = self._aug(fake.detach())
        d_real = d(real_in, y)
        d_fake = d(fake_in, y)
        loss_d, losses = penalised_d_loss(self._d_loss, lambda x: d(x, y), real_in, fake_in, d_real, d_fake,
                                          self.gp_lambda, self.r1_gamma)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        losses["d"] = float(loss_d.detach())
        losses["d_real"] = float(d_real.detach().float().mean())
        losses["d_fake"] = float(d_fake.detach().float().mean())

        # Generator update every n_critic steps, discriminator frozen.
        if step % self.n_critic == 0:
            set_requires_grad(self.D, False)  # frozen: called directly, not through parallel()
            loss_g = self._g_loss(self.D(self._aug(fake), y).float())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            set_requires_grad(self.D, True)
            self._update_ema(step)
            self._last_g = float(loss_g.detach())
        losses["g"] = self._last_g
        return losses

    # -- inference ---------------------------------------------------------------------
    def latents(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """``n`` noise vectors drawn on the CPU (so a seed gives the same images on any device);
        with ``truncation`` t, entries with ``|z| > t`` are redrawn (BigGAN's truncation trick)."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        if truncation is not None and truncation > 0:
            for _ in range(100):
                bad = z.abs() > truncation
                if not bool(bad.any()):
                    break
                z = torch.where(bad, torch.randn(z.shape, generator=generator), z)
            z = z.clamp(-truncation, truncation)
        return z


@register_method("dcgan")
class DCGAN(AdversarialSynthesis):
    description = (
        "DCGAN (Radford et al. 2016): transposed-conv generator, BCE loss. The classic baseline."
    )
