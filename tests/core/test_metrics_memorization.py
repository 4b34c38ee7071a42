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


def _fakes_with_copy(train, fresh, fresh_names):
    fakes = np.concatenate([fresh, train[17:18]])
    return fakes, [*fresh_names, "planted_copy.png"]


def test_held_out_equal_to_train_still_flags_the_copy(sets):
    """Real set == training set: the reference falls back to leave-one-out and says so."""
    train, train_names, _, fresh, fresh_names = sets
    fakes, names = _fakes_with_copy(train, fresh, fresh_names)
    ext = default_extractor()
    ft = ext.extract(train)
    rep = find_near_copies(ext.extract(fakes), ft, fakes, train, ft, train, names, train_names,
                           percentile=1.0, test_in_train=[True] * len(train))
    by = {e["fake"]: e for e in rep.entries}
    assert by["planted_copy.png"]["flagged"] and by["planted_copy.png"]["exact_copy"]
    assert by["planted_copy.png"]["nearest_real"] == train_names[17]
    assert by["planted_copy.png"]["pixel_distance"] == 0.0
    assert rep.reference == "train leave-one-out" and rep.n_reference_excluded == len(train)
    assert "overlaps the training set" in rep.reference_note
    assert rep.feature_threshold > 0 and rep.pixel_threshold > 0
    # fresh patients are still (almost) never flagged
    assert sum(by[n]["flagged"] for n in fresh_names) <= 2
    assert not any(by[n]["exact_copy"] for n in fresh_names)


def test_identical_images_are_detected_without_flags(sets):
    """Even without the caller's flags, held-out images identical to training ones are dropped."""
    train, train_names, test, fresh, fresh_names = sets
    fakes, names = _fakes_with_copy(train, fresh, fresh_names)
    ext = default_extractor()
    ft = ext.extract(train)
    rep = find_near_copies(ext.extract(fakes), ft, fakes, train, ft, train, names, train_names)
    assert rep.reference == "train leave-one-out" and rep.n_reference_excluded == len(train)
    assert rep.entries[-1]["flagged"]
    # partly overlapping: 20 training images inside 40 held-out ones -> the 40 stay the reference
    mixed = np.concatenate([train[:20], test])
    fm = np.concatenate([ft[:20], ext.extract(test)])
    flags = [True] * 20 + [False] * len(test)
    rep2 = find_near_copies(ext.extract(fakes), ft, fakes, train, fm, mixed, names, train_names,
                            test_in_train=flags)
    assert rep2.reference == "held-out real" and rep2.n_reference_excluded == 20
    assert len(rep2.reference_feature_distances) == len(test)
    assert min(rep2.reference_pixel_distances) > 0
    assert "left out of the reference" in rep2.reference_note
    by = {e["fake"]: e for e in rep2.entries}
    assert by["planted_copy.png"]["flagged"]
    assert sum(by[n]["flagged"] for n in fresh_names) <= 2


def test_no_copies_flags_almost_nothing(sets):
    """A synthetic set with no copies in it, real == train: (almost) nothing is flagged."""
    train, train_names, _, fresh, fresh_names = sets
    ext = default_extractor()
    ft = ext.extract(train)
    rep = find_near_copies(ext.extract(fresh), ft, fresh, train, ft, train, fresh_names,
                           train_names, test_in_train=[True] * len(train))
    assert len(rep.flagged) <= 2
    assert not any(e["exact_copy"] for e in rep.entries)


def test_files_in_matches_path_or_content(tmp_path):
    from medgan_desktop.core.metrics.evaluate import files_in

    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    sub = tmp_path / "sub"
    sub.mkdir()
    assert files_in([a, b, c, sub / ".." / "c.png"], [a]) == [True, True, False, False]
    assert files_in([sub / ".." / "c.png"], [c]) == [True]
