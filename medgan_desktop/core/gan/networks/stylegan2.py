"""A StyleGAN2-style generator and residual discriminator in plain PyTorch.

After Karras et al., "Analyzing and Improving the Image Quality of StyleGAN"
(CVPR 2020) and the public ``NVlabs/stylegan2-ada-pytorch`` code, without its
custom CUDA kernels so it runs on CPU, MPS and in frozen builds:

* mapping network: normalised ``z`` (plus a normalised label embedding when
  class-conditional) through an equalised-learning-rate MLP to ``w``; a running
  average ``w_avg`` is tracked for the truncation trick;
* synthesis network: a learned 4x4 constant, then per resolution an upsample,
  two modulated/demodulated 3x3 convolutions with per-layer noise inputs, and a
  skip "toRGB" output summed across resolutions;
* discriminator: "fromRGB", residual blocks down to 4x4, a minibatch standard
  deviation layer, and (class-conditional) a projection term.

Simplifications, chosen for speed on CPU: the modulation uses the non-fused
form that the official code uses while training (scale activations, shared
convolution, scale outputs), and the FIR [1, 3, 3, 1] resampling filter is the
bilinear upsample / 2x2 average pool it reduces to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_SQRT2 = math.sqrt(2.0)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * _SQRT2


def _normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def channels_for(res: int, size: int, base_filters: int, channel_max: int | None = None) -> int:
    """Feature maps at resolution ``res``: ``base_filters`` at the output, doubling per halving."""
    cmax = channel_max if channel_max is not None else 8 * base_filters
    return int(min(cmax, base_filters * size // res))


def _check_size(size: int) -> int:
    log2 = round(math.log2(size)) if size > 0 else 0
    if size < 8 or 2**log2 != size:
        raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
    return log2


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time)."""

    def __init__(self, in_f: int, out_f: int, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init)))
        self.w_gain = lr_mul / math.sqrt(in_f)
        self.b_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.w_gain, self.bias * self.b_gain)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate, 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.padding)


class MappingNetwork(nn.Module):
    """``z`` (+ label) -> ``w``; keeps ``w_avg`` for truncation.

    Args:
        latent_dim: length of ``z``.
        w_dim: length of ``w``.
        num_layers: depth of the MLP.
        num_classes: 0 for unconditional, else the number of labels.
        lr_mul: learning-rate multiplier of the MLP (0.01 in StyleGAN).
        w_avg_beta: decay of the running ``w`` average.
    """

    w_avg: Tensor

    def __init__(self, latent_dim: int, w_dim: int, num_layers: int = 4, num_classes: int = 0, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.w_avg_beta = w_avg_beta
        self.embed = EqualLinear(num_classes, w_dim) if num_classes > 0 else None
        in_f = latent_dim + (w_dim if num_classes > 0 else 0)
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(EqualLinear(in_f if i == 0 else w_dim, w_dim, lr_mul=lr_mul))
        self.layers = nn.ModuleList(layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation: float = 1.0,
                update_w_avg: bool = False) -> Tensor:
        x = _normalize(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            onehot = F.one_hot(labels.long(), self.num_classes).to(z.dtype)
            x = torch.cat([x, _normalize(self.embed(onehot))], dim=1)
        for layer in self.layers:
            x = _lrelu(layer(x))
        w_avg = self.w_avg
        if update_w_avg:
            with torch.no_grad():  # the average stays float32 under a bfloat16 autocast
                w_avg.copy_(x.detach().to(w_avg.dtype).mean(dim=0).lerp(w_avg, self.w_avg_beta))
        if truncation != 1.0:
            x = w_avg.to(x.dtype).lerp(x, truncation)
        return x


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional weight demodulation (non-fused form)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.demodulate = demodulate
        self.gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # (B, in)
        weight = self.weight * self.gain
        x = x * styles[:, :, None, None]
        x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum over in/k/k of (weight * style)^2, per sample and output channel
            wsq = weight.square().sum(dim=(2, 3))  # (out, in)
            dcoefs = torch.rsqrt(styles.square() @ wsq.t() + 1e-8)  # (B, out)
            x = x * dcoefs[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, noise input, bias, activation (optionally upsampling first)."""

    noise_const: Tensor

    def __init__(
        self, in_ch: int, out_ch: int, w_dim: int, resolution: int, upsample: bool
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(
        self, x: Tensor, w: Tensor, noise_mode: str, generator: torch.Generator | None
    ) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if noise_mode == "random":
            b, _, h, ww = x.shape
            dev = x.device if generator is None else generator.device
            noise = torch.randn(b, 1, h, ww, generator=generator, device=dev).to(x)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return _lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """1x1 modulated convolution without demodulation."""

    def __init__(self, in_ch: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        out: Tensor = self.conv(x, w) + self.bias[None, :, None, None]
        return out


NOISE_MODES = ("random", "const", "none")


class StyleGAN2Generator(nn.Module):
    """``G(z[, labels])`` -> images in roughly [-1, 1] (not clamped while training).

    Args:
        size: output size, a power of two >= 8 (64, 128, 256 in the app).
        channels: output channels (1 or 3).
        latent_dim: length of ``z``.
        w_dim: length of ``w`` (defaults to ``latent_dim``).
        base_filters: feature maps at the output resolution.
        num_classes: 0 for unconditional.
        mapping_layers: depth of the mapping MLP.
        channel_max: cap on feature maps (default ``8 * base_filters``).
    """

    def __init__(self, size: int = 64, channels: int = 1, latent_dim: int = 128, w_dim: int | None = None,
                 base_filters: int = 64, num_classes: int = 0, mapping_layers: int = 4,
                 channel_max: int | None = None) -> None:
        super().__init__()
        log2 = _check_size(size)
        self.size = size
        self.channels = channels
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        wd = w_dim if w_dim is not None else latent_dim
        self.mapping = MappingNetwork(latent_dim, wd, mapping_layers, num_classes)

        def ch(r: int) -> int:
            return channels_for(r, size, base_filters, channel_max)

        self.const = nn.Parameter(torch.randn(1, ch(4), 4, 4))
        self.layers = nn.ModuleList([StyleLayer(ch(4), ch(4), wd, 4, upsample=False)])
        self.to_rgbs = nn.ModuleList([ToRGB(ch(4), channels, wd)])
        for k in range(3, log2 + 1):
            r = 2**k
            self.layers.append(StyleLayer(ch(r // 2), ch(r), wd, r, upsample=True))
            self.layers.append(StyleLayer(ch(r), ch(r), wd, r, upsample=False))
            self.to_rgbs.append(ToRGB(ch(r), channels, wd))

    def synthesis(
        self, w: Tensor, noise_mode: str = "random", generator: torch.Generator | None = None
    ) -> Tensor:
        """Images from ``w`` ``(B, w_dim)``; ``noise_mode`` is "random", "const" or "none"."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.const.expand(w.shape[0], -1, -1, -1)
        x = self.layers[0](x, w, noise_mode, generator)
        img: Tensor = self.to_rgbs[0](x, w)
        for i, to_rgb in enumerate(self.to_rgbs[1:]):
            x = self.layers[1 + 2 * i](x, w, noise_mode, generator)
            x = self.layers[2 + 2 * i](x, w, noise_mode, generator)
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False)
            img = img + to_rgb(x, w)
        return img

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None, update_w_avg: bool = False) -> Tensor:
        w = self.mapping(z, labels, truncation=truncation, update_w_avg=update_w_avg)
        return self.synthesis(w, noise_mode=noise_mode, generator=generator)


class DBlock(nn.Module):
    """Residual discriminator block: two 3x3 convs, 2x downsampling, 1x1 skip."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.skip(F.avg_pool2d(x, 2))
        x = _lrelu(self.conv0(x))
        x = _lrelu(self.conv1(F.avg_pool2d(x, 2)))
        return (x + y) / _SQRT2


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Append the mean feature standard deviation within groups of samples as a channel."""
    b, c, h, w = x.shape
    g = min(group_size, b)
    while b % g:
        g -= 1
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b/g,)
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def critic_head(
    c4: int, num_classes: int
) -> tuple[EqualConv2d, EqualLinear, EqualLinear, nn.Embedding | None]:
    """The 4x4 end of a critic: a 3x3 conv over the features and their minibatch stddev,
    a dense layer, the score, and (class-conditional) the label embedding of the projection
    term."""
    conv = EqualConv2d(c4 + 1, c4, 3)
    fc = EqualLinear(c4 * 16, c4)
    out = EqualLinear(c4, 1)
    embed = nn.Embedding(num_classes, c4) if num_classes > 0 else None
    if embed is not None:
        nn.init.normal_(embed.weight, std=1.0 / math.sqrt(c4))
    return conv, fc, out, embed


def projected_score(
    score: Tensor, h: Tensor, embed: nn.Embedding | None, labels: Tensor | None
) -> Tensor:
    """Scores ``(B,)``: ``score`` ``(B, 1)``, plus ``<embed(labels), h>`` when class-conditional."""
    if embed is not None:
        if labels is None:
            raise ValueError("this discriminator is class-conditional: pass labels")
        score = score + (embed(labels.long()) * h).sum(dim=1, keepdim=True)
    return score.squeeze(1)


class StyleGAN2Discriminator(nn.Module):
    """Residual discriminator with minibatch-stddev and optional projection conditioning.

    Args:
        size: input size (power of two >= 8).
        channels: input channels.
        base_filters: feature maps at the input resolution.
        num_classes: 0 for unconditional; else ``D(x, y)`` adds ``<embed(y), phi(x)>``.
        channel_max: cap on feature maps (default ``8 * base_filters``).
    """

    def __init__(self, size: int = 64, channels: int = 1, base_filters: int = 64, num_classes: int = 0,
                 channel_max: int | None = None) -> None:
        super().__init__()
        log2 = _check_size(size)
        self.size = size
        self.num_classes = num_classes

        def ch(r: int) -> int:
            return channels_for(r, size, base_filters, channel_max)

        self.from_rgb = EqualConv2d(channels, ch(size), 1)
        self.blocks = nn.ModuleList(
            [DBlock(ch(2**k), ch(2 ** (k - 1))) for k in range(log2, 2, -1)]
        )
        self.conv, self.fc, self.out, self.embed = critic_head(ch(4), num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = _lrelu(self.from_rgb(x))
        for block in self.blocks:
            x = block(x)
        x = minibatch_stddev(x)
        x = _lrelu(self.conv(x))
        h = _lrelu(self.fc(x.flatten(1)))
        return projected_score(self.out(h), h, self.embed, labels)
