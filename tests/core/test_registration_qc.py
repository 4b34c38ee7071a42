"""Per-slice registration quality control of 2D MR/CT pairs: every slice's MI is printed or
saved, poorly registered slices stay out of training and of the held-out scores, and a
chosen held-out patient is what is held out."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medgan_desktop.cli import main
from medgan_desktop.core.training.pairs import slice_qc

FILES = ("001", "002", "012", "013", "014", "015")  # Patient_02's first two register poorly


def test_slice_qc_keeps_what_registers_near_the_median() -> None:
    per = [{"initial_mi": 0.1, "final_mi": f} for f in (0.2, 0.55, 0.6, 0.62)]
    assert slice_qc(per, 0.7) == [False, True, True, True]
    assert [q["kept"] for q in per] == [False, True, True, True]
    worse = [{"initial_mi": 0.7, "final_mi": 0.6}, {"initial_mi": 0.5, "final_mi": 0.6}]
    assert slice_qc(worse, 0.5) == [False, True]  # a registration that lowered MI is not trusted
    assert slice_qc(per, 0.0) == [True] * 4


@pytest.fixture(scope="module")
def pngs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qc")
    for p in ("01", "02"):
        for m in ("CT", "T1"):
            d = root / f"Patient_{p}" / m
            d.mkdir(parents=True)
            for f in FILES:
                shutil.copy(shared_data / "paired_mrct_2d" / f"Patient_{p}" / m / f"{f}.png", d)
    return root


def test_translate_train_slice_qc_prints_saves_and_leaves_slices_out(
        pngs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    p1, p2 = pngs / "Patient_01", pngs / "Patient_02"
    rc = main(["translate-train", "--method", "unet_l1", "--register", "--slice-qc", "0.7",
               "--pair", str(p1 / "T1"), str(p1 / "CT"), "--pair", str(p2 / "T1"), str(p2 / "CT"),
               "--heldout-patient", "Patient_01", "--out", str(run),
               "--size", "32", "--steps", "2", "--batch", "1", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "held out: patient(s) Patient_01 (as chosen)" in text
    rows = list(csv.DictReader((run / "registration_qc.csv").open()))
    assert [r["patient"] for r in rows] == ["Patient_01"] * 6 + ["Patient_02"] * 6
    for patient in ("Patient_01", "Patient_02"):
        mine = [r for r in rows if r["patient"] == patient]
        median = float(np.median([float(r["final_mi"]) for r in mine]))
        for r in mine:
            ok = float(r["final_mi"]) >= 0.7 * median - 1e-3 and float(r["final_mi"]) >= float(r["initial_mi"]) - 1e-3
            assert (r["kept"] == "yes") == ok, r
    out2 = [r["file"] for r in rows if r["patient"] == "Patient_02" and r["kept"] == "no"]
    assert out2, "the poorly registered slices of Patient_02 were kept"
    assert f"registration QC kept {6 - len(out2)} of 6 slices" in text
    assert all(f in text for f in out2)
    meta = json.loads((run / "run.json").read_text())
    assert meta["data"]["n_slices"] <= 6 - len(out2)  # training: Patient_02's kept slices only
    kept1 = sum(r["kept"] == "yes" for r in rows if r["patient"] == "Patient_01")
    held = json.loads((run / "heldout_metrics.json").read_text())
    assert [(c["patient"], c["slices"]) for c in held["per_case"]] == [("Patient_01", kept1)]


def test_scoring_takes_non_adjacent_slices_of_2d_stacks_only(pngs: Path, tmp_path: Path) -> None:
    from medgan_desktop.core.imaging.slices import volume_slices
    from medgan_desktop.core.imaging.tasks import get_task
    from medgan_desktop.core.jobs.translation_eval import evaluate_heldout
    from medgan_desktop.core.training.pairs import load_image_pair
    from medgan_desktop.core.volume import Volume

    p1, p2 = pngs / "Patient_01", pngs / "Patient_02"
    run = tmp_path / "run"
    assert main(["translate-train", "--method", "unet_l1", "--register", "--pair", str(p1 / "T1"), str(p1 / "CT"),
                 "--pair", str(p2 / "T1"), str(p2 / "CT"), "--heldout-patient", "Patient_02", "--no-eval",
                 "--out", str(run), "--size", "32", "--steps", "1", "--batch", "1", "--device", "cpu"]) == 0
    pair = load_image_pair(p2 / "T1", p2 / "CT", register=True, max_side=64, patient="Patient_02")
    assert not pair.source.geometry_known and not pair.target.geometry_known
    held = evaluate_heldout(run, [(pair, [0, 2, 5])], get_task("mr_to_ct"))
    assert held["per_case"][0]["slices"] == 3 and held["mae"] > 0
    ct = Volume(np.zeros((6, 4, 4), np.float32), modality="CT", units="HU")
    assert volume_slices(ct, [1, 2, 3]).shape == (3, 4, 4)
    with pytest.raises(ValueError, match="contiguous"):
        volume_slices(ct, [0, 2])  # a volume with geometry: the gap would be hidden
