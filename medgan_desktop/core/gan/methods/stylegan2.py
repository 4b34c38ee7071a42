"""StyleGAN2 (Karras et al. 2020) with the small-data tools of StyleGAN2-ADA.

Non-saturating logistic loss, lazy R1 on reals (every ``r1_interval`` steps,
scaled by the interval, with the optimiser's lr/betas corrected as in the
paper), optional path-length regularisation (off by default: it costs a second
generator pass), DiffAugment or ADA-style adaptive augmentation in front of the
discriminator, and an EMA generator used for sampling.

Every schedule is a function of the ``step`` passed to :meth:`train_step`;
the ADA probability and the path-length mean live in buffers of the ``aug``
network so they are saved and restored with the weights.

Method-specific options (:class:`StyleGAN2Options`, in ``MethodConfig.extra``):
    r1_gamma: R1 weight (default ``0.0002 * size**2 / batch``, the paper's heuristic).
    r1_interval: lazy R1 interval (16; 1 = every step, 0 = off).
    pl_weight: path-length weight (0 = off; 2 in the paper).
    pl_interval: lazy path-length interval (4).
    ada: True to apply the ``diffaugment`` policy with an adaptive probability.
    ada_target: ADA's ``r_t`` target (0.6).
    ada_speed: change of p per real image while off target (1e-4).
    mapping_layers: depth of the mapping MLP (4).
    w_dim: length of ``w`` (``latent_dim``).
    truncation: default truncation psi for :meth:`generate` (1.0 = none).

:meth:`StyleGAN2.default_config` returns the paper's optimiser settings
(lr 0.0025, betas (0, 0.99)), EMA and DiffAugment switched on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from medgan_desktop.core.gan.augment import AdaptiveAugment, diff_augment, validate_policy
from medgan_desktop.core.gan.losses import ns_d, ns_g, r1_penalty, set_requires_grad
from medgan_desktop.core.gan.methods._synthesis import SynthesisMethod
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, MethodSettings, register_method
from medgan_desktop.core.gan.networks.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from medgan_desktop.core.gan.options import MethodOptions, option


@dataclass(frozen=True)
class StyleGAN2Options(MethodOptions):
    r1_gamma: float | None = option(
        None, "R1 γ", "R1 weight γ; auto: 0.0002·size²/batch (the StyleGAN2-ADA heuristic). Set the "
        "R1 interval to 0 to switch R1 off.", hi=100.0, decimals=4, special="auto",
    )
    r1_interval: int = option(16, "R1 interval", "Lazy R1: apply it every N steps (1: every step; 0: off).",
                              lo=0, hi=64)
    ada: bool = option(
        False, "Adaptive augmentation",
        "StyleGAN2-ADA: apply the DiffAugment policy with a probability tuned so that the "
        "discriminator's overfitting measure r_t stays at the target. Needs a DiffAugment policy.",
    )
    ada_target: float = option(0.6, "ADA target r_t", "Target of ADA's overfitting measure r_t (paper: 0.6).",
                               hi=1.0, decimals=2)
    ada_speed: float = option(1e-4, "ADA speed", "Change of p per real image while off target.", hi=1.0,
                              decimals=5, form=False)
    pl_weight: float = option(0.0, "Path length weight", "Path-length regularisation of the generator "
                              "(paper: 2; 0: off). Costs a second generator pass.", hi=10.0, decimals=2)
    pl_interval: int = option(4, "Path length interval", "Lazy path-length interval.", lo=1, hi=64,
                              form=False)
    mapping_layers: int = option(4, "Mapping layers", "Depth of the mapping network z → w.", lo=1, hi=8)
    w_dim: int | None = option(None, "w size", "Length of w (auto: the latent size).", lo=0, hi=1024,
                               special="auto", form=False)
    truncation: float = option(1.0, "Truncation ψ", "Default truncation psi at sampling (1: none).",
                               hi=1.0, decimals=2, form=False)


class AugState(nn.Module):
    """Buffers for state that must survive a resume: ADA's probability and counters, PL mean."""

    ada_p: Tensor
    ada_sign_sum: Tensor
    ada_count: Tensor
    ada_calls: Tensor
    pl_mean: Tensor

    def __init__(self) -> None:
        super().__init__()
        for name in ("ada_p", "ada_sign_sum", "ada_count", "ada_calls", "pl_mean"):
            self.register_buffer(name, torch.zeros((), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - state holder only
        return x

    def save_ada(self, ada: AdaptiveAugment) -> None:
        s = ada.state_dict()
        self.ada_p.fill_(float(s["p"]))
        self.ada_sign_sum.fill_(float(s["sign_sum"]))
        self.ada_count.fill_(float(s["count"]))
        self.ada_calls.fill_(float(s["calls"]))

    def load_ada(self, ada: AdaptiveAugment) -> None:
        ada.load_state_dict(
            {
                "p": float(self.ada_p),
                "sign_sum": float(self.ada_sign_sum),
                "count": int(self.ada_count),
                "calls": int(self.ada_calls),
            }
        )


@register_method("stylegan2")
class StyleGAN2(SynthesisMethod):
    """StyleGAN2 generator + residual discriminator, logistic loss, lazy R1, EMA, DiffAugment/ADA."""

    description: ClassVar[str] = (
        "StyleGAN2 (Karras et al. 2020): mapping network, modulated convolutions, noise inputs, "
        "lazy R1, EMA, DiffAugment/ADA. Truncation trick at sampling time."
    )
    Options: ClassVar[type[StyleGAN2Options]] = StyleGAN2Options
    options: StyleGAN2Options
    supports_labels: ClassVar[bool] = True
    #: The paper's optimiser, EMA and DiffAugment on.
    recommended: ClassVar[MethodSettings] = {
        "lr_g": 0.0025,
        "lr_d": 0.0025,
        "betas": (0.0, 0.99),
        "ema_decay": 0.999,
        "diffaugment": "color,translation,cutout",
    }

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        c, o = config, self.options
        self.G = StyleGAN2Generator(size=c.size, channels=c.channels, latent_dim=c.latent_dim,
                                    w_dim=o.w_dim or c.latent_dim, base_filters=c.base_filters,
                                    num_classes=c.num_classes, mapping_layers=o.mapping_layers).to(device)
        self.D = StyleGAN2Discriminator(
            size=c.size, channels=c.channels, base_filters=c.base_filters, num_classes=c.num_classes
        ).to(device)
        self.aug_state = AugState().to(device)
        self.r1_gamma = o.r1_gamma
        self.r1_interval = o.r1_interval
        self.pl_weight = o.pl_weight
        self.pl_interval = o.pl_interval
        self.pl_decay = 0.01
        # Lazy regularisation: scale lr and betas so the regulariser's sparse steps do not
        # change the effective optimiser (StyleGAN2, appendix B).
        self.opt_g = self._adam(self.G, c.lr_g, self.pl_interval if self.pl_weight > 0 else 0)
        self.opt_d = self._adam(self.D, c.lr_d, self.r1_interval)
        self._with_ema()
        self.policy = validate_policy(c.diffaugment)
        self.ada: AdaptiveAugment | None = None
        if o.ada and self.policy:
            self.ada = AdaptiveAugment(target=o.ada_target, speed=o.ada_speed)
        self._last_g = 0.0

    def _adam(self, net: nn.Module, lr: float, interval: int) -> torch.optim.Adam:
        b1, b2 = self.config.betas
        if interval > 1:
            ratio = interval / (interval + 1)
            lr, b1, b2 = lr * ratio, b1**ratio, b2**ratio
        return torch.optim.Adam(net.parameters(), lr=lr, betas=(b1, b2), eps=1e-8)

    def differentiated_twice(self, name: str) -> bool:
        # R1 (D) and path length (G)
        return (name == "D" and self.r1_interval > 0) or (name == "G" and self.pl_weight > 0)

    def state_networks(self) -> dict[str, nn.Module]:
        return {"aug": self.aug_state}

    @property
    def augment_p(self) -> float:
        """The current augmentation probability (1 for plain DiffAugment, 0 when off)."""
        if not self.policy:
            return 0.0
        return 1.0 if self.ada is None else self.ada.p

    def _aug(self, x: Tensor) -> Tensor:
        if not self.policy:
            return x
        if self.ada is not None:
            return self.ada(x, self.policy)
        return diff_augment(x, self.policy)

    def _d(self, x: Tensor, y: Tensor | None, frozen: bool = False) -> Tensor:
        d = self.D if frozen else self.parallel(self.D)
        out: Tensor = d(self._aug(x), y)
        return out

    def train_step(self, batch: Batch, step: int) -> LossDict:
        real = batch.target
        y = self.batch_labels(batch.labels)
        if self.ada is not None:
            self.aug_state.load_ada(self.ada)
        b = real.shape[0]
        fake = self.parallel(self.G)(self.sample_noise(b), y, update_w_avg=True)

        # Discriminator: logistic loss, plus lazy R1 on (augmented) reals.
        set_requires_grad(self.D, True)
        d_real = self._d(real, y)
        d_fake = self._d(fake.detach(), y)
        loss_d = ns_d(d_real.float(), d_fake.float())
        losses: LossDict = {"d_adv": float(loss_d.detach())}
        if self.r1_interval > 0 and step % self.r1_interval == 0:
            global_b = b * self.dp_world  # the heuristic is per global batch
            gamma = self.r1_gamma if self.r1_gamma is not None else 0.0002 * self.config.size**2 / global_b
            if gamma > 0:
                r1 = r1_penalty(lambda x: self._d(x, y), real)
                loss_d = loss_d + 0.5 * gamma * self.r1_interval * r1
                losses["r1"] = float(r1.detach())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        if self.ada is not None:
            self.ada.update(self.gather_batch(d_real))  # r_t over the global batch
            self.aug_state.save_ada(self.ada)
            losses["ada_p"] = self.ada.p
        losses["d"] = float(loss_d.detach())
        losses["d_real"] = float(d_real.detach().float().mean())
        losses["d_fake"] = float(d_fake.detach().float().mean())

        # Generator: non-saturating loss through the frozen discriminator.
        set_requires_grad(self.D, False)
        loss_g = ns_g(self._d(fake, y, frozen=True).float())
        losses["g"] = float(loss_g.detach())
        if self.pl_weight > 0 and step % self.pl_interval == 0:
            pl = self._path_length(max(1, b // 2), y[: max(1, b // 2)] if y is not None else None)
            loss_g = loss_g + self.pl_weight * self.pl_interval * pl
            losses["pl"] = float(pl.detach())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad(self.D, True)
        self._update_ema(step)
        return losses

    def _path_length(self, n: int, y: Tensor | None) -> Tensor:
        """Path-length penalty ``(|J_w^T r| - a)^2`` with ``a`` a running mean (Karras 2020)."""
        def mapped(g: StyleGAN2Generator, z: Tensor) -> tuple[Tensor, Tensor]:
            w = g.mapping(z, y)
            return w, g.synthesis(w)

        w, img = self.parallel_apply(self.G, mapped, self.sample_noise(n))
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), w, create_graph=True)
        lengths = grad.square().sum(dim=1).sqrt()
        pl_mean = self.aug_state.pl_mean
        with torch.no_grad():
            pl_mean.copy_(pl_mean.lerp(self.gather_batch(lengths).mean().double(), self.pl_decay))
        return (lengths - pl_mean.float()).square().mean()

    # -- inference ---------------------------------------------------------------------
    @torch.no_grad()
    def decode(
        self, z: Tensor, labels: Tensor | None = None, truncation: float | None = None
    ) -> Tensor:
        """Images from given latents with the EMA generator and constant noise.

        Args:
            z: latents ``(n, latent_dim)``.
            labels: class labels ``(n,)`` for a conditional model.
            truncation: psi in [0, 1]; 1 = none, 0 = the average image ``G(w_avg)``.
        """
        psi = float(self.options.truncation if truncation is None else truncation)
        net = self.inference_network()
        y = self.decode_labels(labels)
        out: Tensor = net(z.to(self.device), y, truncation=psi, noise_mode="const")
        return out.float().clamp(-1.0, 1.0)
