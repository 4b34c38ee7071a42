"""Image-fusion quality metrics used in the seed literature: SF and SCD.

* Spatial frequency (Eskicioglu & Fisher 1995): ``SF = sqrt(RF² + CF²)`` with the row and
  column frequencies ``RF = sqrt(mean((I[i, j] − I[i, j−1])²))`` and
  ``CF = sqrt(mean((I[i, j] − I[i−1, j])²))``. Higher means more detail.
* Sum of the correlations of differences (Aslantas & Bendes 2015):
  ``SCD = r(F − S2, S1) + r(F − S1, S2)`` for a fused image ``F`` of sources ``S1``, ``S2``
  (range about −2..2; higher means the fused image carries more of each source).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray


def spatial_frequency(image: NDArray[Any]) -> float:
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


def scd(fused: NDArray[Any], source1: NDArray[Any], source2: NDArray[Any]) -> float:
    """Sum of the correlations of differences of a fused image and its two sources."""
    f, s1, s2 = (np.asarray(x, dtype=np.float64) for x in (fused, source1, source2))
    if not (f.shape == s1.shape == s2.shape):
        raise ValueError("fused and source images must have the same shape")
    return _corr(f - s2, s1) + _corr(f - s1, s2)
