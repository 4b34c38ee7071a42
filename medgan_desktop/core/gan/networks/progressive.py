"""Progressive-growing generator and discriminator (Karras et al., ICLR 2018).

Both networks hold every resolution from 8x8 up to ``size`` from the start
(so weights, optimiser state and checkpoints never change shape); which part
is active is set by :meth:`ProgressiveGenerator.set_stage` with the current
resolution and the fade-in weight ``alpha``. The stage lives in buffers, so a
saved generator remembers how far it had grown and ``G(z)`` always returns
images at the full ``size`` (lower stages are upsampled).

Building blocks follow the paper: equalised learning rate, pixelwise feature
normalisation in G, nearest-neighbour upsampling, 2x2 average pooling, a
minibatch standard-deviation layer in D, and 1x1 toRGB/fromRGB layers per
resolution that are blended with ``alpha`` while a new resolution fades in.
Optional class conditioning: a label embedding concatenated to ``z`` in G and
a projection term in D.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan_desktop.core.gan.networks.stylegan2 import (
    EqualConv2d,
    EqualLinear,
    channels_for,
    critic_head,
    minibatch_stddev,
    projected_score,
)

START_RES = 8


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def _pixel_norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class _GBlock(nn.Module):
    """Upsample 2x, then two 3x3 conv + leaky ReLU + pixel norm."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, out_ch, 3)
        self.conv1 = EqualConv2d(out_ch, out_ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = _pixel_norm(_lrelu(self.conv0(x)))
        return _pixel_norm(_lrelu(self.conv1(x)))


class _DBlock(nn.Module):
    """Two 3x3 conv + leaky ReLU, then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = _lrelu(self.conv0(x))
        return F.avg_pool2d(_lrelu(self.conv1(x)), 2)


def resolutions(size: int) -> list[int]:
    """The grown resolutions ``[8, 16, ..., size]``."""
    log2 = round(math.log2(size)) if size > 0 else 0
    if size < START_RES or 2**log2 != size:
        raise ValueError(f"progressive GAN size must be a power of two >= {START_RES}, got {size}")
    return [2**k for k in range(3, log2 + 1)]


class ProgressiveGenerator(nn.Module):
    """``G(z[, labels])`` growing from 8x8 to ``size``.

    Args:
        size: final resolution (power of two >= 8).
        channels: image channels.
        latent_dim: length of ``z``.
        base_filters: feature maps at the final resolution (doubling per halving).
        num_classes: 0 for unconditional.
        channel_max: cap on feature maps (default ``8 * base_filters``).
    """

    stage_res: Tensor
    stage_alpha: Tensor

    def __init__(self, size: int = 64, channels: int = 1, latent_dim: int = 128, base_filters: int = 64,
                 num_classes: int = 0, channel_max: int | None = None) -> None:
        super().__init__()
        self.res_list = resolutions(size)
        self.size = size
        self.latent_dim = latent_dim
        self.num_classes = num_classes

        def ch(r: int) -> int:
            return channels_for(r, size, base_filters, channel_max)

        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes > 0 else None
        in_f = latent_dim * (2 if num_classes > 0 else 1)
        c4 = ch(4)
        self.dense = EqualLinear(in_f, c4 * 16)
        self.conv4 = EqualConv2d(c4, c4, 3)
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        prev = c4
        for r in self.res_list:
            self.blocks.append(_GBlock(prev, ch(r)))
            self.to_rgb.append(EqualConv2d(ch(r), channels, 1))
            prev = ch(r)
        self.register_buffer("stage_res", torch.tensor(size, dtype=torch.int64))
        self.register_buffer("stage_alpha", torch.tensor(1.0))

    def set_stage(self, res: int, alpha: float) -> None:
        """Activate resolutions up to ``res``; ``alpha`` < 1 blends in the newest one."""
        if res not in self.res_list:
            raise ValueError(f"resolution {res} not in {self.res_list}")
        self.stage_res.fill_(res)
        self.stage_alpha.fill_(float(alpha))

    @property
    def stage(self) -> tuple[int, float]:
        """The active ``(resolution, alpha)``."""
        return int(self.stage_res), float(self.stage_alpha)

    def forward(self, z: Tensor, labels: Tensor | None = None, full_size: bool = True) -> Tensor:
        """Images at the active stage, upsampled to ``size`` unless ``full_size`` is False."""
        res, alpha = self.stage
        x = z
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            x = torch.cat([x, self.embed(labels.long())], dim=1)
        x = _pixel_norm(x)
        x = _pixel_norm(_lrelu(self.dense(x).reshape(z.shape[0], -1, 4, 4)))
        x = _pixel_norm(_lrelu(self.conv4(x)))
        n = self.res_list.index(res) + 1
        prev_x = x
        for i in range(n):
            prev_x = x
            x = self.blocks[i](x)
        img: Tensor = self.to_rgb[n - 1](x)
        if alpha < 1.0 and n > 1:
            low = F.interpolate(self.to_rgb[n - 2](prev_x), scale_factor=2.0, mode="nearest")
            img = low.lerp(img, alpha)
        if full_size and res < self.size:
            img = F.interpolate(img, size=(self.size, self.size), mode="nearest")
        return img


class ProgressiveDiscriminator(nn.Module):
    """Critic for images at any grown resolution, blending fromRGB layers during fade-in.

    Args:
        size: final resolution.
        channels: image channels.
        base_filters: feature maps at the final resolution.
        num_classes: 0 for unconditional; else adds a projection term.
        channel_max: cap on feature maps.
    """

    def __init__(self, size: int = 64, channels: int = 1, base_filters: int = 64, num_classes: int = 0,
                 channel_max: int | None = None) -> None:
        super().__init__()
        self.res_list = resolutions(size)
        self.size = size
        self.num_classes = num_classes

        def ch(r: int) -> int:
            return channels_for(r, size, base_filters, channel_max)

        self.from_rgb = nn.ModuleList([EqualConv2d(channels, ch(r), 1) for r in self.res_list])
        # blocks[i] maps resolution res_list[i] -> res_list[i] / 2
        self.blocks = nn.ModuleList([_DBlock(ch(r), ch(r // 2)) for r in self.res_list])
        self.conv4, self.fc, self.out, self.embed = critic_head(ch(4), num_classes)

    def forward(self, img: Tensor, labels: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """Scores ``(B,)`` for images at one of the grown resolutions."""
        res = img.shape[-1]
        if res not in self.res_list:
            raise ValueError(f"image size {res} not in {self.res_list}")
        n = self.res_list.index(res)
        x = self.blocks[n](_lrelu(self.from_rgb[n](img)))
        if alpha < 1.0 and n > 0:
            low = _lrelu(self.from_rgb[n - 1](F.avg_pool2d(img, 2)))
            x = low.lerp(x, alpha)
        for i in range(n - 1, -1, -1):
            x = self.blocks[i](x)
        x = minibatch_stddev(x)
        x = _lrelu(self.conv4(x))
        h = _lrelu(self.fc(x.flatten(1)))
        return projected_score(self.out(h), h, self.embed, labels)
