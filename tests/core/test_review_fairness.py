"""A fair reader study: real and synthetic items shown alike, and a check that says when a
trivial pixel statistic still tells them apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medgan_desktop.core.jobs.review import CreateSpec, run_create
from medgan_desktop.core.review.fairness import WARN_AUC, pixel_statistics
from medgan_desktop.core.review.session import ReviewStore, Truth


def _xrays(shared_data: Path, n: int, offset: int = 0) -> list[np.ndarray]:
    src = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[offset:offset + n]
    assert len(src) == n
    return [np.asarray(Image.open(f).convert("L").resize((224, 224)), dtype=np.float32) for f in src]


def _save(folder: Path, images: list[np.ndarray], stem: str) -> Path:
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{stem}_{i}.png")
    return folder


def _pools(tmp_path: Path, shared_data: Path, fake_side: int, blur: bool = False) -> tuple[Path, Path]:
    """8 real films at 224 px and 8 other real films at ``fake_side`` px standing in for a
    generator's output (downsampled, optionally blurred: what a weak generator makes)."""
    real = _save(tmp_path / "real", _xrays(shared_data, 8), "patient")
    fakes = []
    for img in _xrays(shared_data, 8, offset=8):
        small = Image.fromarray(img.astype(np.uint8)).resize((fake_side, fake_side), Image.Resampling.BILINEAR)
        arr = np.asarray(small, dtype=np.float32)
        if blur:
            from scipy.ndimage import gaussian_filter

            arr = gaussian_filter(arr, 2.0)
        fakes.append(arr)
    return real, _save(tmp_path / "fake", fakes, "gan")


def _items(store: ReviewStore, sid: str) -> dict[Truth, list[np.ndarray]]:
    out: dict[Truth, list[np.ndarray]] = {Truth.REAL: [], Truth.SYNTHETIC: []}
    for item_id, (truth, _src) in store.truths(sid).items():
        out[truth].append(store.item(sid, item_id).image)
    return out


def test_items_are_shown_at_one_size_and_bit_depth(tmp_path: Path, shared_data: Path) -> None:
    real, fake = _pools(tmp_path, shared_data, fake_side=64)
    info = run_create(CreateSpec(str(tmp_path / "r.sqlite"), "fair", (real,), (fake,), seed=1))
    store = ReviewStore(tmp_path / "r.sqlite")
    items = _items(store, info.id)
    shapes = {img.shape for imgs in items.values() for img in imgs}
    assert shapes == {(64, 64)}  # 224 px real films brought down to the synthetic 64 px
    for imgs in items.values():
        for img in imgs:  # the same 8-bit grey scale for every item
            assert img.min() >= 0 and img.max() <= 255 and np.array_equal(img, np.rint(img))
            assert img.max() > 200 and img.min() < 50
    fair = info.fairness
    assert fair is not None and fair.equalisation is not None
    assert fair.equalisation.display_size == 64
    assert (fair.equalisation.native_real, fair.equalisation.native_synthetic) == (224, 64)
    text = " ".join(fair.lines())
    assert "64 px" in text and "bilinear" in text and "8-bit" in text and "Orientation letters" in text
    size = next(c for c in fair.checks if c.name == "matrix size")
    assert size.auc == 0.5 and not fair.warnings


def test_a_sharpness_difference_is_warned_about(tmp_path: Path, shared_data: Path) -> None:
    real, fake = _pools(tmp_path, shared_data, fake_side=224, blur=True)
    info = run_create(CreateSpec(str(tmp_path / "r.sqlite"), "blurred", (real,), (fake,), seed=1))
    fair = info.fairness
    assert fair is not None
    sharp = next(c for c in fair.checks if c.name == "sharpness")
    assert sharp.auc >= WARN_AUC and sharp.mean_synthetic < sharp.mean_real
    assert any(w.startswith("sharpness alone separates") for w in fair.warnings)
    assert any(line.startswith("WARNING: sharpness") for line in fair.lines())


def test_not_equalising_is_said_and_the_size_gives_it_away(tmp_path: Path, shared_data: Path) -> None:
    real, fake = _pools(tmp_path, shared_data, fake_side=64)
    info = run_create(CreateSpec(str(tmp_path / "r.sqlite"), "raw", (real,), (fake,), seed=1,
                                 equalise=False))
    fair = info.fairness
    assert fair is not None and fair.equalisation is None
    assert fair.lines()[0].startswith("Items were shown as read (not equalised)")
    assert any(w.startswith("matrix size alone separates") for w in fair.warnings)


def test_a_chosen_display_size_and_the_report_travel_with_the_session(tmp_path: Path, shared_data: Path) -> None:
    real, fake = _pools(tmp_path, shared_data, fake_side=64)
    info = run_create(CreateSpec(str(tmp_path / "a.sqlite"), "sized", (real,), (fake,), seed=1,
                                 display_size=128))
    store = ReviewStore(tmp_path / "a.sqlite")
    assert {img.shape for imgs in _items(store, info.id).values() for img in imgs} == {(128, 128)}
    out = store.export_session(info.id, tmp_path / "s.zip")
    other = ReviewStore(tmp_path / "b.sqlite")
    sid = other.import_session(out)
    assert other.session(sid).fairness == store.session(info.id).fairness
    assert "chosen for this study" in " ".join(other.session(sid).fairness.lines())  # type: ignore[union-attr]


def test_too_few_items_for_the_check_is_said(tmp_path: Path, shared_data: Path) -> None:
    imgs = _xrays(shared_data, 4)
    real = _save(tmp_path / "real", imgs[:2], "p")
    fake = _save(tmp_path / "fake", imgs[2:], "g")
    info = run_create(CreateSpec(str(tmp_path / "r.sqlite"), "tiny", (real,), (fake,), seed=1))
    assert info.fairness is not None and not info.fairness.checks
    assert "Too few items" in info.fairness.note


@pytest.mark.parametrize("name", ["sharpness", "noise", "brightness", "contrast", "matrix size"])
def test_pixel_statistics_respond_to_what_they_name(name: str) -> None:
    rng = np.random.default_rng(0)
    base = np.zeros((64, 64), np.float32)
    base[16:48, 16:48] = 200.0
    base += rng.normal(0, 2, base.shape).astype(np.float32)
    changed = {
        "sharpness": np.asarray(__import__("scipy.ndimage", fromlist=["x"]).gaussian_filter(base, 3.0)),
        "noise": base + rng.normal(0, 20, base.shape).astype(np.float32),
        "brightness": np.where(np.arange(64)[:, None] < 12, 200.0, base),  # more bright area
        "contrast": np.where((base < 100) & (np.arange(64)[None, :] < 40), 100.0, base),  # mid greys
        "matrix size": np.pad(base, 8),
    }[name]
    a, b = pixel_statistics(base), pixel_statistics(changed.astype(np.float32))
    assert a[name] != pytest.approx(b[name], rel=0.05)
