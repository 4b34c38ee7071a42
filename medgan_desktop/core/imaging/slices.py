"""One slice of a volume <-> the network's square, and the neighbours of a slice (2.5D).

Training (:mod:`medgan_desktop.core.training.slice_data`) and inference
(:mod:`medgan_desktop.core.inference.translate`) use exactly these mappings, so an
image is padded, resized and cropped back the same way in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from medgan_desktop.core.volume import Volume


def fit_square(img: torch.Tensor, size: int, pad_value: float = -1.0) -> torch.Tensor:
    """Pad ``(..., H, W)`` to a centred square with ``pad_value`` and resize to ``size``."""
    h, w = img.shape[-2:]
    s = max(h, w)
    if h != w:
        top, left = (s - h) // 2, (s - w) // 2
        img = F.pad(img, (left, s - w - left, top, s - h - top), value=pad_value)
    if s != size:
        x = img.reshape(-1, 1, s, s) if img.ndim != 4 else img
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=s > size, align_corners=False
        )
        img = x.reshape(*img.shape[:-2], size, size)
    return img


def unfit_square(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`fit_square`: resize ``(B, C, S, S)`` back and crop to ``height x width``."""
    s = max(height, width)
    if img.shape[-1] != s:
        img = F.interpolate(
            img, size=(s, s), mode="bilinear", antialias=img.shape[-1] > s, align_corners=False
        )
    top, left = (s - height) // 2, (s - width) // 2
    return img[..., top : top + height, left : left + width]


def context_indices(k: int, n: int, context: int) -> list[int]:
    """Slice indices ``k - c .. k + c`` clamped to ``[0, n)`` (edge slices repeat)."""
    return [min(max(k + d, 0), n - 1) for d in range(-context, context + 1)]


def volume_slices(vol: Volume, slices: Sequence[int]) -> Volume:
    """The slices ``slices`` (ascending) of ``vol``: a slab when they are contiguous; any
    selection for a stack of 2D images without patient geometry (slices left out by the
    registration QC), where no spacing is implied between them.

    Raises:
        ValueError: non-adjacent slices of a volume with patient geometry (the result
            would claim a spacing it does not have).
    """
    ks = list(slices)
    if ks and ks == list(range(ks[0], ks[0] + len(ks))):
        return volume_slab(vol, ks)
    if not ks or vol.geometry_known or ks != sorted(set(ks)):
        raise ValueError("a volume with patient geometry can only be cut into contiguous slabs")
    return replace(vol, array=np.ascontiguousarray(vol.array[ks]))


def volume_slab(vol: Volume, slices: Sequence[int]) -> Volume:
    """A sub-volume of contiguous slices ``slices`` (origin moved accordingly)."""
    ks = list(slices)
    if not ks or ks != list(range(ks[0], ks[0] + len(ks))):
        raise ValueError("volume_slab needs contiguous ascending slice indices")
    origin = tuple(float(x) for x in vol.index_to_lps((0.0, 0.0, float(ks[0]))))
    return replace(vol, array=np.ascontiguousarray(vol.array[ks[0] : ks[-1] + 1]), origin=origin)  # type: ignore[arg-type]
