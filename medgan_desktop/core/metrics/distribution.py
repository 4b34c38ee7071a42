"""Distribution metrics between a real and a synthetic feature set.

* Fréchet distance (FID when the features are InceptionV3's pool features).
* KID: unbiased MMD² with the cubic polynomial kernel ``(x·y / d + 1)³``, averaged over
  random subsets (Bińkowski et al. 2018); its expectation is 0 for equal distributions.
* Improved precision/recall (Kynkäänniemi et al. 2019, k-NN balls, k = 3).
* Density/coverage (Naeem et al. 2020, k = 5).
* Inception Score from class logits (Salimans et al. 2016).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import FloatArray, JsonObject

Features = NDArray[np.float64]


def _as2d(f: FloatArray) -> Features:
    a = np.asarray(f, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"features must be (N, D), got {a.shape}")
    return a


def frechet_distance(real: FloatArray, fake: FloatArray) -> float:
    """``|μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)`` between Gaussian fits of two sets.

    The trace of the matrix square root is computed from the eigenvalues of
    ``Σ1 Σ2`` (real and non-negative for two covariance matrices; numerical
    negatives are clipped), which avoids ``sqrtm``'s complex round-off.

    Raises:
        ValueError: with fewer than two samples in a set.
    """
    a, b = _as2d(real), _as2d(fake)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two images per set")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.atleast_2d(np.cov(a, rowvar=False))
    s2 = np.atleast_2d(np.cov(b, rowvar=False))
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = float(np.sqrt(np.clip(eig.real, 0.0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(d, 0.0)


def _poly_kernel(x: Features, y: Features) -> Features:
    k: Features = (x @ y.T / x.shape[1] + 1.0) ** 3
    return k


def mmd2_unbiased(x: Features, y: Features) -> float:
    """Unbiased MMD² estimate with the KID kernel."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(
    real: FloatArray,
    fake: FloatArray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and standard deviation over random subsets.

    When ``subset_size`` would take the whole of the smaller set, every subset of that set
    would be the same and the standard deviation would read ~0, a false certainty; subsets
    of half the smaller set are drawn instead (the unbiased MMD² has the same expectation at
    any subset size, so only the spread changes, and it is then a real one).

    Raises:
        ValueError: with fewer than two samples in a set.
    """
    a, b = _as2d(real), _as2d(fake)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least two images per set")
    if subsets > 1 and size == min(len(a), len(b)) and size >= 4:
        size //= 2
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        ia = rng.choice(len(a), size, replace=False)
        ib = rng.choice(len(b), size, replace=False)
        vals.append(mmd2_unbiased(a[ia], b[ib]))
    v = np.asarray(vals)
    return float(v.mean()), float(v.std())


def _pairwise(x: Features, y: Features) -> Features:
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    dist: Features = np.sqrt(np.clip(d2, 0.0, None))
    return dist


def _knn_radii(x: Features, k: int) -> Features:
    d = _pairwise(x, x)
    k = min(k, len(x) - 1)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: FloatArray, fake: FloatArray, k: int = 3) -> tuple[float, float]:
    """Improved precision (fake inside the real manifold) and recall (real inside the fake one)."""
    a, b = _as2d(real), _as2d(fake)
    ra, rb = _knn_radii(a, k), _knn_radii(b, k)
    dab = _pairwise(a, b)  # (real, fake)
    precision = float((dab <= ra[:, None]).any(axis=0).mean())
    recall = float((dab <= rb[None, :]).any(axis=1).mean())
    return precision, recall


def density_coverage(real: FloatArray, fake: FloatArray, k: int = 5) -> tuple[float, float]:
    """Density (can exceed 1) and coverage in [0, 1] (Naeem et al. 2020)."""
    a, b = _as2d(real), _as2d(fake)
    ra = _knn_radii(a, k)
    inside = _pairwise(a, b) <= ra[:, None]  # (real, fake)
    kk = min(k, len(a) - 1)
    density = float(inside.sum() / (kk * len(b)))
    coverage = float(inside.any(axis=1).mean())
    return density, coverage


def inception_score(logits: FloatArray, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``exp(E[KL(p(y|x) || p(y))])``: mean and std over splits."""
    lg = _as2d(logits)
    lg = lg - lg.max(axis=1, keepdims=True)
    p = np.exp(lg)
    p /= p.sum(axis=1, keepdims=True)
    scores = []
    for part in np.array_split(p, max(1, min(splits, len(p)))):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1).mean()
        scores.append(math.exp(float(kl)))
    return float(np.mean(scores)), float(np.std(scores))


@dataclass
class DistributionReport:
    """Unpaired metrics between a real and a synthetic set in one feature space."""

    extractor: str
    n_real: int
    n_fake: int
    fd: float
    kid: float
    kid_std: float
    precision: float
    recall: float
    density: float
    coverage: float
    inception_score: float | None = None
    inception_score_std: float | None = None

    def to_dict(self) -> JsonObject:
        d = asdict(self)
        d["fid"] = self.fd  # the CLI's and literature's name; see `extractor` for the space
        return d


def compare_features(real: FloatArray, fake: FloatArray, extractor: str = "", kid_subsets: int = 100,
                     kid_subset_size: int = 1000, k_pr: int = 3, k_dc: int = 5, seed: int = 0,
                     progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> DistributionReport:
    """Every unpaired metric for two feature sets of shape ``(N, D)``."""
    a, b = _as2d(real), _as2d(fake)
    steps = 4
    progress(Progress(0, steps, "Fréchet distance"))
    fd = frechet_distance(a, b)
    if cancel is not None:
        cancel.check()
    progress(Progress(1, steps, "KID"))
    k_mean, k_std = kid(a, b, kid_subsets, kid_subset_size, seed)
    if cancel is not None:
        cancel.check()
    progress(Progress(2, steps, "precision/recall"))
    p, r = precision_recall(a, b, k_pr)
    progress(Progress(3, steps, "density/coverage"))
    dens, cov = density_coverage(a, b, k_dc)
    progress(Progress(4, steps, "done"))
    return DistributionReport(extractor, len(a), len(b), fd, k_mean, k_std, p, r, dens, cov)
