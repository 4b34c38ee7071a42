"""Pieces shared by the image-to-image translation methods.

Kept private to the translation methods: the image pool of CycleGAN/UNIT,
freezing networks during the other player's step, the adversarial criteria
(vanilla and least-squares) and the base class wiring ``translate()``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from medgan_desktop.core.gan.methods.base import Batch, GanMethod, Task


class GanLoss(StrEnum):
    """Adversarial criterion."""

    VANILLA = "vanilla"  # BCE with logits (pix2pix)
    LSGAN = "lsgan"  # least squares (CycleGAN, UNIT)


def adversarial(logits: torch.Tensor, real: bool, kind: GanLoss | str) -> torch.Tensor:
    """The adversarial loss of ``logits`` against the label real/fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if GanLoss(kind) == GanLoss.LSGAN:
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    """Freeze (``False``) or unfreeze networks, e.g. the discriminators during the G step."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


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
        for img in images.detach():
            img = img.unsqueeze(0)
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


def require_source(batch: Batch) -> torch.Tensor:
    if batch.source is None:
        raise ValueError("a translation method needs batch.source (the input modality)")
    return batch.source


class TranslationMethod(GanMethod):
    """Base of the translation methods: ``translate`` runs :meth:`inference_network`."""

    task = Task.TRANSLATION

    @torch.no_grad()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        if source.ndim != 4 or source.shape[1] != self.config.in_channels:
            raise ValueError(
                f"{self.name} expects (B, {self.config.in_channels}, H, W) input, "
                f"got {tuple(source.shape)}"
            )
        return self.inference_network()(source.to(self.device))
