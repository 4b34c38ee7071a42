"""Identity outside Table E.1-1: every place a file can hide it, searched in every output byte.

Each test plants unique tokens in one place (the preamble, the file meta group, even-group
elements no dictionary knows, standard attributes the table does not list, UN elements,
the source folder and file names) into copies of a real MR series, exports them with the
folder anonymiser, and searches the raw bytes of every output file (ASCII, Latin-1 and
UTF-16, case-insensitive) and every output path for the tokens.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import get_entry
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID

from medgan_desktop.cli import main
from medgan_desktop.core.dicom import anonymize_rules as rules
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer, anonymize_folder
from tests.core.dicom3tools import assert_valid

#: pydicom warns about the planted elements it cannot look up; that is the point here
pytestmark = pytest.mark.filterwarnings("ignore:VR lookup failed:UserWarning")

REF_TABLE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
             / "confidentiality_profile_attributes.json")
REQUIRED_META = {"FileMetaInformationGroupLength", "FileMetaInformationVersion",
                 "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID",
                 "ImplementationClassUID", "ImplementationVersionName"}


def _mr(shared_data: Path, n: int = 2) -> list[FileDataset]:
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))
    assert len(files) >= 20 + n, "MR_T2_DICOM series missing"
    return [pydicom.dcmread(f) for f in files[20:20 + n]]


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    """An element as an explicit VR file holds it before decoding."""
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _explicit(ds: FileDataset) -> FileDataset:
    """``ds`` re-read from Explicit VR Little Endian, so raw elements keep their VR on disk."""
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def _forms(token: str) -> list[bytes]:
    low = token.lower()
    return [low.encode("latin-1"), low.encode("utf-16-le"), low.encode("utf-16-be")]


def _assert_absent(out: Path, tokens: list[str]) -> list[Path]:
    """No token in any output path or byte; returns the output files."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files, "nothing was written"
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out)).lower()
        for t in tokens:
            assert t.lower() not in rel, f"{t!r} in the output path {rel}"
    for p in files:
        data = p.read_bytes().lower()
        for t in tokens:
            for form in _forms(t):
                assert form not in data, f"{t!r} in {p.relative_to(out)}"
    return files


def _export(src: Path, out: Path, **opts: bool) -> list[Path]:
    report = anonymize_folder(src, out, AnonymizeOptions(**opts))  # type: ignore[arg-type]
    assert report.complete, report.files
    return sorted(out.rglob("*.dcm"))


def test_preamble_is_zeroed(shared_data: Path, tmp_path: Path) -> None:
    token = "QZPREAMBLEWALLABY"
    src = tmp_path / "src"
    src.mkdir()
    for k, ds in enumerate(_mr(shared_data)):
        ds.preamble = (token.encode() * 8)[:128]
        ds.save_as(src / f"{k}.dcm", enforce_file_format=True)
    assert token.encode() in (src / "0.dcm").read_bytes()[:128]
    files = _export(src, tmp_path / "out")
    _assert_absent(tmp_path / "out", [token])
    for f in files:
        head = f.read_bytes()[:132]
        assert head[:128] == b"\x00" * 128 and head[128:] == b"DICM"


def _insert_body_meta(path: Path, token: str) -> None:
    """Put a (0002,0016) element into the data set body before Image Type, as a bad writer
    does (the real series is Implicit VR Little Endian)."""
    data = path.read_bytes()
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    at = data.index(b"\x08\x00\x08\x00", 132)  # Image Type: the body has begun
    value = token.encode().ljust(16, b" ")[:16]
    elem = b"\x02\x00\x16\x00" + len(value).to_bytes(4, "little") + value
    path.write_bytes(data[:at] + elem + data[at:])


def test_file_meta_group_is_rebuilt_from_nothing(shared_data: Path, tmp_path: Path) -> None:
    tokens = ["QZMETAAE", "QZMETAVERSION", "QZSENDINGAE", "QZRECEIVAE", "QZMETAPRIVATE",
              "qzmetahost", "QZMETAUNKNOWN", "QZBODYMETA", "QZSEQMETA",
              "1.2.826.0.1.3680043.9.7777.515151", "1.2.826.0.1.3680043.9.7777.626262"]
    src = tmp_path / "src"
    src.mkdir()
    for k, ds in enumerate(_mr(shared_data)):
        m = ds.file_meta
        m.SourceApplicationEntityTitle = tokens[0]
        m.ImplementationVersionName = tokens[1]
        m.add_new(0x00020017, "AE", tokens[2])  # Sending Application Entity Title
        m.add_new(0x00020018, "AE", tokens[3])  # Receiving Application Entity Title
        m.add_new(0x00020100, "UI", tokens[10])  # Private Information Creator UID
        m.add_new(0x00020102, "OB", tokens[4].encode())  # Private Information
        m.add_new(0x00020026, "UR", f"http://{tokens[5]}/dicom")  # Source Presentation Address
        m.add_new(0x00020099, "LO", tokens[6])  # a meta element no dictionary knows
        m.MediaStorageSOPInstanceUID = UID(tokens[9])  # not the instance's own UID
        item = Dataset()  # a meta element inside a sequence of the body
        item.add_new(0x00020016, "AE", tokens[8])
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        ds.ReferencedImageSequence = Sequence([item])
        ds.save_as(src / f"{k}.dcm", enforce_file_format=True)
        _insert_body_meta(src / f"{k}.dcm", tokens[7])
    back = pydicom.dcmread(src / "0.dcm")
    assert back[0x00020016].value == tokens[7]  # really in the body
    files = _export(src, tmp_path / "out")
    _assert_absent(tmp_path / "out", tokens)
    for f in files:
        ds = pydicom.dcmread(f)
        assert {e.keyword for e in ds.file_meta} == REQUIRED_META
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert str(ds.file_meta.ImplementationVersionName).startswith("MEDGAN_")
        assert not [e for e in ds.iterall() if e.tag.group == 0x0002]
    assert_valid(files)


def _unknown_tag(group: int, elem: int) -> int:
    tag = (group << 16) | elem
    with pytest.raises(KeyError):
        get_entry(tag)
    return tag


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit-vr", "implicit-vr"])
def test_even_group_elements_no_dictionary_knows_are_removed(
        shared_data: Path, tmp_path: Path, implicit: bool) -> None:
    tokens = ["QZUNKNOWNPERSON", "QZUNKNOWNLONG", "QZUNKNOWNNESTED", "QZUNKNOWNSEQ",
              "QZUNKNOWNTEXT"]
    pn, lo = _unknown_tag(0x0010, 0x7F01), _unknown_tag(0x4444, 0x0010)
    sq, lt = _unknown_tag(0x0018, 0xFFF0), _unknown_tag(0x7A02, 0x1000)
    src = tmp_path / "src"
    src.mkdir()
    for k, ds in enumerate(_mr(shared_data)):
        ds.add_new(pn, "PN", f"{tokens[0]}^Anna")
        ds.add_new(lo, "LO", tokens[1])
        ds.add_new(lt, "LT", tokens[4])
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        item.add_new(lo, "LO", tokens[2])  # inside a standard sequence the profile keeps
        ds.ReferencedImageSequence = Sequence([item])
        inner = Dataset()
        inner.add_new(0x00100010, "PN", tokens[3])
        ds.add_new(sq, "SQ", Sequence([inner]))
        if implicit:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(src / f"{k}.dcm", enforce_file_format=True)
    if implicit:  # read back without a VR, the unknown elements are UN
        assert pydicom.dcmread(src / "0.dcm")[lo].VR == "UN"
    files = _export(src, tmp_path / "out")
    _assert_absent(tmp_path / "out", tokens)
    for f in files:
        ds = pydicom.dcmread(f)
        assert not [e for e in ds.iterall() if not e.tag.is_private and e.tag.element
                    and not rules.dictionary_vrs(int(e.tag))]


def _reference_ids() -> set[str]:
    if not REF_TABLE.is_file():
        pytest.fail(f"PS3.15 reference table missing at {REF_TABLE}")
    return {r["id"] for r in json.loads(REF_TABLE.read_text(encoding="utf-8"))}


_VALUES = {"DA": "18670907", "DT": "18670907101112", "TM": "101112.987654",
           "AS": "093Y", "UR": "http://qzstdurl{n}.invalid/x"}


def _not_in_table() -> list[tuple[int, str]]:
    """Standard text/date attributes the reference table does not list (every 4th, with
    names and dates always in), known to pydicom's dictionary."""
    ids = _reference_ids()
    picked: list[tuple[int, str]] = []
    for n, (tag, entry) in enumerate(sorted(DicomDictionary.items())):
        vr, kw = entry[0], entry[4]
        if (vr not in rules.TEXT_VRS or f"{tag:08x}" in ids or tag in rules.ALLOWED_TEXT
                or tag in rules.SUPPLEMENT or tag >> 16 in (0x0000, 0x0002, 0x0004)
                or not kw or kw.endswith(("Comments", "Comment"))):
            continue
        if vr in ("PN", "DA", "DT") or n % 4 == 0:
            picked.append((tag, vr))
    return picked


def test_standard_text_attributes_the_table_does_not_list_are_removed(
        shared_data: Path, tmp_path: Path) -> None:
    planted = _not_in_table()
    assert len(planted) > 100 and {vr for _, vr in planted} >= {"PN", "LO", "SH", "DA", "UT"}
    src = tmp_path / "src"
    src.mkdir()
    tokens: set[str] = {"18670907"}
    for k, ds in enumerate(_mr(shared_data)):
        for n, (tag, vr) in enumerate(planted):
            value = _VALUES.get(vr, f"QZSTD{n}X").format(n=n)
            if vr == "PN":
                value = f"QZSTDPN{n}^Olga"
            elif vr == "AE":
                value = f"QZAE{n}"
            ds.add_new(tag, vr, value)
            if vr not in _VALUES:
                tokens.add(value.split("^")[0])
            elif vr == "UR":
                tokens.add(f"qzstdurl{n}")
        ds.ConvolutionKernel = "SOFT Zebedee"  # allow list: kept, the patient's name cleaned
        ds.PatientName = "Zebedee^Quintus"
        ds.save_as(src / f"{k}.dcm", enforce_file_format=True)
    files = _export(src, tmp_path / "out")
    _assert_absent(tmp_path / "out", [*sorted(tokens), "Zebedee"])
    for f in files:
        ds = pydicom.dcmread(f)
        assert [f"{t:08X}" for t, _ in planted if t in ds] == []
        assert ds.ConvolutionKernel == "SOFT"


def test_device_description_follows_the_device_identity_option(shared_data: Path) -> None:
    ds = _mr(shared_data, 1)[0]
    assert ds.Manufacturer and ds.ManufacturerModelName and ds.SoftwareVersions
    plain, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
    assert plain["Manufacturer"].is_empty and "ManufacturerModelName" not in plain  # Type 2 / 3
    assert "SoftwareVersions" not in plain
    kept, _ = Anonymizer(AnonymizeOptions(retain_device=True)).anonymize_dataset(ds)
    assert kept.Manufacturer == ds.Manufacturer
    assert kept.ManufacturerModelName == ds.ManufacturerModelName
    enhanced = Dataset()
    enhanced.update(ds)
    enhanced.SharedFunctionalGroupsSequence = Sequence([Dataset()])
    multi, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(enhanced)
    assert multi.Manufacturer == multi.ManufacturerModelName == "ANONYMIZED"  # Type 1


def test_un_elements_are_decoded_as_the_dictionary_vr_or_removed(
        shared_data: Path, tmp_path: Path) -> None:
    tokens = ["QZUNINSTITUTION", "QZUNROUTE", "qzunbodypart", "QZUNKNOWNUN", "QZUNPRIVATE",
              "QZUNNESTED"]
    unknown = _unknown_tag(0x4444, 0x0020)
    src = tmp_path / "src"
    src.mkdir()
    for k, ds in enumerate(_explicit(d) for d in _mr(shared_data)):
        ds[0x00080080] = _raw(0x00080080, "UN", tokens[0].encode())  # table row (X/Z/D)
        ds[0x00181040] = _raw(0x00181040, "UN", tokens[1].encode() + b" ")  # not in table
        ds[0x00180015] = _raw(0x00180015, "UN", tokens[2].encode())  # CS: not a valid CS
        ds[unknown] = _raw(unknown, "UN", tokens[3].encode() + b" ")
        ds[0x00291099] = _raw(0x00291099, "UN", tokens[4].encode())
        ds[0x00100040] = _raw(0x00100040, "UN", b"F ")  # Patient's Sex: valid, decoded, kept
        ds[0x00180020] = _raw(0x00180020, "UN", b"SE")  # Scanning Sequence: valid CS, kept
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        item[0x00081030] = _raw(0x00081030, "UN", tokens[5].encode() + b" ")
        ds.ReferencedImageSequence = Sequence([item])
        ds.save_as(src / f"{k}.dcm", enforce_file_format=True)
    back = pydicom.dcmread(src / "0.dcm")
    assert back.get_item(0x00180015).VR == "UN"
    files = _export(src, tmp_path / "out", retain_patient_chars=True)
    _assert_absent(tmp_path / "out", tokens)
    for f in files:
        ds = pydicom.dcmread(f)
        assert not [e for e in ds.iterall() if e.VR == "UN"]
        assert ds.PatientSex == "F" and ds["PatientSex"].VR == "CS"
        assert ds.ScanningSequence == "SE"
        assert "BodyPartExamined" not in ds and "ContrastBolusRoute" not in ds


def test_source_folder_and_file_names_never_reach_the_output(
        shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = ["QZFOLDERSMITH", "QZSUBDIRJONES", "QZFILEBROWN", "qzfilesetid"]
    src = tmp_path / f"{tokens[0]}_MRI" / tokens[1]
    src.mkdir(parents=True)
    for k, ds in enumerate(_mr(shared_data)):
        name = f"{tokens[2]}_{k:03d}.dcm"
        ds.ReferencedFileID = [tokens[0], tokens[1], tokens[2]]  # a directory element
        ds.StorageMediaFileSetID = tokens[3].upper()
        ds.RetrieveURL = f"file:///{tokens[0]}/{tokens[1]}/{name}"
        ds.save_as(src / name, enforce_file_format=True)
    out, report = tmp_path / "export", tmp_path / "report.json"
    rc = main(["anonymize", str(src.parent), str(out), "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    files = _assert_absent(out, tokens)
    assert [str(f.relative_to(out)) for f in files] == ["S001/SE001/IM00001.dcm",
                                                        "S001/SE001/IM00002.dcm"]
    assert tokens[2] in report.read_text()  # the report, outside the export, names sources
    # the report can never be put into the export
    assert main(["anonymize", str(src.parent), str(tmp_path / "e2"), "--report",
                 str(tmp_path / "e2" / "r.json")]) == 2
    assert "must not be written into the anonymised output" in capsys.readouterr().err
    done = anonymize_folder(src.parent, tmp_path / "e3", AnonymizeOptions())
    with pytest.raises(ValueError, match="not written into"):
        done.save(tmp_path / "e3" / "report.csv")
    assert sorted(p.name for p in (tmp_path / "e3").iterdir()) == ["S001"]


def test_dataset_level_rules_leave_no_token_in_serialised_bytes() -> None:
    """The same rules on an in-memory dataset (what the synthetic-series writer uses)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.QZMEMUID"  # not a UID: not kept as a well-known one
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.7777.1"
    ds.PatientName = "Zebedee^Quintus"
    ds.add_new(0x44440010, "PN", "QZMEMPN")
    ds.ContrastBolusRoute = "QZMEMROUTE"
    out, records = Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
    buf = io.BytesIO()
    out.save_as(buf, enforce_file_format=True)
    data = buf.getvalue().lower()
    assert all(t.lower().encode() not in data for t in ("QZMEMPN", "QZMEMROUTE", "QZMEMUID",
                                                        "zebedee"))
    rules_seen = {r.rule for r in records}
    assert {"unknown", "not-in-table"} <= rules_seen
