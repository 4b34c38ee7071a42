"""Small statistics shared by the metrics and the reader study (no SciPy models needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from medgan_desktop.core.types import BoolArray, FloatArray, IntArray


def roc_auc(scores: FloatArray | Sequence[float], labels: IntArray | BoolArray | Sequence[int]) -> float:
    """ROC AUC via the Mann–Whitney U statistic (ties count one half).

    Args:
        scores: higher means "more likely positive".
        labels: 1 for positives, 0 for negatives.

    Returns:
        The AUC, or NaN when one class is absent.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = sps.rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def mean_ci(values: FloatArray | Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval ``(mean, lo, hi)`` (NaN bounds with n < 2)."""
    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean()) if v.size else float("nan")
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half
