"""Checkpoint selection by validation FD: a patient-disjoint validation split, the score logged
during training, the best step kept as best.safetensors and used by sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from medgan_desktop.cli import main
from medgan_desktop.core.models.runs import load_model
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.data import DataError, ImageFolderDataset, patient_key, patient_split

TINY = ["--size", "16", "--batch", "4", "--device", "cpu", "--set", "base_filters=4", "--set", "latent_dim=8",
        "--set", "sample_every=0", "--set", "log_every=1", "--set", "threads=1"]


def _labelled(root: Path, patients: int = 12, per_patient: int = 3) -> Path:
    """Two classes; NORMAL films named like ``IM-0007-0002.png``, PNEUMONIA like ``person7_virus_2.png``."""
    rng = np.random.default_rng(0)
    for cls, name in (("NORMAL", "IM-{p:04d}-{k:04d}.png"), ("PNEUMONIA", "person{p}_virus_{k}.png")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for p in range(patients):
            for k in range(per_patient):
                level = 60 if cls == "NORMAL" else 160
                img = np.clip(rng.normal(level, 30, (20, 20)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / cls / name.format(p=p, k=k))
    return root


def test_patient_key_reads_the_usual_names() -> None:
    assert patient_key("person1000_bacteria_2931.jpeg") == "person1000"
    assert patient_key("IM-0115-0001.jpeg") == patient_key("IM-0115-0002.jpeg") == "im-0115"
    assert patient_key("NORMAL2-IM-1427-0001.jpeg") == "im-1427"
    assert patient_key("sub-03_T1w.png") == "sub-03"
    assert patient_key("scan.png") == "scan"  # no identifier: the file is its own patient
    assert patient_key("A17-x.png", pattern=r"A\d+") == "a17"


def test_patient_split_keeps_every_patient_on_one_side() -> None:
    names = [f"person{p}_virus_{k}.png" for p in range(20) for k in range(4)] + \
            [f"IM-{p:04d}-{k:04d}.png" for p in range(10) for k in range(2)]
    labels = [1] * 80 + [0] * 20
    tr, va = patient_split(names, labels, 0.2, seed=0)
    assert sorted(tr + va) == list(range(100))
    assert not {patient_key(names[i]) for i in tr} & {patient_key(names[i]) for i in va}
    assert {labels[i] for i in va} == {0, 1}  # both classes are validated
    assert 16 <= sum(labels[i] for i in va) <= 24 and 4 <= sum(1 - labels[i] for i in va) <= 6
    assert patient_split(names, labels, 0.2, seed=0) == (tr, va)  # deterministic
    with pytest.raises(DataError, match="by patient"):
        patient_split(["only_one_patient_a.png"], [0], 0.5, seed=0)


def test_dataset_holds_validation_out_of_training(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "imgs")
    ds = ImageFolderDataset(root, size=16, label_from_subfolders=True, val_share=0.25)
    imgs, labels = ds.validation_images()
    assert labels is not None and len(imgs) == len(labels) == len(ds.val_files) > 0
    assert not {patient_key(f.name) for f in ds.files} & {patient_key(f.name) for f in ds.val_files}
    assert len(ds) + len(ds.val_files) == 72
    assert ds.describe()["n_validation"] == len(ds.val_files)


def test_val_every_needs_a_share() -> None:
    with pytest.raises(ValueError, match="validation share"):
        TrainConfig(val_every=2).validate()
    TrainConfig(val_every=2, data=DataConfig(val_share=0.2)).validate()


def test_training_keeps_the_best_validated_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _labelled(tmp_path / "imgs")
    run = tmp_path / "run"
    rc = main(["train", "--method", "cgan", "--data", str(root), "--label-from-subfolders", "--steps", "6",
               "--out", str(run), "--val-share", "0.25", "--val-every", "2", *TINY, "--set", "checkpoint_every=2"])
    assert rc == 0
    cap = capsys.readouterr()
    assert "held out for validation" in cap.out + cap.err and "best validation FD" in cap.out
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    vals = {d["step"]: d["val_fd"] for d in lines if "val_fd" in d}
    assert sorted(vals) == [2, 4, 6] and all(np.isfinite(v) and v >= 0 for v in vals.values())
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == min(vals, key=lambda s: vals[s])
    assert best["val_fd"] == pytest.approx(vals[best["step"]], abs=1e-5)
    with safe_open(str(run / "best.safetensors"), "pt") as f:
        assert f.metadata()["step"] == str(best["step"])
    assert load_model(run).weights.name == "best.safetensors"  # sampling and export use it
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["n_validation"] > 0 and info["train_config"]["val_every"] == 2
    rc = main(["sample", "--model", str(run), "--n", "2", "--label", "normal", "--out", str(tmp_path / "s")])
    assert rc == 0 and len(list((tmp_path / "s").glob("*.png"))) == 2


def test_validation_is_refused_for_volume_slices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    vol = next((shared / "mrct_phantom").glob("*.nii*"), None) if (shared / "mrct_phantom").is_dir() else None
    if vol is None:  # any volume will do: write one
        import SimpleITK as sitk

        vol = tmp_path / "v.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).random((12, 20, 20)).astype(np.float32)),
                        str(vol))
    rc = main(["train", "--method", "dcgan", "--data", str(vol), "--steps", "2", "--out", str(tmp_path / "r"),
               "--val-share", "0.2", "--val-every", "1", *TINY])
    assert rc != 0
    assert "image folder" in capsys.readouterr().err
