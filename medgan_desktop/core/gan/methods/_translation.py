"""Pieces shared by the image-to-image translation methods.

Kept private to the translation methods: the image pool of CycleGAN/UNIT, the masked L1,
the option groups of the U-Net generator and the PatchGAN discriminator, the base class
wiring ``translate()``, the U-Net against a conditional PatchGAN of pix2pix and the
distilled students, and the per-domain discriminators of the unpaired methods. (Adversarial criteria and freezing are in
:mod:`medgan_desktop.core.gan.losses`, shared with the synthesis methods.)
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medgan_desktop.core.gan.losses import AdvLoss, adversarial, set_requires_grad
from medgan_desktop.core.gan.methods.base import Batch, GanMethod, MethodConfig, Task
from medgan_desktop.core.gan.networks.patchgan import PatchDiscriminator
from medgan_desktop.core.gan.networks.unet import UNetGenerator, max_depth
from medgan_desktop.core.gan.options import MethodOptions, option

#: Adversarial criteria a translation method accepts ("vanilla": the pix2pix name of ns).
_LOSSES = (*(a.value for a in AdvLoss), "vanilla")


@dataclass(frozen=True)
class UNetOptions(MethodOptions):
    """The U-Net generator (pix2pix, the L1 baseline, distilled students) and its L1 mask."""

    depth: int | None = option(
        None, "U-Net depth", "Down-sampling levels of the U-Net (auto: the deepest that fits, up to 8).",
        lo=0, hi=8, special="auto",
    )
    norm: str = option("batch", "Normalisation", "Normalisation layers of the generator.",
                       choices=("batch", "instance", "none"))
    dropout: float = option(0.0, "Dropout", "Dropout in the inner decoder levels (pix2pix: 0.5).",
                            hi=0.9, decimals=2)
    mask_weight: float = option(
        0.0, "Body weight", "Extra L1 weight inside the body mask (0: the whole image counts alike).",
        hi=100.0, decimals=2,
    )
    residual: bool = option(
        False, "Residual", "Learn the correction to the input instead of the whole image (input + "
        "output): for tasks within one modality (denoising, super-resolution), set by the task.",
    )


@dataclass(frozen=True)
class PatchOptions(MethodOptions):
    """The PatchGAN discriminator(s) of a translation method."""

    d_layers: int | None = option(
        None, "PatchGAN layers", "Discriminator depth (auto: 3, i.e. 70x70 patches, from 64 px).",
        lo=0, hi=6, special="auto", form=False,
    )
    d_filters: int | None = option(
        None, "PatchGAN width", "Discriminator base filters (auto: the generator's).",
        lo=0, hi=512, special="auto", form=False,
    )
    d_norm: str = option("instance", "PatchGAN norm", "Normalisation of the discriminator.",
                         choices=("batch", "instance", "none"), form=False)


@dataclass(frozen=True)
class UNetPatchOptions(UNetOptions, PatchOptions):
    """A U-Net generator against a conditional PatchGAN (pix2pix, distilled students)."""


class ResidualUNet(UNetGenerator):
    """A U-Net that outputs the input's centre slice plus its correction (clipped to [-1, 1]).
    The last layer starts at zero, so the network starts as the identity: denoising and
    super-resolution learn what to change. The weights are the U-Net's (same names)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = [m for m in self.up[-1].modules() if isinstance(m, nn.ConvTranspose2d)][-1]
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        out: torch.Tensor = (x[:, c:c + 1] + super().forward(x)).clamp(-1.0, 1.0)
        return out


def build_unet(config: MethodConfig, opts: UNetOptions) -> UNetGenerator:
    """The U-Net generator described by ``config`` and ``opts``."""
    cls = ResidualUNet if opts.residual else UNetGenerator
    return cls(in_channels=config.in_channels, out_channels=config.channels, base_filters=config.base_filters,
               depth=opts.depth if opts.depth else min(max_depth(config.size), 8), norm=opts.norm,
               dropout=opts.dropout)


def build_patch_d(in_channels: int, config: MethodConfig, opts: PatchOptions) -> PatchDiscriminator:
    """A PatchGAN discriminator on ``in_channels`` described by ``opts``."""
    return PatchDiscriminator(in_channels=in_channels, base_filters=opts.d_filters or config.base_filters,
                              n_layers=opts.d_layers or default_d_layers(config.size), norm=opts.d_norm)


def domain_discriminators(
    config: MethodConfig, opts: PatchOptions, device: torch.device
) -> tuple[PatchDiscriminator, PatchDiscriminator, torch.optim.Adam]:
    """Unpaired methods: a PatchGAN per domain (A: ``in_channels``, B: ``channels``) and one
    Adam over both."""
    d_a = build_patch_d(config.in_channels, config, opts).to(device)
    d_b = build_patch_d(config.channels, config, opts).to(device)
    return d_a, d_b, adam([*d_a.parameters(), *d_b.parameters()], config.lr_d, config.betas)


def masked_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, mask_weight: float
) -> torch.Tensor:
    """L1 over the image, with voxels inside ``mask`` weighted ``1 + mask_weight``."""
    err = (pred - target).abs()
    if mask is None or mask_weight <= 0:
        return err.mean()
    w = 1.0 + mask_weight * mask.to(err.dtype)
    return (err * w).sum() / (w.sum() * err.shape[1])


class ImagePool:
    """A buffer of previously generated images (Shrivastava et al. 2017).

    With probability 1/2 the discriminator sees an older fake instead of the
    newest, which damps oscillation. ``size=0`` disables the pool.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self._rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        out: list[torch.Tensor] = []
        for img in images.detach().split(1):
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self._rng.random() < 0.5:
                i = self._rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)


def default_d_layers(size: int) -> int:
    """PatchGAN depth for an image side: 3 (70x70 patches) from 64 px, fewer below."""
    return max(1, min(3, size.bit_length() - 4))


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(list(params), lr=lr, betas=(float(betas[0]), float(betas[1])))


class TranslationMethod(GanMethod):
    """Base of the translation methods: ``translate`` runs :meth:`inference_network`."""

    task = Task.TRANSLATION

    @staticmethod
    def source(batch: Batch) -> torch.Tensor:
        """The batch's input images (``batch.source``), which a translation method needs."""
        if batch.source is None:
            raise ValueError("a translation method needs batch.source (the input modality)")
        return batch.source

    @torch.no_grad()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        if source.ndim != 4 or source.shape[1] != self.config.in_channels:
            raise ValueError(
                f"{self.name} expects (B, {self.config.in_channels}, H, W) input, "
                f"got {tuple(source.shape)}"
            )
        out: torch.Tensor = self.inference_network()(source.to(self.device))
        return out


class UNetPatchGan(TranslationMethod):
    """A U-Net ``G(x)`` against a conditional PatchGAN ``D(x, y)`` on (source, image) pairs.

    A subclass sets ``gan_loss`` and writes its step from :meth:`d_step`,
    :meth:`g_adversarial` and :meth:`g_update`.
    """

    options: UNetPatchOptions
    gan_loss: AdvLoss

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        o = self.options
        self.G = build_unet(config, o).to(device)
        self.D = build_patch_d(config.in_channels + config.channels, config, o).to(device)
        self.opt_g = adam(self.G.parameters(), config.lr_g, config.betas)
        self.opt_d = adam(self.D.parameters(), config.lr_d, config.betas)

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.G

    def d_step(self, x: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """One discriminator update, ``(x, real)`` pairs against ``(x, fake)``; its loss."""
        set_requires_grad(self.D, True)
        self.opt_d.zero_grad(set_to_none=True)
        d = self.parallel(self.D)
        loss_d = 0.5 * (
            adversarial(d(torch.cat([x, real], 1)), True, self.gan_loss)
            + adversarial(d(torch.cat([x, fake.detach()], 1)), False, self.gan_loss)
        )
        loss_d.backward()
        self.opt_d.step()
        return loss_d

    def g_adversarial(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Start the generator step: D frozen (called directly, not through parallel()),
        gradients cleared; the adversarial loss of ``(x, fake)``."""
        set_requires_grad(self.D, False)
        self.opt_g.zero_grad(set_to_none=True)
        return adversarial(self.D(torch.cat([x, fake], 1)), True, self.gan_loss)

    def g_update(self, loss_g: torch.Tensor) -> None:
        """Finish the generator step with ``loss_g``; D is trainable again."""
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad(self.D, True)
