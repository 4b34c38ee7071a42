"""LSGAN (Mao et al. 2017): least-squares adversarial loss on the DCGAN networks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from medgan_desktop.core.gan.methods.base import register_method
from medgan_desktop.core.gan.methods.dcgan import AdversarialSynthesis, DCGANOptions
from medgan_desktop.core.gan.options import option


@dataclass(frozen=True)
class LSGANOptions(DCGANOptions):
    loss: str = option("lsgan", "Loss", "Adversarial loss: ns (BCE), lsgan, wgan or hinge.",
                       choices=("ns", "lsgan", "wgan", "hinge"), form=False)


@register_method("lsgan")
class LSGAN(AdversarialSynthesis):
    description = "LSGAN (Mao et al. 2017): least-squares loss; steadier gradients than BCE."
    Options: ClassVar[type[LSGANOptions]] = LSGANOptions
