"""Progressive growing of GANs (Karras et al., ICLR 2018), from 8x8 up to ``config.size``.

The resolution schedule is a pure function of the training step
(:func:`stage_at`): 8x8 trains for ``phase_steps`` steps, then each further
resolution fades in over ``phase_steps`` steps (``alpha`` rising linearly from
0 to 1) and is stabilised for ``phase_steps`` more. :meth:`Progressive.train_step`
sets the stage from the step it is given, so a resumed run continues exactly
where it stopped. Real images are downsampled to the active resolution and, while
fading in, blended with their blurred lower-resolution version as in the paper.

Method-specific options (:class:`ProgressiveOptions`, in ``MethodConfig.extra``):
    phase_steps: steps per fade-in and per stabilisation phase (500).
    loss: "wgan" (the paper's WGAN-GP, default), "ns", "lsgan" or "hinge".
    gp_lambda: gradient-penalty weight (default 10 for "wgan", 0 for the others).
    drift: the paper's drift term ``eps * E[D(x)^2]`` (default 0.001 for "wgan", else 0).
    r1_gamma: R1 weight (0 = off).

:meth:`Progressive.default_config` returns the paper's optimiser (lr 0.001,
betas (0, 0.99)) with generator EMA on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from medgan_desktop.core.gan.augment import diff_augment, validate_policy
from medgan_desktop.core.gan.losses import AdvLoss, adversarial_losses, penalised_d_loss, set_requires_grad
from medgan_desktop.core.gan.methods._synthesis import SynthesisMethod
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, MethodSettings, register_method
from medgan_desktop.core.gan.networks.progressive import ProgressiveDiscriminator, ProgressiveGenerator, resolutions
from medgan_desktop.core.gan.options import MethodOptions, option


@dataclass(frozen=True)
class ProgressiveOptions(MethodOptions):
    phase_steps: int = option(
        500, "Phase steps", "Steps per fade-in and per stabilisation phase; 8×8 trains first, each "
        "larger size fades in over this many steps.", lo=1, hi=1_000_000,
    )
    loss: str = option("wgan", "Loss", "Adversarial loss: wgan (the paper's), ns, lsgan or hinge.",
                       choices=tuple(a.value for a in AdvLoss), form=False)
    gp_lambda: float | None = option(
        None, "GP weight λ", "WGAN-GP gradient-penalty weight; auto: 10 (the paper's) with the wgan "
        "loss, 0 with the others.", lo=-1.0, hi=100.0, special="auto")
    drift: float | None = option(
        None, "Drift ε", "The paper's drift term ε·E[D(x)²] that keeps critic outputs near 0; auto: "
        "0.001 with the wgan loss, 0 with the others.", lo=-1.0, hi=1.0, decimals=4, special="auto")
    r1_gamma: float = option(0.0, "R1 γ", "R1 penalty weight (0: off).", hi=100.0, form=False)


def stage_at(step: int, size: int, phase_steps: int) -> tuple[int, float]:
    """The ``(resolution, alpha)`` trained at ``step``.

    Args:
        step: training step (0-based).
        size: final resolution.
        phase_steps: length of each fade-in and stabilisation phase.

    Returns:
        The active resolution and the fade-in weight of its newest layers (1 when stable).
    """
    if phase_steps < 1:
        raise ValueError("phase_steps must be >= 1")
    res_list = resolutions(size)
    if step < phase_steps:
        return res_list[0], 1.0
    k, within = divmod(step - phase_steps, 2 * phase_steps)
    level = k + 1
    if level >= len(res_list):
        return res_list[-1], 1.0
    alpha = min(1.0, within / phase_steps)
    return res_list[level], alpha


def steps_to_full_size(size: int, phase_steps: int) -> int:
    """The first step at which ``size`` is trained fully faded in."""
    return 2 * phase_steps * (len(resolutions(size)) - 1)


@register_method("progressive")
class Progressive(SynthesisMethod):
    """ProGAN: growing generator/discriminator, WGAN-GP + drift, optional EMA and DiffAugment."""

    description: ClassVar[str] = (
        "Progressive growing (Karras et al. 2018): trains 8x8 first and fades in each larger "
        "resolution; WGAN-GP loss. Stable on small images, slower to reach full size."
    )
    Options: ClassVar[type[ProgressiveOptions]] = ProgressiveOptions
    options: ProgressiveOptions
    supports_labels: ClassVar[bool] = True
    G: ProgressiveGenerator
    D: ProgressiveDiscriminator
    #: The paper's optimiser, and EMA on.
    recommended: ClassVar[MethodSettings] = {
        "lr_g": 0.001,
        "lr_d": 0.001,
        "betas": (0.0, 0.99),
        "ema_decay": 0.999,
    }
    #: The blocks above the active resolution get no gradient.
    grows: ClassVar[bool] = True

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        c, o = config, self.options
        self.phase_steps = o.phase_steps
        stage_at(0, c.size, self.phase_steps)  # validates size and phase_steps
        self.loss_kind = o.loss
        self._d_loss, self._g_loss = adversarial_losses(self.loss_kind)
        wgan = self.loss_kind == "wgan"
        self.gp_lambda = o.gp_lambda if o.gp_lambda is not None else (10.0 if wgan else 0.0)
        self.drift = o.drift if o.drift is not None else (0.001 if wgan else 0.0)
        self.r1_gamma = o.r1_gamma
        self.G = ProgressiveGenerator(size=c.size, channels=c.channels, latent_dim=c.latent_dim,
                                      base_filters=c.base_filters, num_classes=c.num_classes).to(device)
        self.D = ProgressiveDiscriminator(
            size=c.size, channels=c.channels, base_filters=c.base_filters, num_classes=c.num_classes
        ).to(device)
        self.G.set_stage(*stage_at(0, c.size, self.phase_steps))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=c.betas, eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=c.betas, eps=1e-8)
        self._with_ema()
        self.policy = validate_policy(c.diffaugment)

    def differentiated_twice(self, name: str) -> bool:
        return name == "D" and (self.gp_lambda > 0 or self.r1_gamma > 0)  # GP, R1

    def stage(self, step: int) -> tuple[int, float]:
        """The ``(resolution, alpha)`` this method trains at ``step``."""
        return stage_at(step, self.config.size, self.phase_steps)

    def _aug(self, x: Tensor) -> Tensor:
        return diff_augment(x, self.policy) if self.policy else x

    @staticmethod
    def real_at(real: Tensor, res: int, alpha: float) -> Tensor:
        """Reals at ``res``, blended with their 2x-blurred version while fading in."""
        if real.shape[-1] != res:
            real = F.interpolate(real, size=(res, res), mode="area")
        if alpha < 1.0 and res > 8:
            low = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2.0, mode="nearest")
            real = low.lerp(real, alpha)
        return real

    def train_step(self, batch: Batch, step: int) -> LossDict:
        res, alpha = self.stage(step)
        self.G.set_stage(res, alpha)
        y = self.batch_labels(batch.labels)
        real = self.real_at(batch.target, res, alpha)
        b = real.shape[0]
        fake = self.parallel(self.G)(self.sample_noise(b), y, full_size=False)

        def critic(x: Tensor, frozen: bool = False) -> Tensor:
            d = self.D if frozen else self.parallel(self.D)
            out: Tensor = d(self._aug(x), y, alpha)
            return out

        set_requires_grad(self.D, True)
        d_real = critic(real)
        d_fake = critic(fake.detach())
        loss_d, losses = penalised_d_loss(self._d_loss, critic, real, fake.detach(), d_real, d_fake,
                                          self.gp_lambda, self.r1_gamma)
        if self.drift > 0:
            loss_d = loss_d + self.drift * d_real.float().square().mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        losses["d"] = float(loss_d.detach())

        set_requires_grad(self.D, False)
        loss_g = self._g_loss(critic(fake, frozen=True).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad(self.D, True)
        self._update_ema(step)  # also copies the stage buffers
        losses["g"] = float(loss_g.detach())
        losses["resolution"] = float(res)
        losses["alpha"] = alpha
        return losses

    # -- inference ---------------------------------------------------------------------
    # decode/generate: the base class's, at the stage the network has grown to.
