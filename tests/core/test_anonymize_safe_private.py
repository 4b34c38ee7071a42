"""Retain Safe Private Option: exactly PS3.15 Table E.3.10-1, at every nesting depth."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from medgan_desktop.core.dicom import profile, ps315_safe_private
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "packaging" / "tools" / "sources" / "ps315_e3_10_1_2026d.json"

PHILIPS = "Philips Imaging DD 001"
SECRET = "Zebedee^Quintus"  # planted wherever an element must not survive
ORIGINAL_UID = "1.2.826.0.1.3680043.2.1125.99.7777"


# -- the table ------------------------------------------------------------------------


def test_generated_table_is_the_vendored_source_unchanged() -> None:
    doc = json.loads(VENDORED.read_text(encoding="utf-8"))
    canon = json.dumps(doc["rows"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canon.encode()).hexdigest() == doc["content_sha256"]
    assert doc["content_sha256"] == ps315_safe_private.CONTENT_SHA256
    assert doc["table"] == "PS3.15 Table E.3.10-1" and doc["edition"] == ps315_safe_private.EDITION
    rows = [(int(r["tag"][1:5], 16), int(r["tag"][8:10], 16), r["private_creator"], r["vr"],
             r["vm"], r["meaning"]) for r in doc["rows"]]
    assert list(ps315_safe_private.ROWS) == rows  # regenerated, never hand-edited
    assert len(profile.SAFE_PRIVATE) == len(rows) == 479


def test_lookup_matches_creator_group_and_offset_exactly() -> None:
    assert profile.safe_private_rule(PHILIPS, 0x2001, 0x1003) is not None  # block 0x10
    assert profile.safe_private_rule(PHILIPS, 0x2001, 0x4203) is not None  # any block
    assert profile.safe_private_rule(PHILIPS + " ", 0x2001, 0x1003) is not None  # LO padding
    assert profile.safe_private_rule(PHILIPS, 0x2001, 0x1020) is None  # offset not listed
    assert profile.safe_private_rule("Philips Imaging DD 003", 0x2001, 0x1003) is None
    assert profile.safe_private_rule(PHILIPS.upper(), 0x2001, 0x1003) is None  # exact creator
    assert profile.safe_private_rule("GEMS_ACQU_01", 0x0021, 0x1023) is None  # wrong group
    assert profile.safe_private_rule(PHILIPS, 0x2001, 0x0003) is None  # not a data block
    assert profile.safe_private_rule(PHILIPS, 0x2000, 0x1003) is None  # even group
    row = profile.safe_private_rule("GEMS_PARM_01", 0x0043, 0x1039)
    assert row is not None and (row.vr, row.vm) == ("IS", "4")
    assert row.vm_allows(4) and row.vm_allows(0) and not row.vm_allows(3)
    ranged = profile.safe_private_rule("GEMS_PARM_01", 0x0043, 0x106F)
    assert ranged is not None and ranged.vm_allows(3) and ranged.vm_allows(4)
    assert not ranged.vm_allows(5)
    # the old hand-typed entries that Table E.3.10-1 does not have are gone
    assert profile.safe_private_rule("SIEMENS MR HEADER", 0x0019, 0x100A) is None
    assert profile.safe_private_rule("SIEMENS CSA HEADER", 0x0029, 0x1008) is None


# -- a dataset with listed, unlisted and look-alike private elements -------------------


def _private_item(depth: int) -> Dataset:
    """A dataset holding every kind of private element, nested ``depth`` more times."""
    ds = Dataset()
    ph = ds.private_block(0x2001, PHILIPS, create=True)  # block 0x10
    ph.add_new(0x03, "FL", 1000.0)  # listed: MR Image Diffusion B-Factor (FL, 1)
    ph.add_new(0x20, "LO", SECRET)  # listed creator, offset not in the table
    ph.add_new(0x02, "LO", SECRET)  # listed creator and offset, wrong VR (IS in the table)
    ph.add_new(0x1A, "FL", [1.0, 2.0])  # listed, FL, but VM 3 in the table
    other = ds.private_block(0x2001, "Philips Imaging DD 003", create=True)  # block 0x11
    other.add_new(0x03, "LO", SECRET)  # listed offset, creator not in the table
    nq = ds.private_block(0x0099, "NQHeader", create=True)
    nq.add_new(0x02, "UI", ORIGINAL_UID)  # listed UID: kept, but remapped
    ge = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    ge.add_new(0x39, "UN", b"0\\32\\0\\0 ")  # listed IS (VM 4) stored as UN: typed and kept
    bad = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    bad.add_new(0x24, "UN", SECRET.encode())  # listed DS stored as UN, not a number: removed
    acme = ds.private_block(0x0011, "ACME HOSPITAL", create=True)
    acme.add_new(0x01, "LO", SECRET)  # creator not in the table at all
    if depth:
        stack = Dataset()  # (2001,xx5f) Stack Sequence is listed: kept, its items cleaned
        stack.PatientName = SECRET
        stack.PatientID = SECRET
        stack.update(_private_item(depth - 1))
        ph.add_new(0x5F, "SQ", Sequence([stack]))
        acme.add_new(0x02, "SQ", Sequence([_private_item(depth - 1)]))  # unlisted sequence
    return ds


def _dataset(depth: int = 2) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.PatientName = SECRET
    ds.PatientID = "PID-1"
    ds.update(_private_item(depth))
    # the same private content inside a standard sequence that the profile keeps (U)
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ref.update(_private_item(depth))
    ds.SourceImageSequence = Sequence([ref])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _serialise(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _items(ds: Dataset) -> list[Dataset]:
    """``ds`` and every sequence item below it."""
    out = [ds]
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                out += _items(item)
    return out


def _privates(ds: Dataset) -> set[tuple[str, int, int]]:
    return {(str(e.private_creator), e.tag.group, e.tag.element & 0xFF) for e in ds
            if e.tag.is_private and not e.tag.is_private_creator}


KEPT = {(PHILIPS, 0x2001, 0x03), ("NQHeader", 0x0099, 0x02), ("GEMS_PARM_01", 0x0043, 0x39)}


def test_listed_elements_kept_with_the_option_at_every_depth() -> None:
    src = _dataset(depth=2)
    job = Anonymizer(AnonymizeOptions(retain_safe_private=True), secret=b"s" * 32)
    out, records = job.anonymize_dataset(src)
    data = _serialise(out)
    assert SECRET.encode() not in data and ORIGINAL_UID.encode() not in data

    top = out.private_block(0x2001, PHILIPS)
    assert top[0x03].value == pytest.approx(1000.0)
    # the kept Stack Sequence: two levels down, the same rule applies to each item
    stack = top[0x5F].value[0]
    inner = stack.private_block(0x2001, PHILIPS)[0x5F].value[0]
    for ds in (out, stack, inner, out.SourceImageSequence[0]):
        has_stack = ds is not inner  # the innermost item was built without one
        assert _privates(ds) == KEPT | ({(PHILIPS, 0x2001, 0x5F)} if has_stack else set())
        ge = ds.private_block(0x0043, "GEMS_PARM_01")[0x39]
        assert ge.VR == "IS" and list(ge.value) == [0, 32, 0, 0]  # UN decoded as the table's IS
        uid = ds.private_block(0x0099, "NQHeader")[0x02].value
        assert uid == job.map_uid(ORIGINAL_UID) != ORIGINAL_UID  # remapped like every UID
        creators = {str(e.value) for e in ds if e.tag.is_private_creator}
        assert creators == {PHILIPS, "NQHeader", "GEMS_PARM_01"}  # blocks with nothing kept: gone
    assert not stack.PatientName and not stack.PatientID  # Table E.1-1 inside a kept item
    mismatches = {r.tag for r in records if r.rule == "safe-private-mismatch"}
    assert {"(2001,1002)", "(2001,101A)", "(0019,1024)"} <= mismatches  # wrong VR, VM, bytes
    assert any(r.rule == "safe-private" and r.action == "U" for r in records)
    assert all(r.action == "X" for r in records if r.rule == "private")
    assert "Retain Safe Private (Table E.3.10-1 2026d)" in out.DeidentificationMethod
    assert "113111" in {c.CodeValue for c in out.DeidentificationMethodCodeSequence}
    # it still writes and reads back
    again = pydicom.dcmread(io.BytesIO(data))
    assert again.private_block(0x2001, PHILIPS)[0x03].value == pytest.approx(1000.0)


def test_without_the_option_no_private_element_survives_anywhere() -> None:
    out, records = Anonymizer(AnonymizeOptions(), secret=b"s" * 32).anonymize_dataset(_dataset())
    assert not any(e.tag.is_private for item in _items(out) for e in item)
    assert not any(r.rule.startswith("safe-private") for r in records)
    assert SECRET.encode() not in _serialise(out)


def test_unlisted_creator_or_offset_is_removed_even_with_the_option() -> None:
    out, _ = Anonymizer(AnonymizeOptions(retain_safe_private=True)).anonymize_dataset(_dataset(1))
    for item in _items(out):
        for creator, group, offset in _privates(item):
            assert profile.is_safe_private(creator, group, 0x1000 | offset)
        assert not any(e.tag.group == 0x0011 for e in item)  # ACME block and its sequence


@pytest.mark.filterwarnings("ignore:The value length .* allowed for VR IS")
def test_listed_element_in_an_implicit_vr_file_is_kept(tmp_path: Path) -> None:
    """Implicit VR: pydicom reads an element its dictionary does not know as UN."""
    ds = _dataset(depth=0)
    del ds.SourceImageSequence
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    blk = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    blk.add_new(0x0E, "FD", [0.0, 0.6, 0.8])  # Diffusion Gradient Direction (FD, 3)
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, enforce_file_format=True)
    src = pydicom.dcmread(path)
    out, _ = Anonymizer(AnonymizeOptions(retain_safe_private=True)).anonymize_dataset(src)
    kept = out.private_block(0x0019, "SIEMENS MR HEADER")[0x0E]
    assert kept.VR == "FD" and list(kept.value) == [0.0, 0.6, 0.8]
    assert _privates(out) == KEPT | {("SIEMENS MR HEADER", 0x0019, 0x0E)}
    # (2001,xx02) is read back with the dictionary's VR (IS), as the table lists it, but its
    # value is the planted text: not a valid IS, so it is not kept
    assert src.private_block(0x2001, PHILIPS)[0x02].VR == "IS"
    assert SECRET.encode() not in _serialise(out)


def test_un_with_wrong_length_for_the_listed_vr_is_removed() -> None:
    ds = _dataset(depth=0)
    blk = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    blk.add_new(0x0E, "UN", struct.pack("<2d", 0.0, 1.0) + b"\x01")  # not a multiple of 8
    out, records = Anonymizer(AnonymizeOptions(retain_safe_private=True)).anonymize_dataset(ds)
    assert ("SIEMENS MR HEADER", 0x0019, 0x0E) not in _privates(out)
    tag = blk.get_tag(0x0E)
    where = f"({tag.group:04X},{tag.element:04X})"
    assert any(r.rule == "safe-private-mismatch" and r.tag == where for r in records)
