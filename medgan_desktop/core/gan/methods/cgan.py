"""Class-conditional GAN with a projection discriminator (Miyato & Koyama 2018).

Labelled data (e.g. NORMAL / PNEUMONIA from subfolders) -> ``G(z, y)`` with conditional
batch norm; the discriminator adds ``<embed(y), pooled features>`` to its output, uses
spectral normalisation and the hinge loss (as SNGAN / BigGAN). DiffAugment, generator
EMA and R1 are available through :class:`~medgan_desktop.core.gan.methods.base.MethodConfig`
(``diffaugment``, ``ema_decay``, ``extra["r1_gamma"]``).
"""

from __future__ import annotations

from medgan_desktop.core.gan.methods.base import register_method
from medgan_desktop.core.gan.methods.dcgan import AdversarialSynthesis


@register_method("cgan")
class ConditionalGAN(AdversarialSynthesis):
    description = (
        "Class-conditional GAN: projection discriminator with spectral norm, hinge loss, "
        "conditional batch norm generator. Needs labels (subfolders)."
    )
    conditional = True
    default_loss = "hinge"
    default_spectral = True
    default_d_norm = "none"
    recommended = {"betas": (0.0, 0.9)}  # SNGAN / projection discriminator setting
