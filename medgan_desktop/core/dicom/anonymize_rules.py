"""De-identification beyond Table E.1-1: what the anonymiser removes that the table does not name.

Table E.1-1 lists the attributes the standard knows to carry identity; a file can carry
identity in places it does not list. The anonymiser keeps only what it can vouch for:

* **Outside the instance**: the 128-byte preamble is zeroed and the file meta group is
  rebuilt from nothing (:func:`build_file_meta`); command (0000), file meta (0002) and
  directory (0004, e.g. Referenced File ID, which names source files) elements found in
  the data set, at any depth, are removed.
* **Unknown attributes**: an even-group element that no dictionary knows is removed,
  whatever its VR (:func:`dictionary_vrs` is empty for it).
* **UN**: an element stored as UN whose tag the dictionary knows is decoded as the
  dictionary VR when its bytes are valid for it (:func:`retype_un`) and then handled as
  that attribute; what stays UN is removed (private elements follow the private rules).
* **Standard attributes the table does not list** (:func:`beyond_table_action`): text,
  names, dates and times (:data:`TEXT_VRS`) are removed (given a dummy value inside a
  sequence the table replaces with dummies), unless they are on :data:`ALLOWED_TEXT`,
  the attributes needed to use the image (kept after the patient's identifying strings
  are cleaned out). The date options keep or shift only the table's dates; other dates
  go too. Numbers, code strings (CS), UIDs (remapped), binary data (pixels,
  LUTs) and sequences (their items handled by these same rules) are kept. A value whose
  VR contradicts the dictionary's (bytes where a number is defined, text where a code
  is) is judged by the riskier of the two.
* **Device description** (:data:`SUPPLEMENT`): Manufacturer, Manufacturer's Model Name and
  Software Versions are kept only with the Retain Device Identity option; otherwise they
  get the combined action ``X/Z/D`` (emptied where Type 2, a dummy where Type 1, removed
  where Type 3). Position Reference Indicator and Content Description (Type 2) are
  emptied (``X/Z``).
* **UIDs**: a UID kept as well known (a class, a transfer syntax) must be well formed;
  anything else is remapped. A transfer syntax that is not a standard one is refused.

A written file must also be a usable instance (:func:`instance_problem`): a SOP Class
and SOP Instance UID, and pixel data for image storage classes that hold every frame.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence as Seq

import pydicom
from pydicom import config
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import get_entry, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.errors import BytesLengthException
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import validate_value
from pydicom.values import convert_value

from medgan_desktop import __version__
from medgan_desktop.core.dicom.profile import Rule

__all__ = [
    "ALLOWED_TEXT",
    "SUPPLEMENT",
    "TEXT_VRS",
    "beyond_table_action",
    "build_file_meta",
    "dictionary_vrs",
    "instance_problem",
    "outside_instance",
    "retype_un",
    "transfer_syntax",
    "valid_uid",
    "valid_value",
]

#: VRs of text, names, dates and times: identity can be written in any of them.
TEXT_VRS = frozenset({"AE", "AS", "DA", "DT", "TM", "LO", "LT", "PN", "SH", "ST", "UC", "UT",
                      "UR"})
BINARY_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8}
BYTES_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})


def _tags(*keywords: str) -> frozenset[int]:
    out = set()
    for kw in keywords:
        tag = tag_for_keyword(kw)
        if tag is None:  # pragma: no cover - a keyword the dictionary lost
            raise KeyError(kw)
        out.add(int(tag))
    return frozenset(out)


#: The allow list: standard text attributes Table E.1-1 does not list that are needed to
#: use the image and describe a technique or a coded concept, not a person. They are kept,
#: with the patient's identifying strings cleaned out. Everything else in TEXT_VRS that the
#: table does not list is removed. (Image Type, Lossy Image Compression Method and other
#: CS attributes need no entry: code strings are kept.)
ALLOWED_TEXT: frozenset[int] = _tags(
    # Code Sequence Macro (PS3.3 8.8): Type 1 in every coded item (anatomy, procedure, ...)
    "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
    "LongCodeValue", "URNCodeValue",
    # how to read the pixel values (Type 1 in Pixel Value Transformation, Modality LUT and
    # Real World Value Mapping)
    "RescaleType", "WindowCenterWidthExplanation", "LUTExplanation", "ModalityLUTType",
    "LUTLabel",
    # multi-frame stacks (Frame Content Macro, Type 1C: In-Stack Position needs it)
    "StackID",
    # acquisition and reconstruction technique (Type 1C in the enhanced MR modules)
    "ConvolutionKernel", "FilterType", "SequenceName", "PulseSequenceName",
    "ImagedNucleus", "ReceiveCoilName", "TransmitCoilName",
    # Segmentation IOD: what each segment is (Type 1 / 1C)
    "SegmentLabel", "SegmentAlgorithmName",
)


def _supplement(keyword: str, basic: str, options: dict[str, str]) -> tuple[int, Rule]:
    tag = int(tag_for_keyword(keyword) or 0)
    return tag, Rule(f"{tag:08x}", keyword, basic, options)


#: Rows in the form of Table E.1-1 for attributes it does not list but that are Type 1 or
#: 2 in common IODs (see ``profile.attribute_type``), so removing them would make the
#: instance invalid. Applied only where the table has no row for the tag.
SUPPLEMENT: dict[int, Rule] = dict((
    _supplement("Manufacturer", "X/Z/D", {"rtnDevIdOpt": "K"}),
    _supplement("ManufacturerModelName", "X/Z/D", {"rtnDevIdOpt": "K"}),
    _supplement("SoftwareVersions", "X/Z/D", {"rtnDevIdOpt": "K"}),
    _supplement("PositionReferenceIndicator", "X/Z", {}),
    _supplement("ContentDescription", "X/Z", {"cleanDescOpt": "C"}),
))


def dictionary_vrs(tag: int) -> tuple[str, ...]:
    """The VRs the DICOM dictionary gives a tag (repeating groups included); () if unknown."""
    try:
        vr = str(get_entry(tag)[0])
    except KeyError:
        return ()
    return tuple(v.strip() for v in vr.split(" or "))


def outside_instance(tag: int) -> bool:
    """Command (0000), file meta (0002) and directory (0004) elements, and group lengths."""
    return tag >> 16 in (0x0000, 0x0002, 0x0004) or tag & 0xFFFF == 0x0000


def beyond_table_action(tag: int, vr: str, vrs: Seq[str], *, in_dummy_sequence: bool
                        ) -> tuple[str, str] | None:
    """The action for a standard attribute Table E.1-1 does not list, or None to keep it.

    Args:
        tag: the attribute (known to the dictionary, not a sequence or UID).
        vr: the VR the element carries.
        vrs: the VRs the dictionary gives it.
        in_dummy_sequence: the element sits in a sequence the table replaces with dummies.

    Returns:
        ``(action, rule)``: ``("C", "allow-list")`` to keep and clean it, ``("X" or "D",
        "not-in-table")`` for text, names and dates, ``("X", "vr-mismatch")`` for bytes
        where the dictionary defines a number or code; None for what is kept as it is.
    """
    if vr in TEXT_VRS or any(v in TEXT_VRS for v in vrs):
        if tag in ALLOWED_TEXT and vr in vrs:
            return "C", "allow-list"
        return ("D" if in_dummy_sequence else "X"), "not-in-table"
    if vr in BYTES_VRS and not any(v in BYTES_VRS for v in vrs):
        return "X", "vr-mismatch"
    return None


_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def valid_uid(value: object) -> bool:
    """Whether ``value`` has the form of a UID (digits and dots, at most 64 characters)."""
    text = str(value).strip().rstrip("\x00")
    return len(text) <= 64 and _UID_RE.fullmatch(text) is not None


def valid_value(elem: DataElement) -> bool:
    """Whether every value of a (non-sequence) element is valid for its VR (PS3.5 6.2).

    A file read with implicit VR gets private VRs from pydicom's dictionary, whatever the
    bytes hold, so the VR alone does not show the value is what the table describes.
    """
    if elem.VR in BINARY_SIZE or elem.VR in BYTES_VRS or elem.value in (None, ""):
        return True
    multi = isinstance(elem.value, list | tuple | pydicom.multival.MultiValue)
    try:
        for v in elem.value if multi else [elem.value]:
            text = v.decode("ascii") if isinstance(v, bytes) else str(v)
            validate_value(elem.VR, text, config.RAISE)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def retype_un(elem: DataElement, vrs: Seq[str]) -> DataElement | None:
    """``elem`` (VR UN) decoded as the first of ``vrs`` its bytes are valid for, or None.

    Numbers must fill whole values; text must be ASCII and valid for the VR (PS3.5 6.2),
    each backslash-separated value on its own; a sequence is never decoded from UN.
    """
    raw = elem.value if isinstance(elem.value, bytes) else b""
    for vr in vrs:
        if vr in ("SQ", "UN"):
            continue
        if vr in BINARY_SIZE:
            if len(raw) % BINARY_SIZE[vr]:
                continue
        elif vr not in BYTES_VRS:
            try:
                text = raw.decode("ascii").rstrip(" \x00")
                parts = [text] if vr in ("LT", "ST", "UT", "UR") else text.split("\\")
                for part in parts:
                    validate_value(vr, part, config.RAISE)
            except (UnicodeDecodeError, ValueError):
                continue
        try:
            value = convert_value(vr, RawDataElement(elem.tag, vr, len(raw), raw, 0, True, True))
        except (ValueError, TypeError, struct.error, BytesLengthException, OverflowError):
            continue
        return DataElement(elem.tag, vr, value)
    return None


def transfer_syntax(src: Dataset) -> UID | None:
    """The source's transfer syntax if it is a standard one (Explicit VR Little Endian when
    the source has none), or None when it names something that is not a transfer syntax."""
    meta = getattr(src, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "").strip().rstrip("\x00")
    if not ts:
        return ExplicitVRLittleEndian
    entry = UID_dictionary.get(ts)
    return UID(ts) if entry is not None and entry[1] == "Transfer Syntax" else None


def build_file_meta(out: Dataset, ts: UID) -> FileMetaDataset:
    """A file meta group made from nothing: version, SOP class/instance, transfer syntax,
    and the product's implementation UID and version name (nothing from the source)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = out.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = out.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MEDGAN_{__version__}"[:16]
    return meta


_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def instance_problem(ds: Dataset) -> str | None:
    """Why a de-identified dataset is not a usable instance, or None when it is.

    It needs a SOP Class UID and a SOP Instance UID; an image storage class needs pixel
    data, and pixel data must hold every frame: Rows x Columns x Samples x Frames at Bits
    Allocated when native, at least one fragment per frame when compressed.
    """
    sop_class = str(ds.get("SOPClassUID", "") or "").strip()
    if not valid_uid(sop_class) or not sop_class:
        return "it has no valid SOP Class UID"
    if not str(ds.get("SOPInstanceUID", "") or "").strip():
        return "it has no SOP Instance UID"
    name = str(UID_dictionary.get(sop_class, ("",))[0])
    pixel = next((kw for kw in _PIXEL_KEYWORDS if kw in ds), None)
    if pixel is None:
        return f"it is a {name} without pixel data" if "Image Storage" in name else None
    return _pixel_problem(ds, pixel)


def _pixel_problem(ds: Dataset, keyword: str) -> str | None:
    for kw in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(kw):
            return f"it has pixel data but no {kw}"
    try:
        rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
    except (TypeError, ValueError):
        return "its image size (Rows, Columns, frames, samples) is not a number"
    value = ds[keyword].value or b""
    ts = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in ds.file_meta else None
    if keyword == "PixelData" and ts is not None and UID(ts).is_encapsulated:
        try:
            buf = io.BytesIO(value)
            parse_basic_offsets(buf)
            fragments = int(parse_fragments(buf)[0])
        except (ValueError, struct.error, TypeError) as exc:
            return f"its compressed pixel data cannot be parsed ({exc})"
        if fragments < frames:
            return f"its compressed pixel data hold {fragments} fragment(s) for {frames} frame(s)"
        return None
    count = rows * cols * frames * samples
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        count = count // 3 * 2
    expected = (count * bits + 7) // 8
    if len(value) < expected:
        return (f"its pixel data are truncated: {len(value)} bytes where {rows}x{cols}, "
                f"{frames} frame(s), {samples} sample(s) at {bits} bits need {expected}")
    return None
