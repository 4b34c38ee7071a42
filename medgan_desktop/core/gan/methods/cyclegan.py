"""CycleGAN (Zhu et al. 2017): unpaired translation with cycle consistency.

Two ResNet generators ``G_AB: A -> B`` and ``G_BA: B -> A``, two PatchGAN
discriminators, least-squares adversarial losses, the cycle loss
``|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|`` and the identity loss. Step order
as in the reference implementation: the generators' step with both
discriminators frozen, then the discriminators on fakes drawn from image pools.

Batches are unpaired: ``batch.source`` from domain A (MR), ``batch.target`` from
domain B (CT). Options (:class:`CycleGanOptions`): ``n_blocks`` (6), ``n_down`` (2),
``lambda_cycle`` (10), ``lambda_identity`` (0.5, relative to the cycle weight;
only used when A and B have the same channel count), ``pool_size`` (50) and the
PatchGANs' ``d_layers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from medgan_desktop.core.gan.losses import AdvLoss, adversarial, set_requires_grad
from medgan_desktop.core.gan.methods._translation import (
    ImagePool,
    PatchOptions,
    TranslationMethod,
    adam,
    domain_discriminators,
)
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.networks.resnet_gen import ResnetGenerator
from medgan_desktop.core.gan.options import option

_LS = AdvLoss.LSGAN


@dataclass(frozen=True)
class CycleGanOptions(PatchOptions):
    n_blocks: int = option(6, "Residual blocks", "Residual blocks of each generator (CycleGAN: 6 at 128 px, 9 at 256).",
                           lo=1, hi=12)
    n_down: int = option(2, "Down-samplings", "Stride-2 levels of each generator.", lo=1, hi=4, form=False)
    lambda_cycle: float = option(10.0, "Cycle weight λ", "Weight of the cycle-consistency loss (CycleGAN: 10).",
                                 hi=100.0, decimals=1)
    lambda_identity: float = option(0.5, "Identity weight", "Identity loss, relative to the cycle weight (0.5).",
                                    hi=10.0, decimals=2)
    pool_size: int = option(50, "Image pool", "Older fakes kept for the discriminators (0: none).", lo=0, hi=500,
                            form=False)


@register_method("cyclegan")
class CycleGan(TranslationMethod):
    """Unpaired translation with two generators, two discriminators and cycle consistency."""

    description = "Unpaired translation (ResNet generators, LSGAN, cycle + identity losses)"
    Options: ClassVar[type[CycleGanOptions]] = CycleGanOptions
    options: CycleGanOptions

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        a, b, f = config.in_channels, config.channels, config.base_filters
        o = self.options
        self.G_AB = ResnetGenerator(a, b, f, o.n_blocks, o.n_down).to(device)
        self.G_BA = ResnetGenerator(b, a, f, o.n_blocks, o.n_down).to(device)
        self.D_A, self.D_B, self.opt_d = domain_discriminators(config, o, device)
        self.opt_g = adam(
            [*self.G_AB.parameters(), *self.G_BA.parameters()], config.lr_g, config.betas
        )
        self.lambda_cycle = o.lambda_cycle
        self.lambda_identity = o.lambda_identity if a == b else 0.0
        self.pool_a = ImagePool(o.pool_size, seed=1)
        self.pool_b = ImagePool(o.pool_size, seed=2)

    def networks(self) -> dict[str, nn.Module]:
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.G_AB

    def train_step(self, batch: Batch, step: int) -> LossDict:
        real_a = self.source(batch)
        real_b = batch.target
        # Generators, discriminators frozen (called directly, not through parallel()).
        set_requires_grad((self.D_A, self.D_B), False)
        self.opt_g.zero_grad(set_to_none=True)
        g_ab, g_ba = self.parallel(self.G_AB), self.parallel(self.G_BA)
        fake_b = g_ab(real_a)
        rec_a = g_ba(fake_b)
        fake_a = g_ba(real_b)
        rec_b = g_ab(fake_a)
        adv = adversarial(self.D_B(fake_b), True, _LS) + adversarial(self.D_A(fake_a), True, _LS)
        cyc = (rec_a - real_a).abs().mean() + (rec_b - real_b).abs().mean()
        loss_g = adv + self.lambda_cycle * cyc
        idt = torch.zeros((), device=real_a.device)
        if self.lambda_identity > 0:
            idt = (g_ab(real_b) - real_b).abs().mean() + (g_ba(real_a) - real_a).abs().mean()
            loss_g = loss_g + self.lambda_cycle * self.lambda_identity * idt
        loss_g.backward()
        self.opt_g.step()
        # Discriminators on pooled fakes.
        set_requires_grad((self.D_A, self.D_B), True)
        self.opt_d.zero_grad(set_to_none=True)
        pb = self.pool_b.query(fake_b)
        pa = self.pool_a.query(fake_a)
        d_a, d_b = self.parallel(self.D_A), self.parallel(self.D_B)
        loss_db = 0.5 * (adversarial(d_b(real_b), True, _LS) + adversarial(d_b(pb), False, _LS))
        loss_da = 0.5 * (adversarial(d_a(real_a), True, _LS) + adversarial(d_a(pa), False, _LS))
        (loss_da + loss_db).backward()
        self.opt_d.step()
        return {
            "g_adv": adv.item(),
            "cycle": cyc.item(),
            "identity": idt.item(),
            "g": loss_g.item(),
            "d_a": loss_da.item(),
            "d_b": loss_db.item(),
        }
