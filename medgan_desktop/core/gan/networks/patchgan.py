"""The PatchGAN discriminator (pix2pix, CycleGAN): one real/fake logit per image patch."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convolutions then two stride-1 ones (70x70 patches for 3).

    Args:
        in_channels: input channels (source + target channels for a conditional GAN).
        base_filters: width of the first convolution (doubled per layer, at most 8x).
        n_layers: number of stride-2 layers.
        norm: "instance", "batch" or "none".
    """

    def __init__(self, in_channels: int = 2, base_filters: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()

        def nrm(ch: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(ch)
            if norm == "instance":
                return nn.InstanceNorm2d(ch, affine=True)
            return nn.Identity()

        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_filters, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        ch = base_filters
        for i in range(1, n_layers + 1):
            nxt = min(base_filters * 2**i, base_filters * 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1), nrm(nxt), nn.LeakyReLU(0.2, inplace=True)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out
