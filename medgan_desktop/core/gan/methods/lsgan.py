"""LSGAN (Mao et al. 2017): least-squares adversarial loss on the DCGAN networks."""

from __future__ import annotations

from medgan_desktop.core.gan.methods.base import register_method
from medgan_desktop.core.gan.methods.dcgan import AdversarialSynthesis


@register_method("lsgan")
class LSGAN(AdversarialSynthesis):
    description = "LSGAN (Mao et al. 2017): least-squares loss; steadier gradients than BCE."
    default_loss = "lsgan"
