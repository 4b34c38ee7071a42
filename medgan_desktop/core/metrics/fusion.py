"""Image-fusion quality metrics used in the seed literature: SF and SCD.

* Spatial frequency (Eskicioglu & Fisher 1995): ``SF = sqrt(RF² + CF²)`` with the row and
  column frequencies ``RF = sqrt(mean((I[i, j] − I[i, j−1])²))`` and
  ``CF = sqrt(mean((I[i, j] − I[i−1, j])²))``. Higher means more detail.
* Sum of the correlations of differences (Aslantas & Bendes 2015):
  ``SCD = r(F − S2, S1) + r(F − S1, S2)`` for a fused image ``F`` of sources ``S1``, ``S2``
  (range about −2..2; higher means the fused image carries more of each source).

Where they apply:

* SF is defined for any image. ``medgan evaluate`` reports it for both sets of the
  unpaired mode and, in paired mode, for the prediction and the reference
  (:func:`volume_spatial_frequency`: the mean over the slices of a volume, in HU for CT).
* SCD is defined only for a *fusion*: a fused image and the two source images it was made
  from, on one grid. Paired mode computes it when the two sources are given
  (``medgan evaluate --pred FUSED --ref REF --sources A B``; the Evaluate panel's "Fusion
  source" fields), with every image scaled to [0, 1] by its own range first, because
  fusion sources come in different units (MR signal, CT HU; :func:`scd_scaled`).
* An MR→sCT translation is not a fusion: the sCT is made from one source (the MR), and
  the reference CT is the target, not a second source. ``SCD(sCT; MR, CT)`` would reward
  the sCT for carrying MR contrast and is no measure of sCT quality, so it is not reported
  for translation; use MAE/ME/PSNR/SSIM there.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.types import PixelArray


def spatial_frequency(image: PixelArray) -> float:
    """Spatial frequency of a 2D image (same units as the intensities)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("spatial frequency needs a 2D image")
    rf2 = float(np.mean(np.diff(a, axis=1) ** 2)) if a.shape[1] > 1 else 0.0
    cf2 = float(np.mean(np.diff(a, axis=0) ** 2)) if a.shape[0] > 1 else 0.0
    return math.sqrt(rf2 + cf2)


def _corr(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def scd(fused: PixelArray, source1: PixelArray, source2: PixelArray) -> float:
    """Sum of the correlations of differences of a fused image and its two sources."""
    f, s1, s2 = (np.asarray(x, dtype=np.float64) for x in (fused, source1, source2))
    if not (f.shape == s1.shape == s2.shape):
        raise ValueError("fused and source images must have the same shape")
    return _corr(f - s2, s1) + _corr(f - s1, s2)


def volume_spatial_frequency(array: PixelArray) -> float:
    """SF of a 2D image, or the mean SF of the slices (first axis) of a 3D volume."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 2:
        return spatial_frequency(a)
    if a.ndim != 3 or a.shape[0] == 0:
        raise ValueError("spatial frequency needs a 2D image or a 3D volume")
    return float(np.mean([spatial_frequency(s) for s in a]))


def _unit(a: PixelArray) -> NDArray[np.float64]:
    x = np.asarray(a, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def scd_scaled(fused: PixelArray, source1: PixelArray, source2: PixelArray) -> float:
    """:func:`scd` after scaling each image to [0, 1] by its own min and max.

    For images or volumes in different units (e.g. an MR and a CT source); the
    correlations run over all pixels/voxels.
    """
    f, s1, s2 = (np.asarray(x) for x in (fused, source1, source2))
    if not (f.shape == s1.shape == s2.shape):
        raise ValueError(f"the fused image {f.shape} and its sources {s1.shape}, {s2.shape} "
                         "must have the same shape (one grid)")
    return scd(_unit(f), _unit(s1), _unit(s2))
