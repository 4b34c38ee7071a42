"""`medgan evaluate` and `medgan review` end to end on real images and the real CT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medgan_desktop.cli import main
from medgan_desktop.core.metrics.features import InceptionV3Extractor
from medgan_desktop.core.metrics.inception import FIDInceptionV3


@pytest.fixture()
def folders(tmp_path: Path, shared_data: Path):
    files = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("IM-*.jpeg"))[:40]
    train, real, fake = (tmp_path / n for n in ("train", "real", "fake"))
    for d in (train, real, fake):
        d.mkdir()
    for f in files[:20]:
        shutil.copy(f, train / f.name)
    for f in files[20:32]:
        shutil.copy(f, real / f.name)
    for i, f in enumerate(files[32:40]):
        img = np.asarray(Image.open(f).convert("L"), dtype=np.float32)
        img = np.clip(img + np.random.default_rng(i).normal(0, 20, img.shape), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(fake / f"sample_{i}.png")
    shutil.copy(files[5], fake / "sample_copy.png")  # a planted training image
    return train, real, fake


def test_evaluate_unpaired_json_with_memorization(folders, capsys, tmp_path):
    train, real, fake = folders
    html = tmp_path / "report.html"
    rc = main(["evaluate", "--real", str(real), "--fake", str(fake), "--memorization",
               "--train", str(train), "--json", "--html", str(html)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("fid", "fd", "kid", "kid_std", "precision", "recall", "density", "coverage"):
        assert isinstance(d[k], float), k
    assert d["fd"] > 0 and d["n_fake"] == 9
    flagged = [e for e in d["memorization"] if e["flagged"]]
    assert any(Path(e["fake"]).name == "sample_copy.png" and
               Path(e["nearest_real"]).name == sorted(p.name for p in train.iterdir())[5]
               for e in flagged)
    text = html.read_text()
    assert "data:image/png;base64," in text and "Memorisation" in text


def test_evaluate_paired_json(tmp_path, shared_data, capsys):
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    ref = img[128:384, 128:384, 44:50]
    arr = sitk.GetArrayFromImage(ref).astype(np.float32)
    pred = sitk.GetImageFromArray(arr + np.random.default_rng(0).normal(0, 30, arr.shape).astype(np.float32))
    pred.CopyInformation(ref)
    sitk.WriteImage(sitk.Cast(ref, sitk.sitkFloat32), str(tmp_path / "ref_ct.nii.gz"))
    sitk.WriteImage(pred, str(tmp_path / "pred_ct.nii.gz"))
    rc = main(["evaluate", "--pred", str(tmp_path / "pred_ct.nii.gz"), "--ref",
               str(tmp_path / "ref_ct.nii.gz"), "--json", "--html", str(tmp_path / "p.html")])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert 20 < d["mae"] < 30  # sigma 30 HU noise: MAE ~ 30*sqrt(2/pi) = 23.9
    assert 0 < d["ssim"] < 1 and d["psnr"] > 30 and len(d["per_slice"]) == 6
    assert "Per tissue" in (tmp_path / "p.html").read_text()


def test_evaluate_user_errors(tmp_path, capsys):
    assert main(["evaluate"]) == 2
    assert main(["evaluate", "--real", str(tmp_path / "no"), "--fake", str(tmp_path)]) == 2
    assert main(["evaluate", "--real", str(tmp_path), "--fake", str(tmp_path),
                 "--extractor", str(tmp_path / "missing.pth")]) == 2
    assert "error" in capsys.readouterr().err


def test_inception_from_local_weights(tmp_path):
    """The FID InceptionV3 layout loads from a local .pth with the safe loader (random weights)."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "pt_inception-2015-12-05.pth")
    ext = InceptionV3Extractor.from_weights(tmp_path / "pt_inception-2015-12-05.pth")
    f = ext.extract([np.random.default_rng(0).random((64, 64), dtype=np.float32)])
    assert f.shape == (1, 2048) and np.isfinite(f).all()
    assert ext.logits([np.zeros((32, 32), np.float32)]).shape == (1, 1008)
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an FID InceptionV3"):
        InceptionV3Extractor.from_weights(tmp_path / "other.pth")


def test_review_cli_roundtrip(folders, tmp_path, capsys):
    _, real, fake = folders
    db = tmp_path / "r.sqlite"
    assert main(["review", "--db", str(db), "create", "--name", "cli", "--real", str(real),
                 "--fake", str(fake), "--seed", "3"]) == 0
    sid = capsys.readouterr().out.strip()
    from medgan_desktop.core.review.session import ReviewStore

    with ReviewStore(db) as store:
        truths = store.truths(sid)
        while (it := store.next_item(sid, "dr_a")) is not None:
            store.answer(sid, "dr_a", it.item_id, truths[it.item_id][0], 5, 4)
    out = tmp_path / "s.zip"
    assert main(["review", "--db", str(db), "export", sid, str(out)]) == 0
    db2 = tmp_path / "other.sqlite"
    assert main(["review", "--db", str(db2), "import", str(out)]) == 0
    capsys.readouterr()
    assert main(["review", "--db", str(db2), "results", sid, "--json", "--csv",
                 str(tmp_path / "a.csv")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pooled"]["accuracy"] == 1.0 and d["pooled"]["auc"] == 1.0
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 1 + 21


def test_evaluate_paired_dicom_series(shared_data, capsys):
    """A real CT DICOM series folder opens through core.io; a series against itself is perfect."""
    series = shared_data / "mridir_phantom" / "CT_DICOM_sample"
    assert main(["evaluate", "--pred", str(series), "--ref", str(series), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mae"] == 0.0 and d["psnr"] is None and d["ssim"] == pytest.approx(1.0)
    assert d["mask_voxels"] > 10000 and set(d["per_tissue"]) >= {"soft_tissue", "bone"}


def test_memorization_when_real_is_the_training_set(folders, capsys):
    """--real and --train the same folder: the planted copy is still flagged, and it says why."""
    train, _, fake = folders
    rc = main(["evaluate", "--real", str(train), "--fake", str(fake), "--memorization",
               "--train", str(train), "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    by = {Path(e["fake"]).name: e for e in d["memorization"]}
    copy = by["sample_copy.png"]
    assert copy["flagged"] and copy["pixel_distance"] == 0.0
    assert Path(copy["nearest_real"]).name == sorted(p.name for p in train.iterdir())[5]
    s = d["memorization_summary"]
    assert s["reference"] == "train leave-one-out" and s["n_reference_excluded"] == 20
    assert "overlaps the training set" in s["reference_note"] and s["n_exact_copies"] == 1
    assert s["feature_threshold"] > 0
    # the noisy samples are different images: (almost) none is flagged
    assert sum(e["flagged"] for n, e in by.items() if n != "sample_copy.png") <= 1


@pytest.mark.parametrize("name,content", [
    ("junk.pth", bytes(range(256)) * 20),
    ("junk.safetensors", bytes(range(256)) * 20),
    ("empty.pth", b""),
    ("broken_zip.pth", b"PK\x03\x04not really a zip"),
    ("module.pth", None),  # a pickled module: refused by the safe loader
])
def test_evaluate_unreadable_extractor_weights(tmp_path, capsys, name, content):
    """A junk weights file is a clear user error (exit 2), never advice to load it unsafely."""
    for d in ("r", "f"):
        (tmp_path / d).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / d / f"{i}.png")
    weights = tmp_path / name
    if content is None:
        torch.save(torch.nn.Linear(2, 2), weights)
    else:
        weights.write_bytes(content)
    rc = main(["evaluate", "--real", str(tmp_path / "r"), "--fake", str(tmp_path / "f"),
               "--extractor", str(weights)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "not a readable InceptionV3 weights file" in err and name in err
    assert "weights_only" not in err and "Traceback" not in err
    with pytest.raises(ValueError, match="not a readable InceptionV3 weights file") as info:
        InceptionV3Extractor.from_weights(weights)
    assert info.value.__suppress_context__  # the loader's own text is not chained on


def test_review_cli_accepts_a_unique_name(folders, tmp_path, capsys):
    _, real, fake = folders
    db = tmp_path / "r.sqlite"
    base = ["review", "--db", str(db)]
    assert main([*base, "create", "--name", "s1", "--real", str(real), "--fake", str(fake),
                 "--limit", "2"]) == 0
    sid = capsys.readouterr().out.strip()
    assert main([*base, "create", "--name", "s1", "--real", str(real), "--fake", str(fake)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "results", "s1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pooled"]["n"] == 0
    assert main([*base, "export", "s1", str(tmp_path / "s1.zip")]) == 0
    capsys.readouterr()
    assert main(["review", "--db", str(tmp_path / "other.sqlite"), "import",
                 str(tmp_path / "s1.zip")]) == 0
    assert capsys.readouterr().out.strip() == sid
    assert main([*base, "results", "nope"]) == 2
    assert "no review session" in capsys.readouterr().err
