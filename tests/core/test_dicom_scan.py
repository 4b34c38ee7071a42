"""The fast header scanner gives exactly what the pydicom path gives, or defers to it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import deid_data
import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from medgan_desktop.core.dicom import reader
from medgan_desktop.core.dicom.reader import DicomReadError, read_header_located
from medgan_desktop.core.dicom.scan import scan_header
from tests.core.dicom_helpers import ct_dir, dcm_files, j2k_dir, mr_dir

_COMPARED = ("BitsAllocated", "BitsStored", "PixelRepresentation", "PhotometricInterpretation",
             "RescaleSlope", "RescaleIntercept", "RescaleType", "SliceThickness",
             "PixelSpacing", "ImagerPixelSpacing", "WindowCenter", "WindowWidth")


def _norm(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    return [float(v) for v in value]


def _read(path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(reader, "FAST_SCAN", fast)
    try:
        info, tags, loc = read_header_located(path)
    except DicomReadError as exc:
        return ("error", str(exc))
    return info, loc, {k: _norm(tags.get(k)) for k in _COMPARED}


def _scanned(path: Path) -> bool:
    with path.open("rb") as fp:
        return scan_header(fp, path.stat().st_size) is not None


def _corpus(shared: Path) -> list[Path]:
    files = [Path(f) for f in get_testdata_files() if Path(f).is_file()]
    files += sorted(Path(deid_data.__file__).parent.rglob("*.dcm"))
    for folder in (mr_dir(shared), ct_dir(shared), j2k_dir(shared)):
        files += dcm_files(folder)[:5]
    return [f for f in files if f.stat().st_size >= 132]


def test_fast_scan_equals_pydicom_on_real_files(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _corpus(shared_data)
    assert len(files) > 250
    fast = 0
    for f in files:
        fast += _scanned(f)
        assert _read(f, True, monkeypatch) == _read(f, False, monkeypatch), f
    # the common case really takes the fast path
    assert fast > 0.7 * len(files)
    for folder in (mr_dir(shared_data), ct_dir(shared_data), j2k_dir(shared_data)):
        assert _scanned(dcm_files(folder)[0]), folder


def _write(ds: Dataset, path: Path, implicit: bool) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    path.write_bytes(buf.getvalue())
    return path


def _dataset(charset: str, name: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = name
    ds.PatientID = "P1"
    ds.Modality = "MR"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    item = Dataset()
    item.ReferencedSOPInstanceUID = generate_uid()
    item.SeriesInstanceUID = "9.9.9"  # nested: must not be taken for the top level
    inner = Dataset()
    inner.CodeValue = "X"
    item.ConceptNameCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([item, item])
    ds.Rows, ds.Columns = 4, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImagePositionPatient = [0, 0, 1.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelData = b"\1\0" * 16
    return ds


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("undefined", [True, False])
def test_sequences_are_skipped_and_values_decoded(
    tmp_path: Path, implicit: bool, undefined: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _dataset("ISO_IR 192", "Müller^Jörg")
    path = _write(ds, tmp_path / "a.dcm", implicit)
    if undefined:  # rewrite with undefined-length sequences and items
        raw = pydicom.dcmread(path)
        raw["ReferencedImageSequence"].is_undefined_length = True
        for it in raw.ReferencedImageSequence:
            it.is_undefined_length_sequence_item = True
            it["ConceptNameCodeSequence"].is_undefined_length = True
        buf = io.BytesIO()
        raw.save_as(buf, implicit_vr=implicit, little_endian=True)
        path.write_bytes(buf.getvalue())
        assert buf.getvalue().count(b"\xfe\xff\xdd\xe0") == 3  # sequence delimiters
    assert _scanned(path)
    info, loc, _ = _read(path, True, monkeypatch)
    assert info.patient_name == "Müller^Jörg"
    assert info.series_instance_uid == ds.SeriesInstanceUID
    assert info.image_position == (0.0, 0.0, 1.5)
    assert loc is not None and loc.length == 32
    assert _read(path, True, monkeypatch) == _read(path, False, monkeypatch)


def test_unusual_files_go_to_pydicom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a character set the scanner does not decode
    path = _write(_dataset("ISO_IR 144", "Иванов"), tmp_path / "cyr.dcm", True)
    assert not _scanned(path)
    info, _, _ = _read(path, True, monkeypatch)
    assert info.patient_name == "Иванов"
    # a needed value whose length runs past the end of the file
    data = bytearray(_write(_dataset("", "A"), tmp_path / "b.dcm", False).read_bytes())
    at = data.index(b"PN") + 2
    data[at : at + 2] = b"\xf0\xff"
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(bytes(data))
    assert not _scanned(bad)
    assert _read(bad, True, monkeypatch) == _read(bad, False, monkeypatch)


def test_read_ahead_keeps_order_raises_in_place_and_stops_early() -> None:
    import threading
    from contextlib import closing

    from medgan_desktop.core.dicom.reader import read_ahead

    seen: list[int] = []
    lock = threading.Lock()

    def square(x: int) -> int:
        with lock:
            seen.append(x)
        if x == 7:
            raise ValueError("seven")
        return x * x

    assert list(read_ahead(square, list(range(7)), threads=4, window=3)) == [
        x * x for x in range(7)
    ]
    got: list[int] = []
    with pytest.raises(ValueError, match="seven"):
        for v in read_ahead(square, list(range(20)), threads=4, window=3):
            got.append(v)
    assert got == [x * x for x in range(7)]
    seen.clear()
    with closing(read_ahead(square, list(range(1000)), threads=2, window=4)) as it:
        assert next(it) == 0
    assert len(seen) <= 8  # nothing beyond the window was read
