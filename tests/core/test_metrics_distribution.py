"""Distribution metrics: honest properties on Gaussian features and real chest X-rays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan_desktop.core.metrics import distribution as dist
from medgan_desktop.core.metrics.features import FeatureExtractor, default_extractor
from medgan_desktop.core.metrics.fusion import scd, spatial_frequency
from medgan_desktop.core.metrics.images import load_images


@pytest.fixture(scope="module")
def xray(shared_data: Path) -> np.ndarray:
    s = load_images(shared_data / "chest_xray" / "train" / "NORMAL", size=64, limit=64)
    return np.stack(s.images)


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return default_extractor()


def test_frechet_distance_gaussian_properties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 8))
    assert dist.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 2.0] + [0.0] * 6)
    b = rng.normal(size=(4000, 8)) + shift
    assert dist.frechet_distance(a, b) == pytest.approx(5.0, abs=0.25)  # |mu|^2
    c = rng.normal(size=(4000, 8)) * 2.0  # sigma 2: tr(I + 4I - 2*2I) = 8
    assert dist.frechet_distance(a, c) == pytest.approx(8.0, rel=0.08)


def test_kid_unbiased_on_same_distribution():
    rng = np.random.default_rng(1)
    vals = [dist.mmd2_unbiased(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)))
            for _ in range(300)]
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals)) < 3 * se  # expectation 0: unbiased
    biased_like = np.mean([dist._poly_kernel(x, x).mean() + dist._poly_kernel(y, y).mean()
                           - 2 * dist._poly_kernel(x, y).mean()
                           for x, y in ((rng.normal(size=(40, 16)), rng.normal(size=(40, 16)))
                                        for _ in range(50))])
    assert biased_like > 10 * se  # the V-statistic would be clearly positive
    k_same, _ = dist.kid(rng.normal(size=(300, 16)), rng.normal(size=(300, 16)), subsets=20,
                         subset_size=100)
    k_diff, _ = dist.kid(rng.normal(size=(300, 16)), rng.normal(size=(300, 16)) + 0.5,
                         subsets=20, subset_size=100)
    assert abs(k_same) < 0.02 < k_diff


def test_precision_recall_density_coverage():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 4))
    p, r = dist.precision_recall(real, real.copy())
    assert p == 1.0 and r == 1.0
    d, c = dist.density_coverage(real, real.copy())
    assert c == 1.0 and d == pytest.approx(1.0, abs=0.3)
    far = real + 100.0
    assert dist.precision_recall(real, far) == (0.0, 0.0)
    assert dist.density_coverage(real, far) == (0.0, 0.0)
    collapsed = real[np.linalg.norm(real, axis=1) < 0.8]  # one mode only
    p, r = dist.precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.6
    _, c = dist.density_coverage(real, collapsed)
    assert c < 0.6


def test_inception_score_bounds():
    assert dist.inception_score(np.zeros((100, 10)))[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(100) % 10] * 50.0
    assert dist.inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-3)


def test_fusion_metrics():
    assert spatial_frequency(np.ones((16, 16))) == 0.0
    checker = (np.indices((16, 16)).sum(0) % 2).astype(float)
    assert spatial_frequency(checker) == pytest.approx(np.sqrt(2.0))
    rng = np.random.default_rng(3)
    s1, s2 = rng.normal(size=(32, 32)), rng.normal(size=(32, 32))
    assert scd(s1 + s2, s1, s2) == pytest.approx(2.0)
    assert scd(s1, s1, s2) < 1.1  # a fused image that ignores s2 scores lower


def test_shipped_extractor_fd_zero_and_grows_with_noise(xray, extractor):
    assert extractor.dim == 256
    f = extractor.extract(xray)
    assert f.shape == (len(xray), 256) and np.isfinite(f).all()
    assert dist.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6 * np.trace(np.cov(f.T)))
    rng = np.random.default_rng(0)
    fds, kids = [], []
    for sigma in (0.02, 0.1, 0.3):
        noisy = np.clip(xray + rng.normal(0, sigma, xray.shape), 0, 1).astype(np.float32)
        g = extractor.extract(noisy)
        fds.append(dist.frechet_distance(f, g))
        kids.append(dist.kid(f, g, subsets=10, subset_size=48)[0])
    assert fds[0] < fds[1] < fds[2], fds
    assert kids[0] < kids[2], kids
    # two halves of the same real set are closer than real vs heavily noised
    h = len(f) // 2
    assert dist.frechet_distance(f[:h], f[h:]) < fds[2]


def test_compare_features_report(xray, extractor):
    f = extractor.extract(xray)
    rep = dist.compare_features(f[:40], f[40:], extractor=extractor.name, kid_subsets=5,
                                kid_subset_size=20)
    d = rep.to_dict()
    assert d["fid"] == d["fd"] >= 0 and 0 <= d["precision"] <= 1 and 0 <= d["coverage"] <= 1
    assert d["extractor"] == extractor.name and d["n_real"] == 40


def test_kid_spread_is_real_when_the_subset_would_be_the_whole_set():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 0.3
    mean, std = dist.kid(x, y, subsets=50, subset_size=1000)  # 1000 > 60: would be the whole set
    assert std > 1e-3 * abs(mean) and std > 1e-6
    full = dist.mmd2_unbiased(x, y)
    assert abs(mean - full) < 3 * std  # the same expectation
