"""Progressive growing of GANs (Karras et al., ICLR 2018), from 8x8 up to ``config.size``.

The resolution schedule is a pure function of the training step
(:func:`stage_at`): 8x8 trains for ``phase_steps`` steps, then each further
resolution fades in over ``phase_steps`` steps (``alpha`` rising linearly from
0 to 1) and is stabilised for ``phase_steps`` more. :meth:`Progressive.train_step`
sets the stage from the step it is given, so a resumed run continues exactly
where it stopped. Real images are downsampled to the active resolution and, while
fading in, blended with their blurred lower-resolution version as in the paper.

Method-specific options (``MethodConfig.extra``):
    phase_steps: steps per fade-in and per stabilisation phase (500).
    loss: "wgan" (the paper's WGAN-GP, default), "ns", "lsgan" or "hinge".
    gp_lambda: gradient-penalty weight for "wgan" (10).
    drift: the paper's drift term ``eps * E[D(x)^2]`` (0.001).
    r1_gamma: R1 weight for the other losses (0 = off).

:meth:`Progressive.default_config` returns the paper's optimiser (lr 0.001,
betas (0, 0.99)) with generator EMA on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan_desktop.core.gan.augment import diff_augment, validate_policy
from medgan_desktop.core.gan.ema import EMA
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
from medgan_desktop.core.gan.networks.progressive import (
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    resolutions,
)

RECOMMENDED: dict[str, Any] = {
    "lr_g": 0.001,
    "lr_d": 0.001,
    "betas": (0.0, 0.99),
    "ema_decay": 0.999,
}


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
class Progressive(GanMethod):
    """ProGAN: growing generator/discriminator, WGAN-GP + drift, optional EMA and DiffAugment."""

    task: ClassVar[Task] = Task.SYNTHESIS
    description: ClassVar[str] = (
        "Progressive growing (Karras et al. 2018): trains 8x8 first and fades in each larger "
        "resolution; WGAN-GP loss. Stable on small images, slower to reach full size."
    )

    @classmethod
    def default_config(cls, **overrides: Any) -> MethodConfig:
        """A :class:`MethodConfig` with the paper's optimiser and EMA on."""
        return MethodConfig(**{**RECOMMENDED, **overrides})

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        c = config
        self.conditional = c.num_classes > 0
        self.phase_steps = int(c.option("phase_steps", 500))
        stage_at(0, c.size, self.phase_steps)  # validates size and phase_steps
        self.loss_kind = str(c.option("loss", "wgan"))
        self._d_loss, self._g_loss = adversarial_losses(self.loss_kind)
        self.gp_lambda = float(c.option("gp_lambda", 10.0 if self.loss_kind == "wgan" else 0.0))
        self.drift = float(c.option("drift", 0.001 if self.loss_kind == "wgan" else 0.0))
        self.r1_gamma = float(c.option("r1_gamma", 0.0))
        self.G = ProgressiveGenerator(
            size=c.size,
            channels=c.channels,
            latent_dim=c.latent_dim,
            base_filters=c.base_filters,
            num_classes=c.num_classes,
        ).to(device)
        self.D = ProgressiveDiscriminator(
            size=c.size, channels=c.channels, base_filters=c.base_filters, num_classes=c.num_classes
        ).to(device)
        self.G.set_stage(*stage_at(0, c.size, self.phase_steps))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=c.betas, eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=c.betas, eps=1e-8)
        self.ema = EMA(self.G, c.ema_decay) if c.ema_decay > 0 else None
        self.policy = validate_policy(c.diffaugment)

    # -- data parallel -----------------------------------------------------------------
    def parallel_spec(self, name: str) -> ParallelSpec:
        # Blocks above the active resolution get no gradient; GP/R1 differentiate D twice.
        penalised = name == "D" and (self.gp_lambda > 0 or self.r1_gamma > 0)
        return ParallelSpec(sync_batchnorm=not penalised, find_unused_parameters=True)

    def sample_noise(self, b: int) -> Tensor:
        """Each process draws the global batch of noise and keeps its slice (see DCGAN)."""
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
        y = batch.labels if self.conditional else None
        if self.conditional and y is None:
            raise ValueError("class-conditional progressive GAN needs labels in the batch")
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
        loss_d = self._d_loss(d_real.float(), d_fake.float())
        losses: LossDict = {"d_adv": float(loss_d.detach())}
        if self.gp_lambda > 0:
            gp = gradient_penalty(critic, real, fake.detach())
            loss_d = loss_d + self.gp_lambda * gp
            losses["gp"] = float(gp.detach())
        if self.r1_gamma > 0:
            r1 = r1_penalty(critic, real)
            loss_d = loss_d + 0.5 * self.r1_gamma * r1
            losses["r1"] = float(r1.detach())
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
        if self.ema is not None:
            self.ema.update(self.G, step=step)  # also copies the stage buffers
        losses["g"] = float(loss_g.detach())
        losses["resolution"] = float(res)
        losses["alpha"] = alpha
        return losses

    # -- inference ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` noise vectors drawn on the CPU, so a seed gives the same images on any device."""
        return torch.randn(n, self.config.latent_dim, generator=generator)

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Full-size images from given latents at the stage the network has grown to."""
        net = self.inference_network()
        y = None
        if self.conditional:
            if labels is None:
                raise ValueError("class-conditional progressive GAN: pass a label")
            y = labels.to(self.device, torch.long)
        out: Tensor = net(z.to(self.device), y)
        return out.float().clamp(-1.0, 1.0)

    @torch.no_grad()
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``n`` images in [-1, 1] at ``config.size``; the same generator state gives the same images."""
        z = self.latents(n, generator)
        if self.conditional and labels is None:
            labels = torch.randint(0, self.config.num_classes, (n,), generator=generator)
        return self.decode(z, labels)
