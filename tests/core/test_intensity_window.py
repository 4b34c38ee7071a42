"""Percentile windows on large volumes: a strided sample gives the same bounds, deterministically."""

from __future__ import annotations

import numpy as np

from medgan_desktop.core.imaging.intensity import IntensityWindow


def test_large_volume_bounds_match_exact_percentiles() -> None:
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 200.0, size=(80, 256, 256)).astype(np.float32)  # 5.2 M voxels
    vol[:, :, :32] = 0.0  # a dark band aligned with the width: a bad stride would alias
    w = IntensityWindow.mr()
    lo, hi = w.resolve(vol)
    elo, ehi = np.percentile(vol, [w.p_lo, w.p_hi])
    assert abs(lo - elo) <= 0.002 * (ehi - elo)
    assert abs(hi - ehi) <= 0.002 * (ehi - elo)
    assert w.resolve(vol) == (lo, hi)  # deterministic


def test_small_volumes_use_every_voxel() -> None:
    vol = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    lo, hi = IntensityWindow.mr(0.0, 100.0).resolve(vol)
    assert (lo, hi) == (0.0, 999.0)
