"""Fuzzing the anonymiser with hypothesis-mutated datasets carrying planted identity.

Each example starts from a real MR header (pydicom's shipped ``MR_small.dcm``) and plants
unique identifying strings at random places: identifying attributes at the top level and
inside randomly nested sequences, private blocks with random creators and VRs, overlay
and curve groups, comments, the preamble, even-group elements no dictionary knows, and
standard text attributes Table E.1-1 does not list; it also gives random attributes odd
VRs (UN, OB) and wrong-length or malformed values (as a parsed file would hold them, raw).

Properties: :meth:`Anonymizer.anonymize_dataset` and :func:`anonymize_folder` raise
nothing but their documented errors, and no planted string survives in any output byte.

A short budget runs in the suite; the long one is
``MEDGAN_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/core/test_fuzz_anonymize.py``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.dicom import anonymize_rules, profile
from medgan_desktop.core.dicom.anonymize import (
    AnonymizeOptions,
    Anonymizer,
    BurnedInAnnotationError,
    MalformedDatasetError,
    anonymize_folder,
)

EXAMPLES = int(os.environ.get("MEDGAN_FUZZ_EXAMPLES", "100"))
BASE_PATH = str(get_testdata_file("MR_small.dcm"))

#: attributes Table E.1-1 removes, empties or replaces under the Basic Profile (no options)
IDENTIFYING = {
    "PatientName": "PN", "PatientID": "LO", "OtherPatientIDs": "LO", "OtherPatientNames": "PN",
    "PatientAddress": "LO", "PatientBirthName": "PN", "PatientMotherBirthName": "PN",
    "PatientTelephoneNumbers": "SH", "InstitutionName": "LO", "InstitutionAddress": "ST",
    "ReferringPhysicianName": "PN", "PerformingPhysicianName": "PN", "OperatorsName": "PN",
    "PhysiciansOfRecord": "PN", "RequestingPhysician": "PN", "AccessionNumber": "SH",
    "StationName": "SH", "DeviceSerialNumber": "LO", "StudyDescription": "LO",
    "SeriesDescription": "LO", "ProtocolName": "LO", "PatientComments": "LT",
    "ImageComments": "LT", "StudyComments": "LT", "AdditionalPatientHistory": "LT",
    "MilitaryRank": "LO", "Occupation": "SH", "MedicalRecordLocator": "LO",
    "RequestedProcedureDescription": "LO", "PerformedProcedureStepDescription": "LO",
    "InstitutionalDepartmentName": "LO", "IssuerOfPatientID": "LO",
}
SEQUENCES = ("ReferencedStudySequence", "RequestAttributesSequence", "SourceImageSequence",
             "ReferencedImageSequence", "ProcedureCodeSequence", "ReferencedPatientSequence",
             "AnatomicRegionSequence", "OtherPatientIDsSequence", "ReferencedPerformedProcedureStepSequence")
PRIVATE_VRS = ("LO", "SH", "LT", "ST", "UT", "PN", "UN", "OB", "DS", "CS")
#: (keyword, VR as stored, malformed raw value): wrong lengths, bad formats, odd VRs
MALFORMED = (
    ("Rows", "US", b"\x40\x00\x00"),
    ("Columns", "US", b"\x40"),
    ("StudyDate", "DA", b"2019-3-1"),
    ("StudyTime", "TM", b"25:61:61.1234567890"),
    ("SliceThickness", "DS", b"1.2.3.4e"),
    ("SeriesNumber", "IS", b"twelve"),
    ("PatientAge", "AS", b"1234567"),
    ("PixelSpacing", "DS", b"0.5\\"),
    ("ImagePositionPatient", "DS", b"1\\2"),
    ("SOPInstanceUID", "UI", b"1.2.abc..4\x00\x00"),
    ("FrameOfReferenceUID", "UI", b""),
    ("EchoTime", "DS", b"\xff\xfe\x00"),
    ("PatientWeight", "DS", b"  "),
    ("StudyDate", "UN", b"20190317"),
    ("Modality", "UN", b"MR"),
    ("SamplesPerPixel", "UL", b"\x01\x00"),
)

#: standard text attributes the packaged table does not list and the allow list does not keep
NOT_IN_TABLE = sorted(
    (tag, vr) for tag, vr in ((int(Tag(kw)), pydicom.datadict.dictionary_VR(kw)) for kw in (
        "ContrastBolusRoute", "DimensionDescriptionLabel", "ImageID", "ViewName",
        "PatientSpeciesDescription", "ProcessingFunction", "TextValue", "PlateType",
        "DetectorDescription", "CompletionFlagDescription", "BeamName", "StorageMediaFileSetID"))
    if profile.lookup(tag) is None and tag not in anonymize_rules.ALLOWED_TEXT)
UNKNOWN_VRS = ("PN", "LO", "SH", "LT", "UT", "UN", "CS", "OB")

token = st.text(alphabet="BCDGJKLMNPRSTVWXY", min_size=6, max_size=10).map(lambda s: "QZ" + s)


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    """An element as the file reader holds it before decoding (odd lengths stay odd)."""
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


class Case:
    """A mutated dataset, its planted secrets and a printable account of the mutations."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.secrets: list[str] = []
        self.log: list[str] = []
        self.malformed: set[str] = set()  # "(gggg,eeee)" of malformed attributes

    def __repr__(self) -> str:  # a Dataset with undecodable elements cannot be printed
        return f"Case(secrets={self.secrets}, mutations={self.log})"


@st.composite
def _nested_item(draw: st.DrawFn, secret: str, depth: int) -> Dataset:
    item = Dataset()
    kw = draw(st.sampled_from(sorted(IDENTIFYING)))
    setattr(item, kw, secret) if IDENTIFYING[kw] != "PN" else setattr(item, kw, f"{secret}^Given")
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    if depth > 1 and draw(st.booleans()):
        setattr(item, draw(st.sampled_from(SEQUENCES)),
                Sequence([draw(_nested_item(secret, depth - 1))]))
    return item


@st.composite
def mutated(draw: st.DrawFn) -> Case:
    """A real MR dataset with planted identity and malformed values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BASE_PATH)
    case = Case(ds)

    def secret() -> str:
        s = draw(token)
        case.secrets.append(s)
        return s

    # identifying attributes at the top level
    for kw in draw(st.lists(st.sampled_from(sorted(IDENTIFYING)), min_size=1, max_size=6, unique=True)):
        s = secret()
        setattr(ds, kw, f"{s}^Anna" if IDENTIFYING[kw] == "PN" else s)
        case.log.append(kw)
    # identity inside nested sequences (1-3 levels)
    for _ in range(draw(st.integers(0, 3))):
        kw = draw(st.sampled_from(SEQUENCES))
        item = draw(_nested_item(secret(), draw(st.integers(1, 3))))
        if kw in ds and ds[kw].VR == "SQ":
            ds[kw].value.append(item)
        else:
            setattr(ds, kw, Sequence([item]))
        case.log.append(f"{kw}[{item!r}]")
    # private blocks: random odd group, creator and VR; sometimes inside a private sequence
    for _ in range(draw(st.integers(0, 3))):
        group = draw(st.integers(4, 0x7FFF)) * 2 + 1
        if group >= 0xFFFF:
            group = 0x0009
        slot = draw(st.integers(0x10, 0xFF))
        ds.add_new((group << 16) | slot, "LO", draw(st.sampled_from(["ACME 1.1", secret(), "SIEMENS CSA"])))
        vr = draw(st.sampled_from(PRIVATE_VRS))
        elem = (group << 16) | (slot << 8) | draw(st.integers(0, 0xFF))
        ds[elem] = _raw(elem, vr, secret().encode() + b" ")
        case.log.append(f"private {elem:08X} {vr}")
        if draw(st.booleans()):
            inner = Dataset()
            inner.PatientName = secret()
            ds.add_new(elem ^ 1 if (elem & 0xFF) else elem | 1, "SQ", Sequence([inner]))
    # the preamble, elements no dictionary knows, standard text the table does not list
    if draw(st.booleans()):
        ds.preamble = secret().encode().ljust(128, b"\x00")[:128]
        case.log.append("preamble")
    for _ in range(draw(st.integers(0, 2))):
        tag = (draw(st.integers(0x2220, 0x222F)) * 2 << 16) | draw(st.integers(1, 0xFFFE))
        vr = draw(st.sampled_from(UNKNOWN_VRS))
        if not anonymize_rules.dictionary_vrs(tag):
            ds[tag] = _raw(tag, vr, secret().encode() + b" ")
            case.log.append(f"unknown {tag:08X} {vr}")
    for tag, vr in draw(st.lists(st.sampled_from(NOT_IN_TABLE), max_size=3, unique=True)):
        ds[tag] = _raw(tag, vr, secret().encode() + b" ")
        case.log.append(f"not in table {tag:08X} {vr}")
    # overlays and curves carry free text
    if draw(st.booleans()):
        g = 0x6000 + 2 * draw(st.integers(0, 15))
        ds.add_new((g << 16) | 0x0022, "LO", secret())
        ds.add_new((g << 16) | 0x1500, "LO", secret())
    if draw(st.booleans()):
        g = 0x5000 + 2 * draw(st.integers(0, 15))
        ds[(g << 16) | 0x2500] = _raw((g << 16) | 0x2500, "LO", secret().encode() + b" ")
    # identifying attributes stored with an odd VR (as a file written by a careless tool)
    if draw(st.booleans()):
        kw = draw(st.sampled_from(["PatientName", "InstitutionName", "OperatorsName", "AccessionNumber"]))
        tag = int(Tag(kw))
        vr = draw(st.sampled_from(["UN", "OB", "LO", "UT"]))
        ds[tag] = _raw(tag, vr, secret().encode() + b" ")
        case.log.append(f"{kw} as {vr}")
    # malformed, wrong-length values of ordinary attributes
    for kw, vr, value in draw(st.lists(st.sampled_from(MALFORMED), max_size=5)):
        tag = int(Tag(kw))
        ds[tag] = _raw(tag, vr, value)
        case.log.append(f"{kw} {vr} {value!r}")
        case.malformed.add(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return case


def _assert_clean(data: bytes, secrets_: list[str], where: str) -> None:
    low = data.lower()
    for s in secrets_:
        assert s.lower().encode() not in low, f"planted {s!r} survived in {where}"


def _serialise(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@settings(max_examples=EXAMPLES * 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=mutated(), retain_safe_private=st.booleans())
def test_anonymize_dataset_never_crashes_or_leaks(case: Case, retain_safe_private: bool) -> None:
    ds, secrets_ = case.ds, case.secrets
    before = _serialise(ds)
    assert any(s.encode() in before for s in secrets_)  # the plant is really there
    job = Anonymizer(AnonymizeOptions(retain_safe_private=retain_safe_private), secret=b"k" * 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out, records = job.anonymize_dataset(ds)
        except MalformedDatasetError as exc:  # documented: only for what we broke
            assert any(t in str(exc) for t in case.malformed), str(exc)
            return
    assert out.PatientIdentityRemoved == "YES" and records
    _assert_clean(_serialise(out), secrets_, "anonymize_dataset output")
    after = _serialise(ds)  # the input is not scrubbed in place (lazy raw decoding aside)
    assert all(after.count(s.encode()) == before.count(s.encode()) for s in secrets_)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(mutated(), min_size=1, max_size=3), burned=st.booleans())
def test_anonymize_folder_never_crashes_or_leaks(cases: list[Case], burned: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        secrets_: list[str] = []
        for n, case in enumerate(cases):
            if burned and n == 0:
                case.ds.BurnedInAnnotation = "YES"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                case.ds.save_as(src / f"{n}.dcm", enforce_file_format=True)
            secrets_ += case.secrets
        (src / "junk.dcm").write_bytes(b"DICM" + "".join(secrets_).encode())  # not DICOM: skipped
        out = Path(tmp) / "out"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = anonymize_folder(src, out, AnonymizeOptions())
        except BurnedInAnnotationError as exc:
            assert burned and "burned" in str(exc)
            assert not out.exists()
            return
        except WriteError:  # documented, but nothing here should fail to write
            pytest.fail("an export of valid paths failed")
        assert not burned
        malformed = [f for f in report.files if f.status == "skipped" and "malformed" in f.reason]
        assert all(any(t in f.reason for c in cases for t in c.malformed) for f in malformed)
        assert report.written + len(malformed) == len(cases) and report.skipped == 1 + len(malformed)
        files = sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
        assert len(files) == report.written
        for f in files:
            _assert_clean(f.read_bytes(), secrets_, str(f.relative_to(out)))
        _assert_clean(json.dumps(report.to_dict()).encode(), secrets_, "the report")
