"""Memorisation: a planted copy of a training image is flagged; fresh images mostly are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan_desktop.core.metrics.features import default_extractor
from medgan_desktop.core.metrics.images import load_image
from medgan_desktop.core.metrics.memorization import find_near_copies


@pytest.fixture(scope="module")
def sets(shared_data: Path):
    """Train / held-out / fresh images from 150 *different* patients (one image each)."""
    files = sorted((shared_data / "chest_xray" / "train" / "PNEUMONIA").glob("person*.jpeg"))
    per_patient = {}
    for f in files:
        per_patient.setdefault(f.name.split("_")[0], f)
    chosen = list(per_patient.values())
    chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, 150).round().astype(int)]
    imgs = np.stack([load_image(f, 64) for f in chosen])
    names = [f.name for f in chosen]
    return imgs[:80], names[:80], imgs[80:120], imgs[120:150], names[120:150]


def test_planted_copy_is_flagged(sets):
    train, train_names, test, fresh, fresh_names = sets
    rng = np.random.default_rng(0)
    copy = train[17].copy()
    # a near-copy: the training image, slightly shifted in intensity with faint noise
    near = np.clip(train[42] * 0.98 + 0.01 + rng.normal(0, 0.005, train[42].shape), 0, 1)
    fakes = np.concatenate([fresh, copy[None], near[None].astype(np.float32)])
    names = [*fresh_names, "planted_copy.png", "planted_near.png"]
    ext = default_extractor()
    rep = find_near_copies(ext.extract(fakes), ext.extract(train), fakes, train,
                           ext.extract(test), test, names, train_names, percentile=1.0)
    by = {e["fake"]: e for e in rep.entries}
    assert by["planted_copy.png"]["flagged"]
    assert by["planted_copy.png"]["nearest_real"] == train_names[17]
    assert by["planted_copy.png"]["distance"] == pytest.approx(0.0, abs=1e-4)
    assert by["planted_near.png"]["flagged"]
    assert by["planted_near.png"]["nearest_real_pixel"] == train_names[42]
    # genuinely different patients: at most a few false alarms at the 1st percentile
    assert sum(by[n]["flagged"] for n in fresh_names) <= 2
    assert rep.reference == "held-out real" and len(rep.reference_feature_distances) == len(test)
    assert rep.to_dict()["n_flagged"] == len(rep.flagged)


def test_leave_one_out_reference_without_test_set(sets):
    train, train_names, _, fresh, _ = sets
    ext = default_extractor()
    fakes = np.concatenate([fresh[:5], train[3:4]])
    rep = find_near_copies(ext.extract(fakes), ext.extract(train), fakes, train,
                           train_names=train_names)
    assert rep.reference == "train leave-one-out"
    assert rep.entries[-1]["flagged"] and rep.entries[-1]["nearest_real"] == train_names[3]
    assert rep.feature_threshold > 0  # a training image never counts itself as neighbour
