"""``medgan anonymize``: options, report file, clear refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from medgan_desktop.cli import main


def _mr_copy(shared_data: Path, dst: Path, n: int = 2) -> Path:
    src = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[:n]
    dst.mkdir(parents=True)
    for p in src:
        ds = pydicom.dcmread(p)
        ds.PatientName = "Cliperson^Agatha"
        ds.StudyDate = "20200202"
        ds.PatientAge = "050Y"
        ds.save_as(dst / p.name)
    return dst


def test_cli_anonymize_with_options_and_report(shared_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = _mr_copy(shared_data, tmp_path / "in")
    rc = main(["anonymize", str(src), str(tmp_path / "out"), "--pseudonym", "Trial^Subj7",
               "--patient-id", "T7", "--retain-dates", "--date-offset", "-10",
               "--retain-patient-chars", "--retain-device", "--retain-safe-private",
               "--clean-descriptors", "--report", str(tmp_path / "report.json")])
    assert rc == 0
    assert "2 file(s) written" in capsys.readouterr().out
    files = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(files) == 2
    ds = pydicom.dcmread(files[0])
    assert (str(ds.PatientName), ds.PatientID) == ("Trial^Subj7", "T7")
    assert ds.StudyDate == "20200123" and ds.PatientAge == "050Y"
    assert {c.CodeValue for c in ds.DeidentificationMethodCodeSequence} == {
        "113100", "113107", "113108", "113109", "113111", "113105"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["options"]["retain_device"] is True and report["actions"]
    assert all(b"Cliperson" not in f.read_bytes() for f in files)


def test_cli_csv_report(shared_data: Path, tmp_path: Path) -> None:
    src = _mr_copy(shared_data, tmp_path / "in", 1)
    assert main(["anonymize", str(src), str(tmp_path / "o"), "--report",
                 str(tmp_path / "r.csv")]) == 0
    head = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert head == "file,path,tag,name,action,rule"


def test_cli_refuses_burned_in_and_output_inside_source(
        shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import deid_data

    us = tmp_path / "us"
    us.mkdir()
    shutil.copy(Path(deid_data.__file__).parent / "data" / "ultrasounds" / "GREYSCALE_IMAGE.dcm",
                us / "x.dcm")
    assert main(["anonymize", str(us), str(tmp_path / "o")]) == 2
    assert "burned into the pixels" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["anonymize", str(us), str(us / "inner")]) == 2
    assert "inside the source" in capsys.readouterr().err
    assert main(["anonymize", str(us), str(tmp_path / "o2"), "--accept-burned-in"]) == 0
