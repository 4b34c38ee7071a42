"""PS3.15 Basic Profile anonymiser: the table, every action code and option, real files."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.dicom import profile
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer, BurnedInAnnotationError, anonymize_folder
from medgan_desktop.core.progress import Cancelled, CancelToken
from tests.core.dicom3tools import assert_valid

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
REF_TABLE = REFERENCE / "confidentiality_profile_attributes.json"

# Identity planted into the real MR copies (top level, nested sequences, private tags,
# overlays, curves, comments). None of these may appear in any output byte.
PLANTED = {
    "name": "Zebedee^Quintus",
    "id": "PID-99887766",
    "birth": "19440611",
    "address": "42 Wallaby Way Sydney",
    "accession": "ACC7788991",
    "referrer": "Drfeelgood^Hannibal",
    "institution": "St Elsewhere Infirmary",
    "nested_name": "Nestedperson^Olga",
    "nested_id": "NESTED-ID-5511",
    "private": "PRIVATE-SECRET-ZX81",
    "overlay": "OVERLAY-NOTE-QQ",
    "curve": "CURVE-LABEL-KK",
    "comment": "patient complained of Zebedee family history",
    "study_date": "20190317",
    "operator": "Opsperson^Wendy",
    "station": "MRSTATION-77",
    "serial": "SERIAL-5544332",
}


def _reference_rows() -> list[dict[str, str]]:
    if not REF_TABLE.is_file():
        pytest.fail(f"PS3.15 reference table missing at {REF_TABLE}")
    rows: list[dict[str, str]] = json.loads(REF_TABLE.read_text(encoding="utf-8"))
    return rows


def _mr_files(shared_data: Path, n: int = 3) -> list[Path]:
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))
    assert len(files) >= n, "MR_T2_DICOM series missing"
    return files[10:10 + n]


def _plant(ds: Dataset, k: int) -> Dataset:
    """Fill a real MR header with identity everywhere an exporter might miss it."""
    p = PLANTED
    ds.PatientName = p["name"]
    ds.PatientID = p["id"]
    ds.PatientBirthDate = p["birth"]
    ds.PatientAddress = p["address"]
    ds.AccessionNumber = p["accession"]
    ds.ReferringPhysicianName = p["referrer"]
    ds.InstitutionName = p["institution"]
    ds.OperatorsName = p["operator"]
    ds.StationName = p["station"]
    ds.DeviceSerialNumber = p["serial"]
    ds.StudyDate = p["study_date"]
    ds.SeriesDate = p["study_date"]
    ds.ContentDate = p["study_date"]
    ds.PatientAge = "071Y"
    ds.PatientSex = "F"
    ds.ImageComments = p["comment"]
    ds.SeriesDescription = f"T2 axial {p['name'].split('^')[0]}"
    # nested: a non-table sequence holding a sequence holding identity at depth 3
    inner = Dataset()
    inner.PatientName = p["nested_name"]
    inner.PatientID = p["nested_id"]
    inner.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    inner.ReferencedSOPClassUID = ds.SOPClassUID
    mid = Dataset()
    mid.CodeValue = "RPID17"
    mid.CodingSchemeDesignator = "RADLEX"
    mid.CodeMeaning = "MRI brain"
    mid.ReferencedImageSequence = Sequence([inner])
    mid.PatientAddress = p["address"]
    ds.ProcedureCodeSequence = Sequence([mid])
    other = Dataset()
    other.PatientID = p["nested_id"]
    other.IssuerOfPatientID = p["institution"]
    ds.OtherPatientIDsSequence = Sequence([other])
    req = Dataset()
    req.RequestedProcedureID = p["accession"]
    req.RequestedProcedureDescription = p["name"]
    ds.RequestAttributesSequence = Sequence([req])
    # private tags (odd group) incl. one in a nested private sequence
    block = ds.private_block(0x0011, "ACME HOSPITAL INFO", create=True)
    block.add_new(0x01, "LO", p["private"])
    pitem = Dataset()
    pitem.PatientName = p["nested_name"]
    block.add_new(0x02, "SQ", Sequence([pitem]))
    # overlay plane (60xx) with a label, and a curve (50xx)
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60000022, "LO", p["overlay"])
    ds.add_new(0x60003000, "OW", b"\xff" * 8)
    ds.add_new(0x50000022, "LO", p["curve"])
    ds.add_new(0x50003000, "OW", b"\x01\x02")
    # a reference to the previous slice: must still resolve after remapping
    ds.InstanceNumber = k + 1
    return ds


@pytest.fixture()
def planted_dir(shared_data: Path, tmp_path: Path) -> Path:
    src = tmp_path / "in" / "Zebedee_Quintus"  # a name in the path too
    src.mkdir(parents=True)
    files = _mr_files(shared_data)
    datasets = [pydicom.dcmread(f) for f in files]
    for k, ds in enumerate(datasets):
        _plant(ds, k)
        if k:
            ref = Dataset()
            ref.ReferencedSOPClassUID = ds.SOPClassUID
            ref.ReferencedSOPInstanceUID = datasets[k - 1].SOPInstanceUID
            ds.SourceImageSequence = Sequence([ref])
        ds.save_as(src / f"{k:03d}.dcm")
    (src / "notes.txt").write_text("not dicom", encoding="utf-8")
    return src


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def _assert_no_planted(folder: Path, extra: tuple[str, ...] = ()) -> None:
    needles = [v for k, v in PLANTED.items() if k != "study_date"] + list(extra)
    needles += [v.split("^")[0] for v in PLANTED.values() if "^" in v]
    for path, data in _all_bytes(folder):
        low = data.lower()
        for s in needles:
            assert s.lower().encode() not in low, f"{s!r} found in {path}"


def _uid_refs(ds: Dataset) -> list[str]:
    out: list[str] = []
    for elem in ds.iterall():
        if elem.keyword in ("ReferencedSOPInstanceUID",) and elem.value:
            out.append(str(elem.value))
    return out


# -- the table -----------------------------------------------------------------------------
def test_every_reference_row_is_in_the_profile_with_the_same_actions() -> None:
    rows = _reference_rows()
    assert len(rows) == 621
    assert profile.EDITION == "2024b"
    for r in rows:
        rule = profile.RULES[r["id"]]
        assert rule.basic == r["basicProfile"], r["name"]
        for opt in profile.Option:
            assert rule.options.get(opt.value) == r.get(opt.value), (r["name"], opt)
        code = profile.resolve(rule, tuple(profile.Option))
        for enhanced in (False, True):
            single = profile.choose_combined(code, 0x00080023, enhanced)
            assert single in {"D", "Z", "X", "K", "C", "U"}, (r["name"], code)


def _plant_value(vr: str, n: int) -> object:
    if vr == "SQ":
        item = Dataset()
        item.PatientName = f"SEQPLANT^{n}"
        item.ReferencedSOPInstanceUID = f"1.2.999.{n}.7"
        return Sequence([item])
    return {
        "DA": "20200102", "TM": "101112", "DT": "20200102101112", "UI": f"1.2.999.{n}",
        "US": 7, "SS": 7, "UL": 7, "SL": 7, "FL": 7.0, "FD": 7.0, "IS": "7", "DS": "7",
        "AS": "033Y", "AT": 0x00100010, "CS": "PLANTCS", "UR": "http://plant.invalid/x",
        "OB": b"PLNT", "OW": b"PLNT", "UN": b"PLNT", "SV": 7, "UV": 7, "OD": b"PLANTPLA",
        "OF": b"PLNT", "OL": b"PLNT", "OV": b"PLANTPLA",
    }.get(vr, f"PLANT{n}")


def test_every_table_attribute_gets_its_action_on_a_dataset() -> None:
    """Each row of Table E.1-1 known to the dictionary, planted at the top level."""
    rows = [r for r in _reference_rows() if all(c in "0123456789abcdef" for c in r["id"])]
    ds = Dataset()
    planted: dict[int, tuple[str, object]] = {}
    for n, r in enumerate(rows):
        tag = int(r["id"], 16)
        if tag >> 16 in (0x0000, 0x0002, 0x0004):
            continue  # command / file meta / DICOMDIR groups are never in an image body
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        value = _plant_value(vr, n)
        ds.add_new(tag, vr, value)
        planted[tag] = (r["basicProfile"], value)
    assert len(planted) > 550
    anon, records = Anonymizer(AnonymizeOptions(), secret=b"k").anonymize_dataset(ds)
    seen_codes: set[str] = set()
    by_path = {r.path: r for r in records}
    for tag, (code, value) in planted.items():
        rec = by_path[f"({tag >> 16:04X},{tag & 0xFFFF:04X})"]
        seen_codes.add(code)
        action = profile.choose_combined(code, tag, False)
        if tag in (0x00100010, 0x00100020):
            assert str(anon[tag].value).startswith("ANON-")
            continue
        assert rec.action == action, (keyword_for_tag(tag), rec)
        if action == "X":
            assert tag not in anon, keyword_for_tag(tag)
        elif action == "Z":
            assert anon[tag].is_empty, keyword_for_tag(tag)
        elif action == "D":
            assert not anon[tag].is_empty, keyword_for_tag(tag)
            if anon[tag].VR not in ("SQ", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"):
                assert anon[tag].value != value, keyword_for_tag(tag)
        elif action == "U":
            if anon[tag].VR == "UI":
                assert anon[tag].value != value and str(anon[tag].value).startswith("2.25.")
            else:
                refs = [it.ReferencedSOPInstanceUID for it in anon[tag].value]
                assert refs and all(r.startswith("2.25.") for r in refs)
    assert seen_codes >= {"D", "Z", "X", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
    # the person names planted inside sequences with D/U/K actions were handled too
    for elem in anon.iterall():
        if elem.VR == "PN" and elem.value:
            assert "SEQPLANT" not in str(elem.value)


def test_combined_codes_follow_the_attribute_type() -> None:
    assert profile.choose_combined("Z/D", 0x00080023, enhanced=False) == "Z"  # Type 2C
    assert profile.choose_combined("Z/D", 0x00080023, enhanced=True) == "D"  # Type 1
    assert profile.choose_combined("X/Z/D", 0x00181000, enhanced=True) == "D"
    assert profile.choose_combined("X/Z/D", 0x00181000, enhanced=False) == "X"
    assert profile.choose_combined("X/Z", 0x00400555, enhanced=True) == "Z"
    assert profile.choose_combined("X/D", 0x00080021, enhanced=False) == "X"
    assert profile.choose_combined("X/Z/U*", 0x00082112, enhanced=False) == "U"


# -- real files ------------------------------------------------------------------------------
def test_folder_export_leaves_no_identity_and_keeps_references(
    planted_dir: Path, tmp_path: Path
) -> None:
    before = {p: p.read_bytes() for p in planted_dir.rglob("*") if p.is_file()}
    out = tmp_path / "export"
    report = anonymize_folder(planted_dir.parent, out, AnonymizeOptions())
    assert report.written == 3 and report.skipped == 1
    # nothing written into (or changed in) the source
    after = {p: p.read_bytes() for p in planted_dir.rglob("*") if p.is_file()}
    assert after == before
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 3 and not any("Zebedee" in str(p) for p in files)
    _assert_no_planted(out, extra=(PLANTED["study_date"],))
    sources = [pydicom.dcmread(p) for p in sorted(planted_dir.glob("*.dcm"))]
    outs = [pydicom.dcmread(p) for p in files]
    sop = {d.SOPInstanceUID for d in outs}
    orig_uids = {str(e.value) for d in sources for e in d.iterall() if e.VR == "UI"}
    for d, s in zip(outs, sources, strict=True):
        assert d.PatientIdentityRemoved == "YES"
        assert d.LongitudinalTemporalInformationModified == "REMOVED"
        assert [c.CodeValue for c in d.DeidentificationMethodCodeSequence] == ["113100"]
        assert str(d.PatientName).startswith("ANON-") and d.PatientID == str(d.PatientName)
        assert not any(e.tag.is_private for e in d.iterall())
        assert not any(e.tag.group & 0xFF00 in (0x5000, 0x6000) for e in d)
        assert "ImageComments" not in d and "PatientAge" not in d and d.PatientSex == ""
        assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
        for e in d.iterall():  # every instance UID was remapped
            if e.VR == "UI" and e.value and not str(e.value).startswith("1.2.840.10008."):
                assert str(e.value) not in orig_uids, e
        np.testing.assert_array_equal(d.pixel_array, s.pixel_array)
    # references resolve inside the export (nested at depth 3 and SourceImageSequence);
    # the real files also reference localizers that are not part of the export
    src_sop = {d.SOPInstanceUID for d in sources}
    internal_before = sum(r in src_sop for d in sources for r in _uid_refs(d))
    internal_after = sum(r in sop for d in outs for r in _uid_refs(d))
    assert internal_before == internal_after == 3 + 2
    assert len({d.StudyInstanceUID for d in outs}) == 1
    assert len({d.FrameOfReferenceUID for d in outs}) == 1
    assert_valid(files)


def test_report_lists_actions_per_attribute(planted_dir: Path, tmp_path: Path) -> None:
    report = anonymize_folder(planted_dir.parent, tmp_path / "o", AnonymizeOptions())
    summary = report.summary()
    assert summary["PatientAddress"]["X"] >= 3  # top level and nested, per file
    assert summary["AccessionNumber"]["Z"] == 3
    assert summary["SOPInstanceUID"]["U"] == 3
    assert summary["private"]["X"] >= 6
    report.to_json(tmp_path / "r.json")
    report.to_csv(tmp_path / "r.csv")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["edition"] == "2024b" and len(data["actions"]) == len(report.actions)
    csv_text = (tmp_path / "r.csv").read_text()
    assert "(0008,1140)" in csv_text or "(0008,2112)" in csv_text
    assert PLANTED["name"] not in csv_text and PLANTED["name"] not in json.dumps(data)


def test_anonymize_dataset_never_mutates_input(shared_data: Path) -> None:
    ds = _plant(pydicom.dcmread(_mr_files(shared_data, 1)[0]), 0)
    snapshot = ds.to_json_dict(bulk_data_threshold=10**9)
    anon, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
    assert ds.to_json_dict(bulk_data_threshold=10**9) == snapshot
    assert anon.PatientName != ds.PatientName


def test_uid_map_is_consistent_within_a_job_and_differs_across_jobs(shared_data: Path) -> None:
    ds = pydicom.dcmread(_mr_files(shared_data, 1)[0])
    job = Anonymizer(AnonymizeOptions())
    a, _ = job.anonymize_dataset(ds)
    b, _ = job.anonymize_dataset(ds)
    c, _ = Anonymizer(AnonymizeOptions()).anonymize_dataset(ds)
    assert a.StudyInstanceUID == b.StudyInstanceUID != c.StudyInstanceUID
    assert a.PatientID == b.PatientID


# -- options ---------------------------------------------------------------------------------
def _one(shared_data: Path, **opts: object) -> tuple[Dataset, Dataset]:
    ds = _plant(pydicom.dcmread(_mr_files(shared_data, 1)[0]), 0)
    anon, _ = Anonymizer(AnonymizeOptions(**opts)).anonymize_dataset(ds)  # type: ignore[arg-type]
    return ds, anon


def _codes(ds: Dataset) -> set[str]:
    return {c.CodeValue for c in ds.DeidentificationMethodCodeSequence}


def test_retain_longitudinal_modified_dates_shifts_consistently(shared_data: Path) -> None:
    src, anon = _one(shared_data, retain_longitudinal=True, date_offset_days=-100)
    assert anon.StudyDate == "20181207"  # 2019-03-17 minus 100 days
    assert anon.SeriesDate == anon.StudyDate == anon.ContentDate
    assert anon.ContentTime == src.ContentTime  # whole-day shift keeps date/time pairs
    assert anon.LongitudinalTemporalInformationModified == "MODIFIED"
    assert _codes(anon) == {"113100", "113107"}


def test_retain_longitudinal_random_offset_is_one_per_patient(shared_data: Path) -> None:
    files = _mr_files(shared_data, 2)
    job = Anonymizer(AnonymizeOptions(retain_longitudinal=True))
    a = job.anonymize_dataset(_plant(pydicom.dcmread(files[0]), 0))[0]
    b = job.anonymize_dataset(_plant(pydicom.dcmread(files[1]), 1))[0]
    assert a.StudyDate == b.StudyDate != PLANTED["study_date"]


def test_retain_full_dates(shared_data: Path) -> None:
    _, anon = _one(shared_data, retain_longitudinal=True, date_offset_days=0)
    assert anon.StudyDate == PLANTED["study_date"]
    assert anon.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert _codes(anon) == {"113100", "113106"}


def test_retain_patient_characteristics(shared_data: Path) -> None:
    _, anon = _one(shared_data, retain_patient_chars=True)
    assert anon.PatientAge == "071Y" and anon.PatientSex == "F"
    assert "113108" in _codes(anon)
    _, plain = _one(shared_data)
    assert "PatientAge" not in plain


def test_retain_device_identity(shared_data: Path) -> None:
    _, anon = _one(shared_data, retain_device=True)
    assert anon.DeviceSerialNumber == PLANTED["serial"]
    assert anon.StationName == PLANTED["station"]
    assert "113109" in _codes(anon)
    _, plain = _one(shared_data)
    assert "DeviceSerialNumber" not in plain and "StationName" not in plain


def test_retain_safe_private(shared_data: Path) -> None:
    src, anon = _one(shared_data, retain_safe_private=True)
    ge = src.private_block(0x0043, "GEMS_PARM_01")
    assert ge[0x39].value  # the GE b-value slot is there in the real file
    kept = anon.private_block(0x0043, "GEMS_PARM_01")
    assert kept[0x39].value == ge[0x39].value
    assert [e for e in anon if e.tag.is_private and e.tag.group == 0x0011] == []
    # exactly the real file's Table E.3.10-1 elements survive, with their values
    listed = {(e.private_creator, e.tag.group, e.tag.element & 0xFF): e.value for e in src
              if e.tag.is_private and not e.tag.is_private_creator
              and profile.is_safe_private(str(e.private_creator), e.tag.group, e.tag.element)}
    assert set(k[0] for k in listed) == {"GEMS_ACQU_01", "GEMS_SERS_01", "GEMS_PARM_01"}
    privates = {(e.private_creator, e.tag.group, e.tag.element & 0xFF): e.value for e in anon
                if e.tag.is_private and not e.tag.is_private_creator}
    assert privates == listed
    creators = {str(e.value) for e in anon if e.tag.is_private_creator}
    assert creators == {"GEMS_ACQU_01", "GEMS_SERS_01", "GEMS_PARM_01"}  # the others went
    assert "113111" in _codes(anon)


def test_folder_export_with_safe_private_is_clean_and_valid(planted_dir: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "export"
    report = anonymize_folder(planted_dir.parent, out, AnonymizeOptions(retain_safe_private=True))
    assert report.written == 3
    _assert_no_planted(out, extra=(PLANTED["study_date"],))
    files = sorted(out.rglob("*.dcm"))
    for d in (pydicom.dcmread(f) for f in files):
        kept = {(e.private_creator, e.tag.group, e.tag.element & 0xFF) for e in d.iterall()
                if e.tag.is_private and not e.tag.is_private_creator}
        assert kept == {("GEMS_ACQU_01", 0x0019, 0x9E), ("GEMS_SERS_01", 0x0025, 0x07),
                        ("GEMS_PARM_01", 0x0043, 0x39)}
    kept_records = [r for _, r in report.actions if r.rule == "safe-private"]
    assert len(kept_records) == 3 * 3 and all(r.action == "K" for r in kept_records)
    assert_valid(files)


def test_clean_descriptors(shared_data: Path) -> None:
    _, anon = _one(shared_data, clean_descriptors=True)
    assert anon.SeriesDescription == "T2 axial"  # the planted surname was cleaned out
    assert "113105" in _codes(anon)
    _, plain = _one(shared_data)
    assert "SeriesDescription" not in plain


def test_pseudonym_is_used_and_stays_distinct_per_patient(shared_data: Path) -> None:
    job = Anonymizer(AnonymizeOptions(pseudonym_name="Study^Subject01", pseudonym_id="S01"))
    f = _mr_files(shared_data, 1)[0]
    a = job.anonymize_dataset(_plant(pydicom.dcmread(f), 0))[0]
    other = _plant(pydicom.dcmread(f), 0)
    other.PatientID = "SOMEONE-ELSE"
    b = job.anonymize_dataset(other)[0]
    assert (str(a.PatientName), a.PatientID) == ("Study^Subject01", "S01")
    assert b.PatientID == "S01-2"


# -- burned-in annotation and deid-data images -----------------------------------------------
def _deid_data() -> Path:
    import deid_data

    return Path(deid_data.__file__).parent / "data"


def test_burned_in_ultrasound_is_refused_unless_accepted(tmp_path: Path) -> None:
    src = tmp_path / "us"
    src.mkdir()
    shutil.copy(_deid_data() / "ultrasounds" / "GREYSCALE_IMAGE.dcm", src / "a.dcm")
    orig = pydicom.dcmread(src / "a.dcm")
    with pytest.raises(BurnedInAnnotationError, match="burned into the pixels"):
        anonymize_folder(src, tmp_path / "o1", AnonymizeOptions())
    assert not (tmp_path / "o1").exists()
    report = anonymize_folder(src, tmp_path / "o2", AnonymizeOptions(accept_burned_in=True))
    assert report.written == 1
    _assert_no_planted(tmp_path / "o2", extra=(str(orig.PatientID), "PATIENTFIVE",
                                               str(orig.PatientBirthDate)))


def test_deid_data_images_are_cleaned(tmp_path: Path) -> None:
    src = tmp_path / "cookies"
    shutil.copytree(_deid_data() / "dicom-cookies", src)
    origs = [pydicom.dcmread(p) for p in sorted(src.glob("*.dcm"))]
    needles: set[str] = set()
    for d in origs:
        for kw in ("PatientName", "PatientID", "AccessionNumber", "InstitutionName",
                   "ReferringPhysicianName", "StudyID", "OperatorsName"):
            v = str(d.get(kw, "") or "")
            if len(v) >= 4:
                needles.add(v)
    assert len(needles) >= 5
    report = anonymize_folder(src, tmp_path / "o", AnonymizeOptions(accept_burned_in=True))
    assert report.written == len(origs) == 7
    for path, data in _all_bytes(tmp_path / "o"):
        for s in needles:
            assert s.encode() not in data, f"{s!r} in {path}"
    for p in (tmp_path / "o").rglob("*.dcm"):
        d = pydicom.dcmread(p)
        assert d.PatientIdentityRemoved == "YES"
        assert d.pixel_array.size > 0  # JPEG pixels still decode


# -- all-or-nothing --------------------------------------------------------------------------
def test_refuses_output_inside_source(planted_dir: Path) -> None:
    with pytest.raises(ValueError, match="inside the source"):
        anonymize_folder(planted_dir.parent, planted_dir / "out", AnonymizeOptions())
    with pytest.raises(ValueError, match="inside the source"):
        anonymize_folder(planted_dir, planted_dir, AnonymizeOptions())


def test_full_disk_leaves_nothing(planted_dir: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = Dataset.save_as

    def failing(self: Dataset, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Dataset, "save_as", failing)
    out = tmp_path / "exp"
    with pytest.raises(WriteError, match="disk is full"):
        anonymize_folder(planted_dir.parent, out, AnonymizeOptions())
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".exp")] == []


def test_cancel_leaves_nothing(planted_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        anonymize_folder(planted_dir.parent, tmp_path / "x", AnonymizeOptions(), cancel=token)
    assert list(tmp_path.glob("*x*")) == []
