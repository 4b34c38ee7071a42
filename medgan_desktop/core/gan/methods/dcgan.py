"""DCGAN (Radford et al. 2016) and the shared noise -> image adversarial method.

:class:`AdversarialSynthesis` composes the DCGAN networks (:mod:`..networks.dcgan`) with a
loss pair (:mod:`..losses`) and the small-data options every synthesis method here shares:
DiffAugment, generator EMA, R1 / gradient penalties and spectral normalisation. LSGAN,
WGAN-GP and the conditional GAN are subclasses that change defaults only.

Method-specific options (``MethodConfig.extra``):
    loss: "ns" | "lsgan" | "wgan" | "hinge" (default per method).
    spectral_norm: spectral normalisation in the discriminator (bool).
    d_norm / g_norm: "batch" | "layer" | "none".
    gp_lambda: weight of the WGAN-GP gradient penalty (0 = off).
    r1_gamma: R1 penalty weight gamma (penalty * gamma / 2; 0 = off).
    n_critic: discriminator updates per generator update.
    g_cond: "cbn" (conditional batch norm) or "concat" (label embedding + z).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from medgan_desktop.core.gan.losses import (
    adversarial_losses,
    gradient_penalty,
    r1_penalty,
    set_requires_grad,
)
from medgan_desktop.core.gan.methods.base import (
    Batch,
    GanMethod,
    LossDict,
    MethodConfig,
    ParallelSpec,
    Task,
    register_method,
)
from medgan_desktop.core.gan.networks.dcgan import DCGANDiscriminator, DCGANGenerator


class AdversarialSynthesis(GanMethod):
    """Unconditional or class-conditional noise -> image GAN on the DCGAN networks.

    Subclasses override the class defaults below; every default can be changed through
    ``MethodConfig.extra`` (see the module docstring).
    """

    task: ClassVar[Task] = Task.SYNTHESIS
    default_loss: ClassVar[str] = "ns"
    default_d_norm: ClassVar[str] = "batch"
    default_g_norm: ClassVar[str] = "batch"
    default_spectral: ClassVar[bool] = False
    default_gp_lambda: ClassVar[float] = 0.0
    default_n_critic: ClassVar[int] = 1
    default_r1_gamma: ClassVar[float] = 0.0
    conditional: ClassVar[bool] = False
    recommended: ClassVar[dict[str, Any]] = {}

    @classmethod
    def default_config(cls, **overrides: Any) -> MethodConfig:
        """A :class:`MethodConfig` with this method's published optimiser settings."""
        return MethodConfig(**{**cls.recommended, **overrides})

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        c = config
        if self.conditional and c.num_classes < 1:
            raise ValueError(
                f"{self.name} is class-conditional: num_classes must be >= 1 (label data by subfolder)"
            )
        num_classes = c.num_classes if self.conditional else 0
        self.loss_kind = str(c.option("loss", self.default_loss))
        self._d_loss, self._g_loss = adversarial_losses(self.loss_kind)
        self.gp_lambda = float(c.option("gp_lambda", self.default_gp_lambda))
        self.r1_gamma = float(c.option("r1_gamma", self.default_r1_gamma))
        self.n_critic = max(1, int(c.option("n_critic", self.default_n_critic)))
        self.G = DCGANGenerator(
            latent_dim=c.latent_dim,
            channels=c.channels,
            size=c.size,
            base_filters=c.base_filters,
            num_classes=num_classes,
            cond=str(c.option("g_cond", "cbn")),
            norm=str(c.option("g_norm", self.default_g_norm)),
        ).to(device)
        self.D = DCGANDiscriminator(
            channels=c.channels,
            size=c.size,
            base_filters=c.base_filters,
            num_classes=num_classes,
            norm=str(c.option("d_norm", self.default_d_norm)),
            spectral=bool(c.option("spectral_norm", self.default_spectral)),
        ).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=c.betas)
        self.ema: Any = None
        if c.ema_decay > 0:
            from medgan_desktop.core.gan.ema import EMA

            self.ema = EMA(self.G, c.ema_decay)
        self._augment: Any = None
        if c.diffaugment:
            from medgan_desktop.core.gan.augment import diff_augment

            policy = c.diffaugment
            self._augment = lambda x: diff_augment(x, policy)
        self._last_g = 0.0

    # -- data parallel -----------------------------------------------------------------
    def parallel_spec(self, name: str) -> ParallelSpec:
        # SyncBatchNorm has no double backward: a penalised D keeps per-process batch norm.
        penalised = name == "D" and (self.gp_lambda > 0 or self.r1_gamma > 0)
        return ParallelSpec(sync_batchnorm=not penalised)

    def sample_noise(self, b: int) -> torch.Tensor:
        """Each process draws the *global* batch of noise from the (identically seeded) RNG
        and keeps its slice, so N processes see exactly the noise one process would."""
        z = torch.randn(b * self.dp_world, self.config.latent_dim, device=self.device)
        return z[self.dp_rank * b : (self.dp_rank + 1) * b]

    # -- GanMethod ---------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        if self.ema is not None:
            nets["G_ema"] = self.ema.shadow
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.ema.shadow if self.ema is not None else self.G

    def train(self, mode: bool = True) -> None:
        self.G.train(mode)
        self.D.train(mode)
        if self.ema is not None:
            self.ema.shadow.eval()

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self._augment(x) if self._augment is not None else x

    def train_step(self, batch: Batch, step: int) -> LossDict:
        real = batch.target
        y = batch.labels if self.conditional else None
        if self.conditional and y is None:
            raise ValueError(f"{self.name} needs class labels in the batch")
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
        loss_d = self._d_loss(d_real.float(), d_fake.float())
        losses: LossDict = {"d_adv": float(loss_d.detach())}
        if self.gp_lambda > 0:
            gp = gradient_penalty(lambda x: d(x, y), real_in, fake_in)
            loss_d = loss_d + self.gp_lambda * gp
            losses["gp"] = float(gp.detach())
        if self.r1_gamma > 0:
            r1 = r1_penalty(lambda x: d(x, y), real_in)
            loss_d = loss_d + 0.5 * self.r1_gamma * r1
            losses["r1"] = float(r1.detach())
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
            if self.ema is not None:
                self.ema.update(self.G, step=step)
            self._last_g = float(loss_g.detach())
        losses["g"] = self._last_g
        return losses

    # -- inference ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

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

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images from given latents (eval mode; the EMA generator when EMA is on)."""
        net = self.inference_network()
        was_training = net.training
        net.eval()
        try:
            y = None
            if self.conditional:
                if labels is None:
                    raise ValueError(f"{self.name} is class-conditional: pass a label")
                y = labels.to(self.device, torch.long)
            out: torch.Tensor = net(z.to(self.device), y)
        finally:
            net.train(was_training)
        return out.float().clamp(-1.0, 1.0)

    @torch.no_grad()
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = self.latents(n, generator)
        if self.conditional and labels is None:
            labels = torch.randint(0, self.config.num_classes, (n,), generator=generator)
        return self.decode(z, labels)


@register_method("dcgan")
class DCGAN(AdversarialSynthesis):
    description = (
        "DCGAN (Radford et al. 2016): transposed-conv generator, BCE loss. The classic baseline."
    )
