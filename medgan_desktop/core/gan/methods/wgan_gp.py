"""WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with a gradient penalty.

Batch norm is replaced by layer norm in the critic (the per-sample penalty is invalid
with batch statistics) and the generator is updated once per ``n_critic`` critic steps.
:meth:`default_config` gives the paper's Adam settings (lr 1e-4, betas (0.0, 0.9)); the
CLI and the Train panel start from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from medgan_desktop.core.gan.methods.base import MethodSettings, register_method
from medgan_desktop.core.gan.methods.dcgan import AdversarialSynthesis, DCGANOptions
from medgan_desktop.core.gan.options import option


@dataclass(frozen=True)
class WGANGPOptions(DCGANOptions):
    loss: str = option("wgan", "Loss", "Adversarial loss: ns (BCE), lsgan, wgan or hinge.",
                       choices=("ns", "lsgan", "wgan", "hinge"), form=False)
    spectral_norm: bool = option(False, "Spectral norm", "Spectral normalisation of the critic.",
                                 form=False)
    r1_gamma: float = option(0.0, "R1 γ", "R1 penalty weight (0: off).", hi=100.0, form=False)
    d_norm: str = option("layer", "D normalisation", "Normalisation of the critic (layer: the "
                         "per-sample penalty is invalid with batch statistics).",
                         choices=("batch", "layer", "none"), form=False)
    n_critic: int = option(5, "Critic steps", "Critic (discriminator) updates per generator update.",
                           lo=1, hi=20)
    gp_lambda: float = option(10.0, "GP weight λ", "Weight of the gradient penalty (Gulrajani et al.: 10).",
                              hi=100.0)


@register_method("wgan_gp")
class WGANGP(AdversarialSynthesis):
    description = "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic + gradient penalty, 5 critic steps per G step."
    Options: ClassVar[type[WGANGPOptions]] = WGANGPOptions
    recommended: ClassVar[MethodSettings] = {"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.0, 0.9)}
