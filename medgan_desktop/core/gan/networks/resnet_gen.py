"""The CycleGAN ResNet generator (Johnson et al. 2016; Zhu et al. 2017).

``c7s1-F, d2F, d4F, R4F x n_blocks, u2F, uF, c7s1-out``, instance norm, reflection
padding, tanh output. The building blocks are reused by the UNIT networks.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and a skip connection."""

    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


def down_path(in_channels: int, base_filters: int, n_down: int) -> tuple[nn.Sequential, int]:
    """The 7x7 stem and ``n_down`` stride-2 convolutions; returns the module and its width."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_channels, base_filters, 7),
        nn.InstanceNorm2d(base_filters, affine=True),
        nn.ReLU(inplace=True),
    ]
    ch = base_filters
    for _ in range(n_down):
        layers += [
            nn.Conv2d(ch, ch * 2, 3, 2, 1),
            nn.InstanceNorm2d(ch * 2, affine=True),
            nn.ReLU(inplace=True),
        ]
        ch *= 2
    return nn.Sequential(*layers), ch


def up_path(channels: int, out_channels: int, n_up: int) -> nn.Sequential:
    """``n_up`` transposed convolutions and the 7x7 tanh head."""
    layers: list[nn.Module] = []
    ch = channels
    for _ in range(n_up):
        layers += [
            nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1),
            nn.InstanceNorm2d(ch // 2, affine=True),
            nn.ReLU(inplace=True),
        ]
        ch //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        base_filters: width of the first convolution.
        n_blocks: residual blocks at the bottleneck (6 for 128 px, 9 for 256 px in the paper).
        n_down: stride-2 down-samplings (and as many up-samplings).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_filters: int = 64, n_blocks: int = 6,
                 n_down: int = 2) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.n_down = n_down
        enc, ch = down_path(in_channels, base_filters, n_down)
        self.net = nn.Sequential(
            enc, *[ResidualBlock(ch) for _ in range(n_blocks)], up_path(ch, out_channels, n_down)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"generator expects {self.in_channels} input channels, got {x.shape[1]}"
            )
        out: torch.Tensor = self.net(x)
        return out
