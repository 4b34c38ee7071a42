"""core.io.open_path for non-DICOM data, and the `medgan import` / `medgan ls` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medgan_desktop.cli import main
from medgan_desktop.core.io import UnsupportedFileError, open_path, read_image_file
from tests.core.dicom_helpers import copy_files, ct_dir, dcm_files, make_malformed, mr_dir


def test_open_nifti_keeps_lps_geometry(shared_data: Path) -> None:
    path = shared_data / "head_ct_mr" / "invesalius_cranium_headCT.nii.gz"
    (vol,) = open_path(path)
    ref = sitk.ReadImage(str(path))
    assert vol.shape == sitk.GetArrayFromImage(ref).shape
    np.testing.assert_allclose(vol.origin, ref.GetOrigin())
    np.testing.assert_allclose(vol.direction.flatten(), ref.GetDirection())
    assert vol.modality == "CT" and vol.units == "HU"
    assert -1100 < float(vol.array.min()) < -900


def test_open_mha(shared_data: Path) -> None:
    (vol,) = open_path(shared_data / "head_ct_mr" / "training_001_mr_T1.mha")
    assert vol.modality == "MR" and vol.array.ndim == 3 and vol.array.dtype == np.float32


def test_open_png_folder_stacks_grey(tmp_path: Path) -> None:
    folder = tmp_path / "pngs"
    folder.mkdir()
    for k in (1, 2, 10):  # natural order: 1, 2, 10
        Image.fromarray(np.full((8, 6), k * 10, np.uint8)).save(folder / f"img{k}.png")
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "rgb.jpg")
    (vol,) = open_path(folder)
    assert vol.shape == (3, 8, 6)
    assert [float(v) for v in vol.array[:, 0, 0]] == [10.0, 20.0, 100.0]
    assert read_image_file(tmp_path / "rgb.jpg").shape == (8, 6)


def test_open_dicom_folder_gives_one_volume_per_series(shared_data: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    copy_files(dcm_files(mr_dir(shared_data))[:3] + dcm_files(ct_dir(shared_data))[:4], mixed)
    vols = open_path(mixed)
    assert sorted((v.modality, v.shape[0]) for v in vols) == [("CT", 4), ("MR", 3)]


def test_open_nothing_useful_raises(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(UnsupportedFileError):
        open_path(tmp_path)


def test_cli_import_json_and_ls(shared_data: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    good = copy_files(dcm_files(ct_dir(shared_data)), folder)
    make_malformed(folder / "bad", good[0])
    db = tmp_path / "idx.sqlite"
    assert main(["import", str(folder), "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"patients", "studies", "series", "instances", "skipped", "errors", "duplicates",
                        "problems"}
    assert (out["patients"], out["series"], out["instances"], out["errors"]) == (1, 1, 12, 4)
    assert all(set(p) == {"path", "reason"} for p in out["problems"])
    assert main(["import", str(folder), "--db", str(db), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["instances"] == 0 and again["skipped"] == 12
    assert main(["ls", "--db", str(db), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing[0]["studies"][0]["series"][0]["instances"] == 12
    assert main(["ls", "--db", str(db)]) == 0
    assert "CT" in capsys.readouterr().out


def test_cli_import_errors_exit_nonzero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["import", str(tmp_path / "missing"), "--db", str(tmp_path / "i.db")]) != 0
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the db folder should be: db error
    assert main(["import", str(tmp_path), "--db", str(blocker / "sub" / "i.db")]) != 0
    # default db lives in MEDGAN_DATA_DIR
    monkeypatch.setenv("MEDGAN_DATA_DIR", str(tmp_path / "data"))
    assert main(["ls"]) == 0
    assert (tmp_path / "data" / "index.sqlite").is_file()
