"""GAN methods: one class per method, registered explicitly with ``@register_method``.

``load_all()`` imports every method module so the registry is complete. Add a
new module's name to ``_MODULES`` when you add a method.
"""

from __future__ import annotations

import importlib

_MODULES: tuple[str, ...] = (
    "pix2pix",
    "cyclegan",
    "unit",
    "distill",
    "dcgan",
    "lsgan",
    "wgan_gp",
    "cgan",
    "stylegan2",
    "progressive",
)


def load_all() -> None:
    """Import every method module (each registers itself)."""
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")
