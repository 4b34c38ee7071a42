"""The pix2pix U-Net generator (Isola et al. 2017), with configurable depth and width.

An encoder of stride-2 4x4 convolutions halves the image ``depth`` times; a
mirrored decoder of transposed convolutions doubles it back, concatenating the
encoder feature map of the same size at every level (skip connections). Used as
the pix2pix generator, the plain U-Net regression baseline and, slimmed down,
the distilled student. ``in_channels`` may be 1-5 for 2.5D input (neighbouring
slices as channels).
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn


class NormKind(StrEnum):
    """Normalisation inside the U-Net blocks."""

    BATCH = "batch"
    INSTANCE = "instance"
    NONE = "none"


def _norm(kind: NormKind, ch: int) -> nn.Module:
    if kind == NormKind.BATCH:
        return nn.BatchNorm2d(ch)
    if kind == NormKind.INSTANCE:
        return nn.InstanceNorm2d(ch, affine=True)
    return nn.Identity()


def max_depth(size: int) -> int:
    """The deepest U-Net that fits a ``size`` x ``size`` image (down to 1x1)."""
    depth = 0
    while size % 2 == 0 and size > 1:
        size //= 2
        depth += 1
    return depth


class UNetGenerator(nn.Module):
    """U-Net with ``depth`` down/up levels; output in [-1, 1] (tanh).

    Args:
        in_channels: input channels (1 for 2D, 3 or 5 for 2.5D).
        out_channels: output channels.
        base_filters: filters of the first level; doubled per level up to ``8 * base_filters``.
        depth: number of stride-2 levels; the image side must be divisible by ``2**depth``.
        norm: normalisation kind.
        dropout: dropout in the three innermost decoder levels (pix2pix uses 0.5).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_filters: int = 64, depth: int = 7,
                 norm: NormKind | str = NormKind.BATCH, dropout: float = 0.0) -> None:
        super().__init__()
        if not 1 <= in_channels <= 16:
            raise ValueError(f"in_channels must be 1..16, got {in_channels}")
        if depth < 1:
            raise ValueError("depth must be at least 1")
        norm = NormKind(norm)
        self.in_channels = in_channels
        self.depth = depth
        widths = [min(base_filters * 2**i, base_filters * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        prev = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Conv2d(prev, w, 4, 2, 1, bias=norm != NormKind.BATCH))
            if 0 < i < depth - 1:
                layers.append(_norm(norm, w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            inner = widths[i] if i == depth - 1 else widths[i] * 2
            outc = out_channels if i == 0 else widths[i - 1]
            layers = [
                nn.ReLU(inplace=False),
                nn.ConvTranspose2d(inner, outc, 4, 2, 1, bias=i == 0 or norm != NormKind.BATCH),
            ]
            if i > 0:
                layers.append(_norm(norm, outc))
                if dropout > 0 and i >= depth - 3 and depth > 3:
                    layers.append(nn.Dropout(dropout))
            else:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"U-Net expects {self.in_channels} input channels, got {x.shape[1]}")
        side = 2**self.depth
        if x.shape[-1] % side or x.shape[-2] % side:
            raise ValueError(
                f"image size {tuple(x.shape[-2:])} is not divisible by {side} (depth {self.depth})"
            )
        skips: list[torch.Tensor] = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = skips.pop()
        for n, block in enumerate(self.up):
            if n > 0:
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(h)
        return h
