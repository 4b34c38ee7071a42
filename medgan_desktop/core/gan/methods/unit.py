"""UNIT (Liu, Breuel & Kautz 2017): unsupervised translation through a shared latent space.

Two VAE-GANs whose encoders end, and decoders begin, with shared residual
blocks. Losses (reference weights): within-domain reconstruction
(``lambda_recon`` 10) with a KL term on the latent (``lambda_kl`` 0.01), the
cycle reconstruction through the other domain (``lambda_cycle`` 10, KL
``lambda_kl_cycle`` 0.01), and least-squares adversarial losses of two
PatchGAN discriminators, frozen during the generator step.

Batches are unpaired (``source`` domain A, ``target`` domain B). Options
(:class:`UnitOptions`): ``n_down`` (2), ``n_res`` (2), the PatchGANs' ``d_layers`` and
the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from medgan_desktop.core.gan.losses import AdvLoss, adversarial, set_requires_grad
from medgan_desktop.core.gan.methods._translation import PatchOptions, TranslationMethod, adam, domain_discriminators
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.networks.unit import UnitNetworks
from medgan_desktop.core.gan.options import option

_LS = AdvLoss.LSGAN


@dataclass(frozen=True)
class UnitOptions(PatchOptions):
    n_down: int = option(2, "Down-samplings", "Stride-2 levels of the encoders.", lo=1, hi=4, form=False)
    n_res: int = option(2, "Shared blocks", "Residual blocks of the shared latent space.", lo=1, hi=8)
    lambda_recon: float = option(10.0, "Reconstruction weight", "Within-domain reconstruction (10).",
                                 hi=100.0, decimals=1)
    lambda_kl: float = option(0.01, "KL weight", "KL term of the latent (0.01).", hi=1.0, decimals=3)
    lambda_cycle: float = option(10.0, "Cycle weight", "Cycle reconstruction through the other domain (10).",
                                 hi=100.0, decimals=1)
    lambda_kl_cycle: float = option(0.01, "Cycle KL weight", "KL term of the cycle latent (0.01).", hi=1.0,
                                    decimals=3, form=False)


def _kl(mu: torch.Tensor) -> torch.Tensor:
    """KL to N(0, I) of a unit-variance Gaussian centred at ``mu`` (up to a constant)."""
    return (mu**2).mean()


def _generator_pass(n: UnitNetworks, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every encoder/decoder use of one generator step (one data-parallel forward)."""
    ha, hb = n.encode_a(xa), n.encode_b(xb)
    za = ha + torch.randn_like(ha)
    zb = hb + torch.randn_like(hb)
    rec_a, rec_b = n.decode_a(za), n.decode_b(zb)
    ab, ba = n.decode_b(za), n.decode_a(zb)
    h_ba, h_ab = n.encode_a(ba), n.encode_b(ab)
    cyc_a = n.decode_a(h_ab + torch.randn_like(h_ab))
    cyc_b = n.decode_b(h_ba + torch.randn_like(h_ba))
    return ha, hb, rec_a, rec_b, ab, ba, h_ab, h_ba, cyc_a, cyc_b


@register_method("unit")
class Unit(TranslationMethod):
    """Shared-latent VAE-GAN translation (unpaired)."""

    description = "Unpaired translation through a shared latent space (VAE-GAN, UNIT)"
    Options: ClassVar[type[UnitOptions]] = UnitOptions
    options: UnitOptions

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        a, b, f = config.in_channels, config.channels, config.base_filters
        o = self.options
        self.nets = UnitNetworks(a, b, f, n_down=o.n_down, n_res=o.n_res).to(device)
        self.D_A, self.D_B, self.opt_d = domain_discriminators(config, o, device)
        self.opt_g = adam(self.nets.parameters(), config.lr_g, config.betas)
        self.w_recon, self.w_kl = o.lambda_recon, o.lambda_kl
        self.w_cyc, self.w_kl_cyc = o.lambda_cycle, o.lambda_kl_cycle

    def networks(self) -> dict[str, nn.Module]:
        return {"nets": self.nets, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.nets

    def train_step(self, batch: Batch, step: int) -> LossDict:
        xa = self.source(batch)
        xb = batch.target
        # Generator / VAE step, discriminators frozen (called directly, not through parallel()).
        set_requires_grad((self.D_A, self.D_B), False)
        self.opt_g.zero_grad(set_to_none=True)
        ha, hb, rec_a, rec_b, ab, ba, h_ab, h_ba, cyc_a, cyc_b = self.parallel_apply(
            self.nets, _generator_pass, xa, xb
        )
        recon = (rec_a - xa).abs().mean() + (rec_b - xb).abs().mean()
        kl = _kl(ha) + _kl(hb)
        cyc = (cyc_a - xa).abs().mean() + (cyc_b - xb).abs().mean()
        kl_cyc = _kl(h_ab) + _kl(h_ba)
        adv = adversarial(self.D_B(ab), True, _LS) + adversarial(self.D_A(ba), True, _LS)
        loss_g = (
            adv + self.w_recon * recon + self.w_kl * kl + self.w_cyc * cyc + self.w_kl_cyc * kl_cyc
        )
        loss_g.backward()
        self.opt_g.step()
        # Discriminator step.
        set_requires_grad((self.D_A, self.D_B), True)
        self.opt_d.zero_grad(set_to_none=True)
        d_a, d_b = self.parallel(self.D_A), self.parallel(self.D_B)
        loss_d = 0.5 * (
            adversarial(d_b(xb), True, _LS)
            + adversarial(d_b(ab.detach()), False, _LS)
            + adversarial(d_a(xa), True, _LS)
            + adversarial(d_a(ba.detach()), False, _LS)
        )
        loss_d.backward()
        self.opt_d.step()
        return {
            "g_adv": adv.item(),
            "recon": recon.item(),
            "cycle": cyc.item(),
            "kl": kl.item(),
            "g": loss_g.item(),
            "d": loss_d.item(),
        }
