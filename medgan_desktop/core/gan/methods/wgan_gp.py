"""WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with a gradient penalty.

Batch norm is replaced by layer norm in the critic (the per-sample penalty is invalid
with batch statistics) and the generator is updated once per ``n_critic`` critic steps.
:meth:`default_config` gives the paper's Adam settings (lr 1e-4, betas (0.0, 0.9)); the
CLI and the Train panel start from it.
"""

from __future__ import annotations

from medgan_desktop.core.gan.methods.base import register_method
from medgan_desktop.core.gan.methods.dcgan import AdversarialSynthesis


@register_method("wgan_gp")
class WGANGP(AdversarialSynthesis):
    description = "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic + gradient penalty, 5 critic steps per G step."
    default_loss = "wgan"
    default_d_norm = "layer"
    default_gp_lambda = 10.0
    default_n_critic = 5
    recommended = {"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.0, 0.9)}
