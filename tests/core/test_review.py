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
    # no name, no header, no truth: pixels and how to show them
    assert fields == {"item_id", "image", "window", "position", "total", "spacing", "plane",
                      "units"}
    assert "patient" not in item.item_id and "gan" not in item.item_id
    assert item.image.shape == (64, 64) and item.total == 12 and not item.is_series
    assert item.units == "" and item.to_volume().description == ""
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
    """CT items keep HU (window/level works); series are whole stacks unless series=False."""
    import SimpleITK as sitk

    ct_dir = shared_data / "mridir_phantom" / "CT_DICOM_sample"
    dcm = sorted(p for p in ct_dir.rglob("*") if p.is_file())[:2]
    nii = tmp_path / "nifti"
    nii.mkdir()
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    sitk.WriteImage(img[200:300, 200:300, 40:43], str(nii / "synthetic_ct.nii.gz"))
    store = ReviewStore(tmp_path / "r.sqlite")
    for series, real_shape, fake_shape in ((True, 3, (3, 100, 100)), (False, 2, (100, 100))):
        sid = store.create_session(f"ct-{series}", dcm, nii, seed=0, series=series)
        truths = store.truths(sid)
        assert len(truths) == (2 if series else 3)  # two slices of one series: one item
        for item_id, (truth, _) in truths.items():
            it = store.item(sid, item_id)
            assert it.image.min() < 0  # HU kept (negative values), not rescaled to 0..255
            assert it.units == "HU" and it.window == (-160.0, 240.0)  # same window for all
            if truth == Truth.SYNTHETIC:
                assert it.image.shape == fake_shape and it.is_series == series
            else:
                assert it.image.ndim == real_shape


# -- series items ---------------------------------------------------------------------------
def _phantom() -> np.ndarray:
    """A (k, j, i) CT-like volume in HU with every axis telling its direction apart."""
    rng = np.random.default_rng(3)
    vol = np.full((12, 40, 48), -1000.0, np.float32)
    vol[:, 5:35, 6:42] = 40.0 + rng.normal(0, 5, (12, 30, 36)).round()
    vol[:, 8:12, 8:12] = 1000.0  # marker towards patient right-anterior (low i, low j)
    vol[:, 30:33, 36:40] = 300.0
    for k in range(12):
        vol[k, 20, 20 + k] = 700.0  # a line that moves with k (superior)
    return vol


def _write_series_pools(root: Path) -> tuple[Path, Path, np.ndarray]:
    """The same phantom as a DICOM CT series (LPS, k superior) and as NIfTI stored
    the other way round (i flipped towards R, k towards inferior)."""
    import SimpleITK as sitk

    from medgan_desktop.core.dicom.write import write_volume_series
    from medgan_desktop.core.volume import Volume

    arr = _phantom()
    real, fake = root / "real_pool", root / "fake_pool"
    vol = Volume(array=arr, spacing=(0.8, 0.8, 2.5), origin=(-20.0, -15.0, 100.0),
                 modality="CT", units="HU", description="PATIENT SECRET")
    write_volume_series(vol, real / "patient_secret_series", patient_name="SECRET^PATIENT",
                        patient_id="SECRET1", series_description="secret real series")
    flipped = Volume(array=np.ascontiguousarray(arr[::-1, :, ::-1]), spacing=(0.8, 0.8, 2.5),
                     origin=(-20.0 + 47 * 0.8, -15.0, 100.0 + 11 * 2.5),
                     direction=np.diag([-1.0, 1.0, -1.0]))
    fake.mkdir(parents=True)
    sitk.WriteImage(flipped.to_sitk(), str(fake / "gan_secret_volume.nii.gz"))
    return real, fake, arr


def test_series_items_are_whole_stacks_oriented_alike(tmp_path):
    real, fake, arr = _write_series_pools(tmp_path)
    store = ReviewStore(tmp_path / "r.sqlite")
    # not equalised: this test is about orientation (test_review_fairness covers the rest)
    sid = store.create_session("series", real, fake, seed=1, equalise=False)
    info = store.session(sid)
    assert (info.n_real, info.n_synthetic) == (1, 1)  # 12 DICOM files are one item
    truths = store.truths(sid)
    items = {truths[i][0]: store.item(sid, i) for i in truths}
    for it in items.values():
        assert it.is_series and it.n_slices == 12 and it.plane == "axial"
        assert it.spacing == pytest.approx((0.8, 0.8, 2.5))
        assert it.units == "HU"
        # display order: slice 0 inferior, screen left = patient right: the stored array
        np.testing.assert_allclose(it.image, arr, atol=0.5)
        vol = it.to_volume()
        assert vol.description == "" and not vol.synthetic and vol.source.files == ()
        assert vol.modality == "CT" and vol.shape == (12, 40, 48)
    assert "secret" in truths[next(iter(truths))][1]  # the organiser keeps the source


def test_series_plane_follows_acquisition(tmp_path):
    """A coronal stack stays coronal, ordered anterior to posterior."""
    import SimpleITK as sitk

    from medgan_desktop.core.review.session import display_stack
    from medgan_desktop.core.volume import Volume

    arr = _phantom() + 1000.0  # MR-like: no air at -1000, so no CT presets
    # k runs along -y (anterior), j along -z (inferior on screen rows), i along +x
    d = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]]).T
    vol = Volume(array=arr, spacing=(0.7, 0.9, 3.0), direction=d, modality="MR")
    stack, spacing, plane = display_stack(vol)
    assert plane == "coronal" and spacing == (0.7, 0.9, 3.0)
    np.testing.assert_array_equal(stack, arr[::-1])  # reversed so index runs to posterior
    nii = tmp_path / "cor"
    nii.mkdir()
    sitk.WriteImage(vol.to_sitk(), str(nii / "mr_cor.nii.gz"))
    store = ReviewStore(tmp_path / "r.sqlite")
    sid = store.create_session("cor", nii, nii, seed=0, equalise=False)
    it = store.next_item(sid, "r")
    assert it is not None and it.plane == "coronal" and it.units == ""
    np.testing.assert_allclose(it.image, arr[::-1], atol=1e-3)


def test_series_sessions_travel_and_old_databases_open(tmp_path):
    import sqlite3

    real, fake, _arr = _write_series_pools(tmp_path)
    store = ReviewStore(tmp_path / "a.sqlite")
    sid = store.create_session("series", real, fake, seed=1)
    out = store.export_session(sid, tmp_path / "s.zip")
    import json
    import zipfile

    with zipfile.ZipFile(out) as zf:
        doc = json.loads(zf.read("session.json"))
    assert doc["format"] == 2 and {it["meta"]["kind"] for it in doc["items"]} == {"series"}
    other = ReviewStore(tmp_path / "b.sqlite")
    assert other.import_session(out) == sid
    for i in store.truths(sid):
        a, b = store.item(sid, i), other.item(sid, i)
        np.testing.assert_array_equal(a.image, b.image)
        assert (a.spacing, a.plane, a.units) == (b.spacing, b.plane, b.units)
    store.close()
    other.close()
    # a schema-1 database (2D items, no meta column) opens and reads as before
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL,
            seed INTEGER NOT NULL, confidence_max INTEGER NOT NULL,
            confidence_min INTEGER NOT NULL, notes TEXT NOT NULL);
        CREATE TABLE items (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id TEXT NOT NULL, truth TEXT NOT NULL, source TEXT NOT NULL,
            image BLOB NOT NULL, win_lo REAL NOT NULL, win_hi REAL NOT NULL,
            PRIMARY KEY (session_id, item_id));
        INSERT INTO sessions VALUES ('s1', 'old', '2024-01-01', 1, 5, 1, '');
    """)
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
    db.execute("INSERT INTO items VALUES ('s1', 'i1', 'real', 'x.png', ?, 0, 11)",
               (buf.getvalue(),))
    db.commit()
    db.close()
    with ReviewStore(old) as st:
        it = st.item("s1", "i1")
        assert not it.is_series and it.window == (0.0, 11.0) and it.image[2, 3] == 11.0


def test_review_cli_creates_series_sessions(tmp_path, capsys):
    from medgan_desktop.cli import main

    real, fake, _arr = _write_series_pools(tmp_path)
    db = tmp_path / "cli.sqlite"
    assert main(["review", "--db", str(db), "create", "--name", "cli", "--real", str(real),
                 "--fake", str(fake), "--seed", "2"]) == 0
    sid = capsys.readouterr().out.strip()
    with ReviewStore(db) as store:
        truths = store.truths(sid)
        assert len(truths) == 2
        while (it := store.next_item(sid, "dr_cli")) is not None:
            assert it.is_series and it.n_slices == 12
            store.answer(sid, "dr_cli", it.item_id, truths[it.item_id][0], 5, 3)
    assert main(["review", "--db", str(db), "results", sid, "--json"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["pooled"]["accuracy"] == 1.0 and d["pooled"]["n"] == 2


def test_session_names_are_unique_and_resolve_to_ids(tmp_path, pools):
    store = ReviewStore(tmp_path / "review.sqlite")
    sid = store.create_session("study A", pools[0], pools[1], seed=1)
    with pytest.raises(ReviewError, match="already exists"):
        store.create_session("study A", pools[0], pools[1], seed=2)
    with pytest.raises(ReviewError, match="already exists"):
        store.create_session("  study A ", pools[0], pools[1], seed=2)
    with pytest.raises(ReviewError, match="name is required"):
        store.create_session("  ", pools[0], pools[1])
    assert len(store.sessions()) == 1
    other = store.create_session("study B", pools[0], pools[1], seed=3)
    assert store.resolve_session("study A") == sid and store.resolve_session(sid) == sid
    assert store.resolve_session("study B") == other
    with pytest.raises(ReviewError, match="no review session"):
        store.resolve_session("study C")
    # an imported session from elsewhere may carry a name already used here: ambiguous
    out = tmp_path / "a.zip"
    elsewhere = ReviewStore(tmp_path / "elsewhere.sqlite")
    far = elsewhere.create_session("study A", pools[0], pools[1], seed=4)
    elsewhere.export_session(far, out)
    assert store.import_session(out) == far
    with pytest.raises(ReviewError, match="2 review sessions are named 'study A'"):
        store.resolve_session("study A")
    assert store.resolve_session(far) == far
