"""Sampling from a trained synthesis model: same seed, same images, on any device.

Noise is drawn on the CPU from a ``torch.Generator`` seeded with ``seed`` and only then
moved to the model's device, so a seed reproduces its images exactly on one machine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from medgan_desktop.core.gan.methods.base import GanMethod
from medgan_desktop.core.models.runs import LoadedModel, Preprocessing
from medgan_desktop.core.types import FloatArray


class SampleError(ValueError):
    """The request does not fit the model (label out of range, translation model, ...)."""


def _labels(model: LoadedModel, n: int, label: int | str | None) -> torch.Tensor | None:
    cfg = model.method.config
    if not model.method.uses_labels:
        if label is not None:
            raise SampleError(f"model {model.info.method} is not class-conditional; drop the label")
        return None
    if label is None:
        return None
    names = model.info.preprocessing.class_names
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        if label not in names:
            raise SampleError(f"unknown class {label!r}; the model knows {list(names)}")
        idx = names.index(label)
    else:
        idx = int(label)
    if not 0 <= idx < cfg.num_classes:
        raise SampleError(f"label {idx} out of range 0..{cfg.num_classes - 1}")
    return torch.full((n,), idx, dtype=torch.long)


def _conditional(method: GanMethod) -> bool:
    return bool(method.uses_labels)


def _accepts(fn: Callable[..., object], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def truncation_mode(model: LoadedModel | type[GanMethod]) -> str | None:
    """Where a model (or method class) applies truncation ("decode": StyleGAN psi,
    "latents": truncated noise, "generate"), or None when it does not support it."""
    m = model.method if isinstance(model, LoadedModel) else model
    if hasattr(m, "decode") and _accepts(m.decode, "truncation"):
        return "decode"
    if hasattr(m, "latents") and _accepts(m.latents, "truncation"):
        return "latents"
    if _accepts(m.generate, "truncation"):
        return "generate"
    return None


def _check_synthesis(model: LoadedModel) -> None:
    if model.info.task != "synthesis":
        raise SampleError(f"{model.info.method} is a {model.info.task} model: use translate, not sample")


def sample(
    model: LoadedModel,
    n: int,
    seed: int = 0,
    label: int | str | None = None,
    truncation: float | None = None,
) -> NDArray[np.float32]:
    """``n`` images ``(n, C, H, W)`` in [-1, 1] from ``seed`` (identical for the same seed).

    Args:
        model: a loaded synthesis model.
        n: number of images.
        seed: RNG seed of the noise (and of random labels).
        label: class index or name for conditional models (None: random labels).
        truncation: where the method supports it (see :func:`truncation_mode`): StyleGAN psi in [0, 1], or the |z| threshold of truncated noise; None: off.
    """
    _check_synthesis(model)
    if n < 1:
        raise SampleError("n must be >= 1")
    method = model.method
    y = _labels(model, n, label)
    g = torch.Generator().manual_seed(int(seed))
    where = truncation_mode(model) if truncation is not None else None
    if truncation is not None and where is None:
        raise SampleError(f"{model.info.method} does not support truncation")
    if hasattr(method, "latents") and hasattr(method, "decode"):
        z = method.latents(n, g, truncation=truncation) if where == "latents" else method.latents(n, g)
        if y is None and _conditional(method):
            y = torch.randint(0, method.config.num_classes, (n,), generator=g)
        out = method.decode(z, y, truncation=truncation) if where == "decode" else method.decode(z, y)
    else:
        kw: dict[str, Any] = {"truncation": truncation} if where == "generate" else {}
        out = method.generate(n, generator=g, labels=y, **kw)
    images: NDArray[np.float32] = out.detach().float().cpu().clamp(-1, 1).numpy()
    return images


def interpolate(
    model: LoadedModel, seed_a: int, seed_b: int, steps: int = 8, label: int | str | None = None
) -> NDArray[np.float32]:
    """Images along the spherical interpolation between the latents of two seeds, ``(steps, C, H, W)``."""
    _check_synthesis(model)
    method = model.method
    if not (hasattr(method, "latents") and hasattr(method, "decode")):
        raise SampleError(f"{model.info.method} does not expose its latent space for interpolation")
    steps = max(2, int(steps))
    za = method.latents(1, torch.Generator().manual_seed(int(seed_a)))
    zb = method.latents(1, torch.Generator().manual_seed(int(seed_b)))
    t = torch.linspace(0.0, 1.0, steps)[:, None]
    a, b = za / za.norm(), zb / zb.norm()
    omega = torch.arccos((a * b).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    z = (torch.sin((1 - t) * omega) / so) * za + (torch.sin(t * omega) / so) * zb
    y = _labels(model, steps, label)
    if y is None and _conditional(method):
        y = torch.zeros(steps, dtype=torch.long)
    images: NDArray[np.float32] = method.decode(z, y).detach().float().cpu().numpy()
    return images


def to_physical(images: FloatArray, pre: Preprocessing) -> NDArray[np.float32]:
    """Invert the run's normalisation: HU for CT (fixed window), 0..255 for 8-bit images.

    Percentile-window models (MR) have no absolute scale: the result is on 0..1000.
    """
    from medgan_desktop.core.imaging.intensity import WindowMode

    if pre.target.mode == WindowMode.FIXED:
        return pre.target.from_unit(images)
    return pre.target.from_unit(images, bounds=(0.0, 1000.0))
