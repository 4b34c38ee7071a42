"""DCGAN-style generator and discriminator (Radford et al. 2016), parameterised.

One pair of networks serves DCGAN, LSGAN, WGAN-GP and the class-conditional GAN:

* any square power-of-two size from 16 to 256, one or three channels;
* optional spectral normalisation (Miyato et al. 2018) in the discriminator;
* discriminator normalisation "batch" (DCGAN), "layer" (WGAN-GP: batch norm breaks the
  per-sample gradient penalty) or "none";
* optional class conditioning: conditional batch norm (or an embedding concatenated to the
  noise) in the generator and a projection discriminator (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from enum import StrEnum

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class Norm(StrEnum):
    BATCH = "batch"
    LAYER = "layer"
    NONE = "none"


class GenCond(StrEnum):
    CBN = "cbn"  # conditional batch norm
    CONCAT = "concat"  # label embedding concatenated to z


def _levels(size: int) -> int:
    """Number of 2x up/down-sampling stages between 4x4 and ``size``."""
    if size < 16 or size > 1024 or 2 ** round(math.log2(size)) != size:
        raise ValueError(f"image size must be a power of two between 16 and 1024, got {size}")
    return round(math.log2(size)) - 2


def _width(base: int, level_from_top: int) -> int:
    """Channel count ``level_from_top`` stages away from full resolution (capped at 8x base)."""
    width: int = base * min(8, 2**level_from_top)
    return width


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine scale and shift are looked up per class label."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g: torch.Tensor = self.gamma(y)[:, :, None, None]
        b: torch.Tensor = self.beta(y)[:, :, None, None]
        out: torch.Tensor = self.bn(x) * g + b
        return out


def _gen_norm(num_features: int, norm: Norm, num_classes: int, cond: GenCond) -> nn.Module:
    if norm == Norm.NONE:
        return nn.Identity()
    if num_classes > 0 and cond == GenCond.CBN:
        return ConditionalBatchNorm2d(num_features, num_classes)
    if norm == Norm.LAYER:
        return nn.GroupNorm(1, num_features)
    return nn.BatchNorm2d(num_features)


class DCGANGenerator(nn.Module):
    """``G(z[, y])``: noise ``(B, latent_dim)`` -> images ``(B, channels, size, size)`` in [-1, 1].

    Args:
        latent_dim: noise length.
        channels: output channels (1 or 3).
        size: output size (power of two, 16-256 typical).
        base_filters: width at full resolution (doubles per stage down to 4x4, capped at 8x).
        num_classes: 0 for unconditional, else the number of labels.
        cond: how labels enter ("cbn" conditional batch norm, "concat" embedding + z).
        norm: "batch" (default), "layer" or "none".
    """

    def __init__(self, latent_dim: int = 128, channels: int = 1, size: int = 64, base_filters: int = 64,
                 num_classes: int = 0, cond: GenCond | str = GenCond.CBN, norm: Norm | str = Norm.BATCH) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.cond = GenCond(cond)
        self.norm = Norm(norm)
        n = _levels(size)
        in_dim = latent_dim
        self.embed: nn.Embedding | None = None
        if num_classes > 0 and self.cond == GenCond.CONCAT:
            self.embed = nn.Embedding(num_classes, latent_dim)
            in_dim = 2 * latent_dim
        widths = [_width(base_filters, n - 1 - i) for i in range(n)]  # 4x4 ... size/2
        self.stem = nn.ConvTranspose2d(in_dim, widths[0], 4, 1, 0, bias=False)
        self.norms = nn.ModuleList([_gen_norm(widths[0], self.norm, num_classes, self.cond)])
        self.ups = nn.ModuleList()
        for i in range(1, n):
            self.ups.append(nn.ConvTranspose2d(widths[i - 1], widths[i], 4, 2, 1, bias=False))
            self.norms.append(_gen_norm(widths[i], self.norm, num_classes, self.cond))
        self.to_img = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)
        self.act = nn.ReLU(inplace=True)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes > 0 and y is None:
            raise ValueError("this generator is class-conditional: pass labels")
        if self.embed is not None and y is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.stem(z[:, :, None, None])
        layers: list[nn.Module] = [nn.Identity(), *self.ups]
        for conv, norm in zip(layers, self.norms, strict=True):
            h = conv(h)
            h = norm(h, y) if isinstance(norm, ConditionalBatchNorm2d) else norm(h)
            h = self.act(h)
        return torch.tanh(self.to_img(h))


class DCGANDiscriminator(nn.Module):
    """``D(x[, y])`` -> one logit/critic value per image, shape ``(B,)``.

    Args:
        channels: input channels.
        size: input size.
        base_filters: width of the first convolution.
        num_classes: > 0 adds a projection term ``<embed(y), sum-pooled features>``.
        norm: "batch", "layer" or "none".
        spectral: wrap every conv/linear/embedding in spectral normalisation.
    """

    def __init__(self, channels: int = 1, size: int = 64, base_filters: int = 64, num_classes: int = 0,
                 norm: Norm | str = Norm.BATCH, spectral: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        n = _levels(size)
        sn = spectral_norm if spectral else (lambda m: m)
        widths = [_width(base_filters, i) for i in range(n)]  # size/2 ... 4x4
        blocks: list[nn.Module] = [sn(nn.Conv2d(channels, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for i in range(1, n):
            blocks.append(sn(nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=Norm(norm) == Norm.NONE)))
            if Norm(norm) == Norm.BATCH:
                blocks.append(nn.BatchNorm2d(widths[i]))
            elif Norm(norm) == Norm.LAYER:
                blocks.append(nn.GroupNorm(1, widths[i]))
            blocks.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*blocks)
        self.head = sn(nn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.embed: nn.Module | None = None
        if num_classes > 0:
            self.embed = sn(nn.Embedding(num_classes, widths[-1]))
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out: torch.Tensor = self.head(h).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass labels")
            out = out + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return out


def _dcgan_init(m: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) weights, BN scale N(1, 0.02)."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        w = getattr(m, "parametrizations", None)
        weight = w.weight.original if w is not None and hasattr(w, "weight") else m.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
