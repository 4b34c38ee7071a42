"""Bad files in an anonymisation job: each is reported and skipped, the rest are written.

A batch mixes real MR slices with files made broken here (a wrong length in the file
meta group, an unknown VR, truncations, random bytes, empty and non-DICOM files); the job
writes every good file, names each bad one in one line, says ``written with problems``,
and ``medgan anonymize`` exits 1. Sources that would make no valid instance (a truncated
enhanced MR: no SOP Instance UID, no or short pixel data) are refused, never written.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID

from medgan_desktop.cli import main
from medgan_desktop.core.dicom import anonymize_rules as rules
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer, anonymize_folder
from tests.core.dicom_helpers import shipped_file

#: pydicom warns about the planted elements it cannot look up; that is the point here
pytestmark = pytest.mark.filterwarnings("ignore:VR lookup failed:UserWarning")


def _mr_files(shared_data: Path, n: int = 3) -> list[Path]:
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))
    assert len(files) >= 40 + n, "MR_T2_DICOM series missing"
    return files[40:40 + n]


def _meta_length_broken(data: bytes) -> bytes:
    """File Meta Information Group Length (UL) given 3 bytes: BytesLengthException."""
    at = data.index(b"\x02\x00\x00\x00UL", 128)
    return data[:at + 6] + b"\x03\x00" + data[at + 8:]


def _unknown_vr(data: bytes) -> bytes:
    """The first explicit VR element of the body given the VR 'QL'."""
    at = data.index(b"\x08\x00\x05\x00CS", 128)
    return data[:at + 4] + b"QL" + data[at + 6:]


def _explicit_bytes(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture()
def batch(shared_data: Path, tmp_path: Path) -> tuple[Path, set[str]]:
    """A source folder with 3 good MR slices, 8 bad files and a DICOMDIR."""
    src = tmp_path / "batch"
    src.mkdir()
    good = _mr_files(shared_data)
    for k, f in enumerate(good):
        shutil.copyfile(f, src / f"good_{k}.dcm")
    explicit = _explicit_bytes(good[0])
    whole = good[1].read_bytes()
    rng = random.Random(7)
    bad = {
        "meta_length.dcm": _meta_length_broken(explicit),
        "unknown_vr.dcm": _unknown_vr(explicit),
        "truncated_header.dcm": whole[:588],
        "truncated_pixels.dcm": whole[:-5000],
        "random.dcm": b"\x00" * 128 + b"DICM" + rng.randbytes(4000),
        "empty.dcm": b"",
        "notes.txt": b"not an image\n",
    }
    rows = explicit.index(b"\x28\x00\x10\x00US\x02\x00", 128)  # Rows given 3 bytes
    bad["wrong_length.dcm"] = explicit[:rows + 6] + b"\x03\x00" + explicit[rows + 8:rows + 11] \
        + explicit[rows + 10:]
    for name, data in bad.items():
        (src / name).write_bytes(data)
    shutil.copyfile(shipped_file("CT_small.dcm").parent / "dicomdirtests" / "DICOMDIR",
                    src / "DICOMDIR")
    for name in ("meta_length.dcm", "unknown_vr.dcm"):  # they really break pydicom
        with pytest.raises(Exception, match=r"Expected total bytes|Unknown Value Representation"):
            pydicom.dcmread(src / name)
    return src, set(bad)


def test_bad_files_are_skipped_with_one_line_each_and_the_rest_written(
        batch: tuple[Path, set[str]], tmp_path: Path) -> None:
    src, bad = batch
    report = anonymize_folder(src, tmp_path / "out", AnonymizeOptions())
    assert report.written == 3
    assert {f.source for f in report.files if f.status == "written"} == {
        "good_0.dcm", "good_1.dcm", "good_2.dcm"}
    assert {f.source for f in report.problems} == bad and report.skipped == len(bad)
    assert [(f.source, f.status) for f in report.files if f.status == "ignored"] == [
        ("DICOMDIR", "ignored")]
    for f in report.problems:
        assert f.reason and "\n" not in f.reason and "Traceback" not in f.reason, f
    reasons = {f.source: f.reason for f in report.problems}
    assert "Unknown Value Representation 'QL'" in reasons["unknown_vr.dcm"]
    assert "BytesLengthException" in reasons["meta_length.dcm"]
    assert "truncated" in reasons["truncated_pixels.dcm"]
    assert reasons["wrong_length.dcm"].startswith("malformed: attribute (0028,0010)")
    assert not report.complete and report.status == "written with problems"
    assert report.summary_text().startswith("Written with problems: 3 file(s) written, 8 skipped")
    assert report.to_dict()["status"] == "written with problems"
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 3
    for p in (tmp_path / "out").rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert ds.SOPInstanceUID and ds.pixel_array.shape == (512, 512)


def test_cli_exits_1_and_names_each_skipped_file(
        batch: tuple[Path, set[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, bad = batch
    rc = main(["anonymize", str(src), str(tmp_path / "out"), "--report",
               str(tmp_path / "report.json")])
    captured = capsys.readouterr()
    assert rc == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == len(bad) and "Traceback" not in captured.err
    for name in bad:
        assert sum(line.startswith(f"{name} was not exported: ") for line in lines) == 1
    assert "Written with problems: 3 file(s) written" in captured.out
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 3
    # the same folder without the bad files: everything written, exit code 0
    for name in bad:
        (src / name).unlink()
    assert main(["anonymize", str(src), str(tmp_path / "out2")]) == 0
    assert "3 file(s) written, 0 skipped" in capsys.readouterr().out


def test_cli_lists_at_most_twenty_skipped_files(shared_data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(_mr_files(shared_data, 1)[0], src / "good.dcm")
    for k in range(23):
        (src / f"junk{k:02d}.dcm").write_bytes(b"junk")
    assert main(["anonymize", str(src), str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 21 and lines[-1] == "... and 3 more file(s) were not exported."


def test_a_dataset_that_cannot_be_encoded_is_skipped(shared_data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for k, f in enumerate(_mr_files(shared_data)):
        shutil.copyfile(f, src / f"{k}.dcm")
    calls = {"n": 0}
    real = Dataset.save_as

    def failing(self: Dataset, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("a value the encoder refuses")
        real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Dataset, "save_as", failing)
    report = anonymize_folder(src, tmp_path / "out", AnonymizeOptions())
    assert report.written == 2 and [f.source for f in report.problems] == ["1.dcm"]
    assert "could not be encoded" in report.problems[0].reason
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.dcm"))
    assert names == ["S001/SE001/IM00001.dcm", "S001/SE001/IM00002.dcm"]  # no gap, no stub


def _emri() -> bytes:
    return shipped_file("emri_small.dcm").read_bytes()


def test_truncated_enhanced_mr_is_refused_not_written_as_a_stub(tmp_path: Path) -> None:
    data = _emri()
    sop_at = data.index(b"\x08\x00\x18\x00UI", 132)  # SOP Instance UID
    jpeg = shipped_file("emri_small_jpeg_2k_lossless.dcm").read_bytes()
    src = tmp_path / "src"
    src.mkdir()
    cuts = {
        "no_instance_uid.dcm": data[:sop_at],
        "no_pixels.dcm": data[:2000],
        "short_pixels.dcm": data[:-1000],
        "short_jpeg2000.dcm": jpeg[:-3000],
    }
    for name, blob in cuts.items():
        (src / name).write_bytes(blob)
    (src / "whole.dcm").write_bytes(data)
    report = anonymize_folder(src, tmp_path / "out", AnonymizeOptions())
    assert [f.source for f in report.files if f.status == "written"] == ["whole.dcm"]
    reasons = {f.source: f.reason for f in report.problems}
    assert set(reasons) == set(cuts)
    assert "no SOP Instance UID" in reasons["no_instance_uid.dcm"]
    assert "Enhanced MR Image Storage without pixel data" in reasons["no_pixels.dcm"]
    assert "truncated: 80920 bytes where 64x64, 10 frame(s)" in reasons["short_pixels.dcm"]
    # pydicom gives up on the cut compressed pixel data and returns an empty data set
    assert "no valid SOP Class UID" in reasons["short_jpeg2000.dcm"]
    written = list((tmp_path / "out").rglob("*.dcm"))
    assert len(written) == 1 and pydicom.dcmread(written[0]).pixel_array.shape == (10, 64, 64)


def test_instance_checks_on_datasets() -> None:
    ds = pydicom.dcmread(io.BytesIO(_emri()))
    anon, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
    assert rules.instance_problem(anon) is None
    no_class = Dataset()
    no_class.update(anon)
    no_class.file_meta = anon.file_meta
    del no_class.SOPClassUID
    assert rules.instance_problem(no_class) == "it has no valid SOP Class UID"
    no_rows = Dataset()
    no_rows.update(anon)
    no_rows.file_meta = anon.file_meta
    del no_rows.Rows
    assert rules.instance_problem(no_rows) == "it has pixel data but no Rows"
    # compressed: one fragment per frame at least
    jpeg = pydicom.dcmread(shipped_file("emri_small_jpeg_2k_lossless.dcm"))
    janon, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(jpeg)
    assert rules.instance_problem(janon) is None
    frames = list(generate_frames(janon.PixelData, number_of_frames=10))
    janon.PixelData = encapsulate(frames[:9])
    assert rules.instance_problem(janon) == ("its compressed pixel data hold 9 fragment(s) "
                                             "for 10 frame(s)")
    # a non-image class without pixel data is fine
    sr = Dataset()
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    sr.SOPInstanceUID = "2.25.1"
    assert rules.instance_problem(sr) is None


def test_unknown_transfer_syntax_is_refused() -> None:
    ds = pydicom.dcmread(io.BytesIO(_emri()))
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1.99.7")
    with pytest.raises(ValueError, match="transfer syntax is not a standard one"):
        Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
