"""pix2pix (Isola et al. 2017) and the plain U-Net regression baseline.

pix2pix: a U-Net generator ``G(x)`` and a conditional PatchGAN ``D(x, y)``;
the generator minimises the adversarial loss plus ``lambda_l1 * |G(x) - y|``.
The discriminator is frozen during the generator step.

``unet_l1``: the same U-Net trained with the L1 loss alone, the baseline every
translation method is compared with at equal budget.

Options (:class:`Pix2PixOptions`, :class:`UNetL1Options`): the U-Net's depth, norm and
dropout, ``lambda_l1``, ``gan_loss`` and the PatchGAN's layers, width and norm, and
``mask_weight`` (extra L1 weight inside the body mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from medgan_desktop.core.gan.losses import AdvLoss
from medgan_desktop.core.gan.methods._translation import (
    _LOSSES,
    TranslationMethod,
    UNetOptions,
    UNetPatchGan,
    UNetPatchOptions,
    adam,
    build_unet,
    masked_l1,
)
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.options import option


@dataclass(frozen=True)
class Pix2PixOptions(UNetPatchOptions):
    dropout: float = option(0.5, "Dropout", "Dropout in the inner decoder levels (pix2pix: 0.5).",
                            hi=0.9, decimals=2)
    lambda_l1: float = option(100.0, "L1 weight λ", "Weight of the L1 loss against the adversarial loss (pix2pix: 100).",
                              hi=1000.0, decimals=1)
    gan_loss: str = option("ns", "Adversarial loss", "ns (pix2pix's BCE), lsgan, hinge or wgan.",
                           choices=_LOSSES, form=False)


@dataclass(frozen=True)
class UNetL1Options(UNetOptions):
    pass


@register_method("pix2pix")
class Pix2Pix(UNetPatchGan):
    """Paired translation: U-Net generator, conditional PatchGAN, L1."""

    description = (
        "Paired image-to-image translation (U-Net + PatchGAN + L1), e.g. MR -> synthetic CT"
    )
    Options: ClassVar[type[Pix2PixOptions]] = Pix2PixOptions
    options: Pix2PixOptions

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.gan_loss = AdvLoss(self.options.gan_loss)

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = self.source(batch)
        y = batch.target
        fake = self.parallel(self.G)(x)
        loss_d = self.d_step(x, y, fake)  # real pairs vs generated pairs
        loss_adv = self.g_adversarial(x, fake)
        loss_l1 = masked_l1(fake, y, batch.mask, self.options.mask_weight)
        loss_g = loss_adv + self.options.lambda_l1 * loss_l1
        self.g_update(loss_g)
        return {
            "d": loss_d.item(),
            "g_adv": loss_adv.item(),
            "l1": loss_l1.item(),
            "g": loss_g.item(),
        }


@register_method("unet_l1")
class UNetL1(TranslationMethod):
    """Baseline: the pix2pix U-Net trained by L1 regression alone (no discriminator)."""

    description = "Plain U-Net regression baseline (L1 loss only) for translation benchmarks"
    Options: ClassVar[type[UNetL1Options]] = UNetL1Options
    options: UNetL1Options

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.G = build_unet(config, self.options).to(device)
        self.opt_g = adam(self.G.parameters(), config.lr_g, config.betas)

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g}

    def inference_network(self) -> nn.Module:
        return self.G

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = self.source(batch)
        self.opt_g.zero_grad(set_to_none=True)
        pred = self.parallel(self.G)(x)
        loss = masked_l1(pred, batch.target, batch.mask, self.options.mask_weight)
        loss.backward()
        self.opt_g.step()
        return {"l1": loss.item()}
