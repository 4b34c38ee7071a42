"""Body masks: which voxels are the patient (for masked metrics, losses and overlays)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medgan_desktop.core.types import BoolArray, PixelArray
from medgan_desktop.core.volume import Volume


def body_mask(ref: Volume | PixelArray, threshold: float | None = None) -> BoolArray:
    """A body mask from the reference: threshold, largest component, holes filled per slice.

    Args:
        ref: the reference volume (HU for CT).
        threshold: intensity above which a voxel is body; default −500 HU for CT
            (``units == "HU"`` or plain arrays), Otsu's threshold otherwise.
    """
    arr = np.asarray(ref.array if isinstance(ref, Volume) else ref, dtype=np.float32)
    if threshold is None:
        is_ct = not isinstance(ref, Volume) or ref.units == "HU" or ref.modality == "CT"
        threshold = -500.0 if is_ct else _otsu(arr)
    m = arr > threshold
    if not m.any():
        return m
    labels, n = ndimage.label(m)
    if n > 1:
        sizes = ndimage.sum_labels(m, labels, index=np.arange(1, n + 1))
        m = labels == (int(np.argmax(sizes)) + 1)
    m = ndimage.binary_closing(m, structure=np.ones((1, 3, 3), bool), iterations=2) | m
    for k in range(m.shape[0]):
        m[k] = ndimage.binary_fill_holes(m[k])
    return np.asarray(m, dtype=bool)


def _otsu(arr: PixelArray) -> float:
    hist, edges = np.histogram(arr, bins=256)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centers)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centers[int(np.argmax(between))])


def ct_body_mask(ct: Volume | PixelArray) -> BoolArray:
    """Body mask of a CT in HU (threshold -500 HU, largest component, holes filled)."""
    return body_mask(ct if isinstance(ct, Volume) else np.asarray(ct), threshold=-500.0)
