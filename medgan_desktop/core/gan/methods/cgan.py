"""Class-conditional GAN with a projection discriminator (Miyato & Koyama 2018).

Labelled data (e.g. NORMAL / PNEUMONIA from subfolders) -> ``G(z, y)`` with conditional
batch norm; the discriminator adds ``<embed(y), pooled features>`` to its output, uses
spectral normalisation and the hinge loss (as SNGAN / BigGAN). DiffAugment, generator
EMA and R1 are available through :class:`~medgan_desktop.core.gan.methods.base.MethodConfig`
(``diffaugment``, ``ema_decay``, ``extra["r1_gamma"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from medgan_desktop.core.gan.methods.base import MethodSettings, register_method
from medgan_desktop.core.gan.methods.dcgan import _R1, _SPECTRAL, AdversarialSynthesis, DCGANOptions
from medgan_desktop.core.gan.options import option


@dataclass(frozen=True)
class CGANOptions(DCGANOptions):
    loss: str = option("hinge", "Loss", "Adversarial loss: ns (BCE), lsgan, wgan or hinge.",
                       choices=("ns", "lsgan", "wgan", "hinge"), form=False)
    spectral_norm: bool = option(True, "Spectral norm", _SPECTRAL)
    r1_gamma: float = option(0.0, "R1 γ", _R1, hi=100.0)
    d_norm: str = option("none", "D normalisation", "Normalisation of the discriminator.",
                         choices=("batch", "layer", "none"), form=False)
    g_cond: str = option("cbn", "Label input", "How the generator sees the class: conditional batch "
                         "norm (cbn) or a label embedding concatenated to the noise (concat).",
                         choices=("cbn", "concat"))


@register_method("cgan")
class ConditionalGAN(AdversarialSynthesis):
    description = (
        "Class-conditional GAN: projection discriminator with spectral norm, hinge loss, "
        "conditional batch norm generator. Needs labels (subfolders)."
    )
    requires_labels = True
    Options: ClassVar[type[CGANOptions]] = CGANOptions
    recommended: ClassVar[MethodSettings] = {"betas": (0.0, 0.9)}  # SNGAN / projection discriminator setting
