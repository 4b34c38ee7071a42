"""UNIT networks (Liu et al. 2017): two VAE encoders/decoders sharing a latent space.

Each domain has its own encoder stem and decoder head; the last encoder residual
block and the first decoder residual block are *shared* between domains, which
ties both domains to one latent code. The latent is Gaussian with unit variance
(as in the reference implementation): ``z = mu + noise`` while training.

Every parameter is registered exactly once (in :class:`UnitNetworks`), so the
weights save to safetensors without tied tensors.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from medgan_desktop.core.gan.networks.resnet_gen import ResidualBlock, down_path, up_path


class UnitNetworks(nn.Module):
    """Encoders and decoders of domains A (source) and B (target) with the shared blocks.

    Args:
        in_channels: channels of domain A.
        out_channels: channels of domain B.
        base_filters: width of the stems.
        n_down: stride-2 down-samplings per encoder.
        n_res: domain-specific residual blocks per encoder and decoder.
    """

    def __init__(self, in_channels: int, out_channels: int, base_filters: int = 32, n_down: int = 2,
                 n_res: int = 2) -> None:
        super().__init__()
        self.in_channels = in_channels
        stem_a, ch = down_path(in_channels, base_filters, n_down)
        stem_b, _ = down_path(out_channels, base_filters, n_down)
        self.enc_a = nn.Sequential(stem_a, *[ResidualBlock(ch) for _ in range(n_res)])
        self.enc_b = nn.Sequential(stem_b, *[ResidualBlock(ch) for _ in range(n_res)])
        self.enc_shared = ResidualBlock(ch)
        self.dec_shared = ResidualBlock(ch)
        self.dec_a = nn.Sequential(
            *[ResidualBlock(ch) for _ in range(n_res)], up_path(ch, in_channels, n_down)
        )
        self.dec_b = nn.Sequential(
            *[ResidualBlock(ch) for _ in range(n_res)], up_path(ch, out_channels, n_down)
        )

    def encode_a(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.enc_shared(self.enc_a(x)))

    def encode_b(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.enc_shared(self.enc_b(x)))

    def decode_a(self, z: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.dec_a(self.dec_shared(z)))

    def decode_b(self, z: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.dec_b(self.dec_shared(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate A -> B with the latent mean (no sampling noise)."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"UNIT expects {self.in_channels} input channels, got {x.shape[1]}")
        return self.decode_b(self.encode_a(x))
