"""Window presets and the value -> grey mapping."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_desktop.core.imaging.windowing import (
    CT_PRESETS,
    apply_window,
    auto_window,
    ct_preset,
    default_window,
    presets_for,
)


def test_presets_have_the_radiology_values() -> None:
    got = {p.name.split(" ")[0].lower(): (p.width, p.level) for p in CT_PRESETS}
    assert got["brain"] == (80, 40)
    assert got["subdural"] == (200, 75)
    assert got["stroke"] == (40, 40)
    assert got["bone"] == (2000, 500)
    assert got["lung"] == (1500, -600)
    assert got["soft"] == (400, 40)
    assert got["mediastinum"] == (350, 50)
    assert ct_preset("bone").width == 2000
    with pytest.raises(KeyError):
        ct_preset("nonsense")


def test_apply_window_maps_edges_and_centre() -> None:
    arr = np.array([-1000, 0, 40, 80, 1000], dtype=np.int16)
    out = apply_window(arr, 80, 40)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255]
    inv = apply_window(arr, 80, 40, invert=True)
    assert inv.tolist() == [255, 255, 128, 0, 0]


def test_auto_and_default_window() -> None:
    rng = np.random.default_rng(0)
    mr = rng.uniform(100, 900, size=(4, 32, 32)).astype(np.float32)
    w, c = auto_window(mr)
    assert 700 < w < 800 and 480 < c < 520
    assert default_window(mr, "MR", "scanner") == (w, c)
    assert default_window(mr, "CT", "HU") == (400, 40)
    assert default_window(mr, "CT", "HU", {"window_width": 80, "window_center": 40}) == (80, 40)
    assert presets_for("MR", "scanner") == []
    assert len(presets_for("CT", "HU")) == 7
