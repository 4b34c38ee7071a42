"""Reader-study sessions and scoring: blinding, scripted readers, agreement, exchange."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medgan_desktop.core.review import scoring
from medgan_desktop.core.review.session import ReviewError, ReviewItem, ReviewStore, Truth


@pytest.fixture()
def pools(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    """6 real chest X-rays and 6 'synthetic' ones (real images blurred + noised), as PNG."""
    src = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[:12]
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    rng = np.random.default_rng(0)
    for i, f in enumerate(src):
        img = np.asarray(Image.open(f).convert("L").resize((64, 64)), dtype=np.float32)
        if i < 6:
            Image.fromarray(img.astype(np.uint8)).save(real / f"patient_{i}.png")
        else:
            noisy = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(fake / f"gan_sample_{i}.png")
    return real, fake


def _answer_all(store: ReviewStore, sid: str, reader: str, policy) -> None:
    truths = store.truths(sid)
    store.start(sid, reader)
    while (item := store.next_item(sid, reader)) is not None:
        answer, conf = policy(truths[item.item_id][0], item)
        store.answer(sid, reader, item.item_id, answer, conf, quality=3, comment="")


def test_items_are_blinded_and_orders_randomised(tmp_path, pools):
    store = ReviewStore(tmp_path / "review.sqlite")
    sid = store.create_session("study", pools[0], pools[1], seed=7)
    info = store.session(sid)
    assert (info.n_real, info.n_synthetic) == (6, 6)
    store.start(sid, "alice")
    item = store.next_item(sid, "alice")
    assert isinstance(item, ReviewItem)
    fields = {f.name for f in dataclasses.fields(ReviewItem)}
    assert fields == {"item_id", "image", "window", "position", "total"}  # no name, no truth
    assert "patient" not in item.item_id and "gan" not in item.item_id
    assert item.image.shape == (64, 64) and item.total == 12
    a, b = store.order(sid, "alice"), store.order(sid, "bob")
    assert sorted(a) == sorted(b) and a != b  # same items, different order per reader
    assert store.order(sid, "alice") == a  # stable on resume
    truths = store.truths(sid)
    first_six = [truths[i][0] for i in a[:6]]
    assert len(set(first_six)) == 2 or a != sorted(a)  # not grouped by pool


def test_default_db_in_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGAN_DATA_DIR", str(tmp_path / "data"))
    with ReviewStore() as store:
        assert store.path == tmp_path / "data" / "review.sqlite"
        assert store.sessions() == []


def test_perfect_reader_scores_one_and_pause_resume(tmp_path, pools):
    db = tmp_path / "review.sqlite"
    store = ReviewStore(db)
    sid = store.create_session("study", pools[0], pools[1], seed=1)
    store.start(sid, "oracle")
    truths = store.truths(sid)
    for _ in range(5):  # answer 5, pause, close the app
        it = store.next_item(sid, "oracle")
        store.answer(sid, "oracle", it.item_id, truths[it.item_id][0], 5, 4)
    store.set_paused(sid, "oracle", True)
    store.close()
    store = ReviewStore(db)  # resume on "another day"
    assert store.is_paused(sid, "oracle")
    assert store.start(sid, "oracle") == (5, 12) and not store.is_paused(sid, "oracle")
    _answer_all(store, sid, "oracle", lambda t, _: (t, 5))
    assert store.next_item(sid, "oracle") is None
    res = scoring.score_session(store.ratings(sid), store.truths(sid))
    r = res.readers[0]
    assert (r.n, r.accuracy, r.sensitivity, r.specificity, r.auc) == (12, 1.0, 1.0, 1.0, 1.0)


def test_guessing_and_inverted_readers(tmp_path, pools):
    store = ReviewStore(tmp_path / "r.sqlite")
    sid = store.create_session("s", pools[0], pools[1], seed=2)
    flip = {Truth.REAL: Truth.SYNTHETIC, Truth.SYNTHETIC: Truth.REAL}
    _answer_all(store, sid, "contrarian", lambda t, _: (flip[t], 4))
    _answer_all(store, sid, "rubber_stamp", lambda t, _: (Truth.REAL, 3))
    res = {r.reader: r for r in scoring.score_session(store.ratings(sid)).readers}
    assert res["contrarian"].accuracy == 0.0 and res["contrarian"].auc == 0.0
    assert res["rubber_stamp"].accuracy == 0.5 and res["rubber_stamp"].auc == 0.5
    assert res["rubber_stamp"].sensitivity == 0.0 and res["rubber_stamp"].specificity == 1.0


def test_answer_validation(tmp_path, pools):
    store = ReviewStore(tmp_path / "r.sqlite")
    sid = store.create_session("s", pools[0], pools[1], seed=3, confidence_scale=(0, 100))
    item = store.next_item(sid, "r")
    store.answer(sid, "r", item.item_id, "synthetic", 87)
    with pytest.raises(ReviewError):
        store.answer(sid, "r", item.item_id, "synthetic", 101)
    with pytest.raises(ReviewError):
        store.answer(sid, "r", item.item_id, "maybe", 50)
    with pytest.raises(ReviewError):
        store.answer(sid, "r", item.item_id, "real", 50, quality=6)
    with pytest.raises(ReviewError):
        store.create_session("empty", pools[0], tmp_path / "nothing_here")


def test_kappas():
    a = ["real", "synthetic", "real", "synthetic", "real"]
    assert scoring.cohen_kappa(a, list(a)) == 1.0
    opposite = ["synthetic" if x == "real" else "real" for x in a]
    assert scoring.cohen_kappa(a, opposite) < 0
    assert scoring.fleiss_kappa([[3, 0], [0, 3], [3, 0], [0, 3]]) == pytest.approx(1.0)
    # Fleiss 1971 worked example (Wikipedia table): kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert scoring.fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)


def test_identical_readers_kappa_one_and_csv(tmp_path, pools):
    store = ReviewStore(tmp_path / "r.sqlite")
    sid = store.create_session("s", pools[0], pools[1], seed=4)
    policy = lambda t, item: (Truth.SYNTHETIC if item.image.std() > 0 and  # noqa: E731
                              int(item.item_id, 16) % 3 == 0 else Truth.REAL, 2)
    for reader in ("r1", "r2", "r3"):
        _answer_all(store, sid, reader, policy)
    res = scoring.score_session(store.ratings(sid), store.truths(sid))
    assert all(v == pytest.approx(1.0) for v in res.cohen.values()) and len(res.cohen) == 3
    assert res.fleiss == pytest.approx(1.0)
    assert len(res.per_image) == 12 and all(p["n_ratings"] == 3 for p in res.per_image)
    out = scoring.write_ratings_csv(store.ratings(sid), tmp_path / "ratings.csv")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 36 and {r["reader"] for r in rows} == {"r1", "r2", "r3"}
    summ = list(csv.DictReader(scoring.write_summary_csv(res, tmp_path / "s.csv").open()))
    assert len(summ) == 12


def test_export_import_roundtrip_and_merge(tmp_path, pools):
    a = ReviewStore(tmp_path / "site_a.sqlite")
    sid = a.create_session("multi-site", pools[0], pools[1], seed=5)
    _answer_all(a, sid, "alice", lambda t, _: (t, 5))
    blank = a.export_session(sid, tmp_path / "to_site_b.zip", include_answers=False)
    # site B imports the blank session, a second reader answers, exports back
    b = ReviewStore(tmp_path / "site_b.sqlite")
    assert b.import_session(blank) == sid
    assert b.session(sid).n_items == 12 and b.ratings(sid) == []
    item_a = a.item(sid, a.order(sid, "alice")[0])
    np.testing.assert_array_equal(b.item(sid, item_a.item_id).image, item_a.image)
    _answer_all(b, sid, "bob", lambda t, _: (Truth.REAL, 1))
    back = b.export_session(sid, tmp_path / "to_site_a.zip")
    a.import_session(back)
    a.import_session(back)  # idempotent
    ratings = a.ratings(sid)
    assert len(ratings) == 24 and {r.reader for r in ratings} == {"alice", "bob"}
    res = {r.reader: r for r in scoring.score_session(ratings).readers}
    assert res["alice"].accuracy == 1.0 and res["bob"].accuracy == 0.5
    with pytest.raises(ReviewError):
        (tmp_path / "junk.zip").write_bytes(b"not a zip")
        a.import_session(tmp_path / "junk.zip")


def test_dicom_and_nifti_pools_keep_their_units(tmp_path, shared_data):
    """CT items keep HU (window/level works); NIfTI items show their middle slice."""
    import SimpleITK as sitk

    ct_dir = shared_data / "mridir_phantom" / "CT_DICOM_sample"
    dcm = sorted(p for p in ct_dir.rglob("*") if p.is_file())[:2]
    nii = tmp_path / "nifti"
    nii.mkdir()
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    sitk.WriteImage(img[200:300, 200:300, 40:43], str(nii / "synthetic_ct.nii.gz"))
    store = ReviewStore(tmp_path / "r.sqlite")
    sid = store.create_session("ct", dcm, nii, seed=0)
    truths = store.truths(sid)
    for item_id, (truth, _) in truths.items():
        it = store.item(sid, item_id)
        assert it.image.min() < 0  # HU kept (negative values), not rescaled to 0..255
        if truth == Truth.SYNTHETIC:
            assert it.image.shape == (100, 100)
