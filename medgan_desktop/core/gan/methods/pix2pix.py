"""pix2pix (Isola et al. 2017) and the plain U-Net regression baseline.

pix2pix: a U-Net generator ``G(x)`` and a conditional PatchGAN ``D(x, y)``;
the generator minimises the adversarial loss plus ``lambda_l1 * |G(x) - y|``.
The discriminator is frozen during the generator step.

``unet_l1``: the same U-Net trained with the L1 loss alone, the baseline every
translation method is compared with at equal budget.

Options in ``MethodConfig.extra``: ``depth`` (U-Net levels, default the
deepest that fits), ``norm`` ("batch"/"instance"/"none"), ``dropout`` (0.5),
``lambda_l1`` (100), ``gan_loss`` ("vanilla"/"lsgan"), ``d_layers`` (3),
``d_filters`` (base_filters), ``mask_weight`` (extra L1 weight inside the body
mask, 0).
"""

from __future__ import annotations

import torch
from torch import nn

from medgan_desktop.core.gan.methods._translation import (
    GanLoss,
    TranslationMethod,
    adam,
    adversarial,
    default_d_layers,
    masked_l1,
    require_source,
    set_requires_grad,
)
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.networks.patchgan import PatchDiscriminator
from medgan_desktop.core.gan.networks.unet import UNetGenerator, max_depth


def build_unet(config: MethodConfig, default_dropout: float) -> UNetGenerator:
    """The U-Net generator described by ``config`` (shared by pix2pix, baseline and student)."""
    depth = int(config.option("depth", min(max_depth(config.size), 8)))
    return UNetGenerator(
        in_channels=config.in_channels,
        out_channels=config.channels,
        base_filters=config.base_filters,
        depth=depth,
        norm=str(config.option("norm", "batch")),
        dropout=float(config.option("dropout", default_dropout)),
    )


def build_conditional_d(config: MethodConfig) -> PatchDiscriminator:
    return PatchDiscriminator(
        in_channels=config.in_channels + config.channels,
        base_filters=int(config.option("d_filters", config.base_filters)),
        n_layers=int(config.option("d_layers", default_d_layers(config.size))),
        norm=str(config.option("d_norm", "instance")),
    )


@register_method("pix2pix")
class Pix2Pix(TranslationMethod):
    """Paired translation: U-Net generator, conditional PatchGAN, L1."""

    description = (
        "Paired image-to-image translation (U-Net + PatchGAN + L1), e.g. MR -> synthetic CT"
    )

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.G = build_unet(config, default_dropout=0.5).to(device)
        self.D = build_conditional_d(config).to(device)
        self.opt_g = adam(self.G.parameters(), config.lr_g, config.betas)
        self.opt_d = adam(self.D.parameters(), config.lr_d, config.betas)
        self.lambda_l1 = float(config.option("lambda_l1", 100.0))
        self.gan_loss = GanLoss(str(config.option("gan_loss", "vanilla")))
        self.mask_weight = float(config.option("mask_weight", 0.0))

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.G

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = require_source(batch)
        y = batch.target
        fake = self.parallel(self.G)(x)
        # D step: real pairs vs generated pairs.
        set_requires_grad([self.D], True)
        self.opt_d.zero_grad(set_to_none=True)
        d = self.parallel(self.D)
        d_real = d(torch.cat([x, y], 1))
        d_fake = d(torch.cat([x, fake.detach()], 1))
        loss_d = 0.5 * (
            adversarial(d_real, True, self.gan_loss) + adversarial(d_fake, False, self.gan_loss)
        )
        loss_d.backward()
        self.opt_d.step()
        # G step with D frozen (called directly, not through parallel()).
        set_requires_grad([self.D], False)
        self.opt_g.zero_grad(set_to_none=True)
        loss_adv = adversarial(self.D(torch.cat([x, fake], 1)), True, self.gan_loss)
        loss_l1 = masked_l1(fake, y, batch.mask, self.mask_weight)
        loss_g = loss_adv + self.lambda_l1 * loss_l1
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad([self.D], True)
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

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.G = build_unet(config, default_dropout=0.0).to(device)
        self.opt_g = adam(self.G.parameters(), config.lr_g, config.betas)
        self.mask_weight = float(config.option("mask_weight", 0.0))

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g}

    def inference_network(self) -> nn.Module:
        return self.G

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = require_source(batch)
        self.opt_g.zero_grad(set_to_none=True)
        loss = masked_l1(self.parallel(self.G)(x), batch.target, batch.mask, self.mask_weight)
        loss.backward()
        self.opt_g.step()
        return {"l1": loss.item()}
