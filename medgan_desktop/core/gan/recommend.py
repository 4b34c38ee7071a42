"""The recommended starting point for a new user training on a small local image set.

Chosen by measurement, not by taste: ``benchmarks/bench_synthesis_quality.py`` trains
each candidate on the chest X-rays (all 4,434 training images, and only 500) for the
same CPU budget and compares the Fréchet distance and KID against plain DCGAN; the
results and the verdict are in ``benchmarks/results/synthesis_quality.md``. The Train
panel opens on this method with these options, and ``medgan train --method recommended``
uses them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Unpack

from medgan_desktop.core.gan.methods.base import MethodConfig, MethodSettings, get_method

#: Registry name of the recommended method.
RECOMMENDED_METHOD = "dcgan"
#: Options on top of the method's own preset: DiffAugment (Zhao et al. 2020) on real and
#: fake images, and a generator EMA with step ramp-up (see :mod:`medgan_desktop.core.gan.ema`).
RECOMMENDED_OPTIONS: MethodSettings = {"diffaugment": "translation,cutout", "ema_decay": 0.99}
#: The alias the CLI accepts for it.
ALIAS = "recommended"


def preset(method: str) -> MethodConfig:
    """A method's published preset (its ``default_config``), or the plain defaults."""
    return get_method(method).default_config()


def recommended_config(**overrides: Unpack[MethodSettings]) -> MethodConfig:
    """The recommended method's preset with :data:`RECOMMENDED_OPTIONS`, then ``overrides``."""
    return dataclasses.replace(preset(RECOMMENDED_METHOD), **(RECOMMENDED_OPTIONS | overrides))


def describe() -> str:
    """One line for tooltips and help texts."""
    opts = ", ".join(f"{k}={v}" for k, v in RECOMMENDED_OPTIONS.items())
    return (
        f"{RECOMMENDED_METHOD} with {opts}: beat plain DCGAN on 500 and on 4,434 chest X-rays at "
        "equal CPU budget (FD 2-3x lower; benchmarks/results/synthesis_quality.md)"
    )


@dataclasses.dataclass(frozen=True)
class TranslationRecipe:
    """The recommended MR -> CT recipe: a method, its options and the job settings.

    Args:
        method: the translation method.
        options: its options (``MethodConfig.extra``).
        settings: fields of the translation training spec (register, flip, size...).
        measured: where it was measured.
    """

    method: str
    options: dict[str, Any]
    settings: dict[str, Any]
    measured: str = ""


def translation_recipe() -> TranslationRecipe:
    """``medgan translate-train --method recommended`` (and the Train panel's default)."""
    return TranslationRecipe(
        method="unet_l1",
        options={"mask_weight": 1.0},
        settings={"register": True, "flip": True},
        measured="benchmarks/results/translation.md",
    )
