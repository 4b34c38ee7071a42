"""A small, fast DICOM header scanner for the common case.

pydicom builds a full :class:`~pydicom.dataset.Dataset` (hundreds of elements, nested
sequences) even with ``stop_before_pixels``; indexing and series loading need about 40
top-level tags. :func:`scan_header` walks the elements with :mod:`struct`, skips every
value it does not need (sequences included) and decodes only the needed ones, which is
about ten times faster than ``pydicom.dcmread``.

It handles only files that are exactly what most scanners write: a 128-byte preamble
and ``DICM``, an explicit-VR little-endian file meta group, and a dataset in implicit
or explicit VR little endian (native or encapsulated pixel data). For *anything* else
(no preamble, big endian, deflate, an unknown VR, a length running past the end of the
file, undefined-length ``UN``, enhanced multi-frame functional groups, a character set
other than ASCII/Latin-1/UTF-8, a value it cannot parse ...) it returns ``None`` and the
caller reads the file with pydicom, which then reports the problem with its usual
reason. It never reads more than the file holds nor more than :data:`MAX_VALUE` bytes
for one needed value, and every loop advances by at least 8 bytes, so a malformed file
costs bounded time and memory.
"""

from __future__ import annotations

import struct
from typing import IO, Any

#: A needed value longer than this sends the file to pydicom.
MAX_VALUE = 1 << 16
#: Nested sequences deeper than this send the file to pydicom.
MAX_DEPTH = 12
_CHUNK = 1 << 14
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_IMPLICIT_LE, _EXPLICIT_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
#: Transfer syntaxes whose dataset is explicit VR little endian (pixels encapsulated).
_ENCAPSULATED = (
    "1.2.840.10008.1.2.4.",  # JPEG family, JPEG-LS, JPEG 2000, HTJ2K, MPEG, HEVC
    "1.2.840.10008.1.2.5",  # RLE lossless
)

_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_SHORT_VRS = frozenset(
    (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
     b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")
)
_ALL_VRS = _SHORT_VRS | _LONG_VRS

#: tag -> (keyword, VR) of every value the index and the series loader read.
NEEDED: dict[int, tuple[str, str]] = {
    0x00080005: ("SpecificCharacterSet", "CS"),
    0x00080008: ("ImageType", "CS"),
    0x00080016: ("SOPClassUID", "UI"),
    0x00080018: ("SOPInstanceUID", "UI"),
    0x0008001C: ("SyntheticData", "CS"),
    0x00080020: ("StudyDate", "DA"),
    0x00080021: ("SeriesDate", "DA"),
    0x00080030: ("StudyTime", "TM"),
    0x00080050: ("AccessionNumber", "SH"),
    0x00080060: ("Modality", "CS"),
    0x00080070: ("Manufacturer", "LO"),
    0x00081030: ("StudyDescription", "LO"),
    0x0008103E: ("SeriesDescription", "LO"),
    0x00082111: ("DerivationDescription", "ST"),
    0x00100010: ("PatientName", "PN"),
    0x00100020: ("PatientID", "LO"),
    0x00100030: ("PatientBirthDate", "DA"),
    0x00100040: ("PatientSex", "CS"),
    0x00180015: ("BodyPartExamined", "CS"),
    0x00180020: ("ScanningSequence", "CS"),
    0x00180024: ("SequenceName", "SH"),
    0x00180050: ("SliceThickness", "DS"),
    0x00180080: ("RepetitionTime", "DS"),
    0x00180081: ("EchoTime", "DS"),
    0x00180082: ("InversionTime", "DS"),
    0x00181030: ("ProtocolName", "LO"),
    0x00181164: ("ImagerPixelSpacing", "DS"),
    0x00182010: ("NominalScannedPixelSpacing", "DS"),
    0x0020000D: ("StudyInstanceUID", "UI"),
    0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200010: ("StudyID", "SH"),
    0x00200011: ("SeriesNumber", "IS"),
    0x00200013: ("InstanceNumber", "IS"),
    0x00200032: ("ImagePositionPatient", "DS"),
    0x00200037: ("ImageOrientationPatient", "DS"),
    0x00200052: ("FrameOfReferenceUID", "UI"),
    0x00280002: ("SamplesPerPixel", "US"),
    0x00280004: ("PhotometricInterpretation", "CS"),
    0x00280008: ("NumberOfFrames", "IS"),
    0x00280010: ("Rows", "US"),
    0x00280011: ("Columns", "US"),
    0x00280030: ("PixelSpacing", "DS"),
    0x00280100: ("BitsAllocated", "US"),
    0x00280101: ("BitsStored", "US"),
    0x00280103: ("PixelRepresentation", "US"),
    0x00281050: ("WindowCenter", "DS"),
    0x00281051: ("WindowWidth", "DS"),
    0x00281052: ("RescaleIntercept", "DS"),
    0x00281053: ("RescaleSlope", "DS"),
    0x00281054: ("RescaleType", "LO"),
}
_META: dict[int, str] = {
    0x00020002: "MediaStorageSOPClassUID",
    0x00020003: "MediaStorageSOPInstanceUID",
    0x00020010: "TransferSyntaxUID",
}
#: Tags whose presence needs the full pydicom dataset (functional groups, frame offsets,
#: float pixel data).
_NEEDS_PYDICOM = frozenset((0x52009229, 0x52009230, 0x3004000C, 0x7FE00008, 0x7FE00009))
_TEXT_VRS = frozenset(("SH", "LO", "PN", "ST"))  # decoded with the Specific Character Set
_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1",
             "ISO_IR 192": "utf_8"}

_u_hhi = struct.Struct("<HHI").unpack_from
_u_hh2shh = struct.Struct("<HH2sH").unpack_from
_u_i = struct.Struct("<I").unpack_from


class _Unusual(Exception):
    """The file needs pydicom (see module docs)."""


class HeaderTags(dict[str, Any]):
    """The needed tags of one header by keyword, shaped like pydicom's values.

    Text is ``str`` (``""`` when empty), IS/US are ``int``, DS is ``float`` or a list of
    floats when multi-valued; absent tags are absent. ``file_meta`` holds the file meta
    group's transfer syntax and media storage UIDs.
    """

    file_meta: dict[str, str]


class _Buffer:
    """A window on the file: ``data`` holds the bytes from file offset ``base``."""

    __slots__ = ("base", "data", "fp", "size")

    def __init__(self, fp: IO[bytes], size: int) -> None:
        self.fp, self.size, self.base = fp, size, 0
        self.data = fp.read(min(size, _CHUNK))

    def window(self, pos: int, n: int) -> int:
        """Make ``data`` hold ``n`` bytes at file offset ``pos``; their index in ``data``."""
        if pos + n > self.size:
            raise _Unusual("past the end of the file")
        rel = pos - self.base
        if rel < 0 or rel + n > len(self.data):
            self.fp.seek(pos)
            self.data = self.fp.read(min(max(n, _CHUNK), self.size - pos))
            self.base, rel = pos, 0
            if len(self.data) < n:
                raise _Unusual("short read")
        return rel


def _element(buf: _Buffer, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value position) of the element at ``pos``."""
    rel = buf.window(pos, 8)
    if explicit:
        group, elem, vr, length = _u_hh2shh(buf.data, rel)
        tag = group << 16 | elem
        if group == 0xFFFE:  # item and delimiter tags have no VR
            return tag, b"", _u_i(buf.data, rel + 4)[0], pos + 8
        if vr in _SHORT_VRS:
            return tag, vr, length, pos + 8
        if vr not in _LONG_VRS:
            raise _Unusual("unknown VR")
        rel = buf.window(pos + 8, 4)
        return tag, vr, _u_i(buf.data, rel)[0], pos + 12
    group, elem, length = _u_hhi(buf.data, rel)
    return group << 16 | elem, b"", length, pos + 8


def _skip_sequence(buf: _Buffer, pos: int, explicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; the end."""
    if depth > MAX_DEPTH:
        raise _Unusual("sequences nested too deep")
    while True:
        rel = buf.window(pos, 8)
        group, elem, length = _u_hhi(buf.data, rel)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Unusual("not an item in a sequence")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an undefined-length item: its elements up to the item delimiter
            tag, vr, length, pos = _element(buf, pos, explicit)
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED:
                if explicit and vr != b"SQ":
                    raise _Unusual("undefined length outside a sequence")
                pos = _skip_sequence(buf, pos, explicit, depth + 1)
            else:
                pos += length


def _text(raw: bytes, encoding: str) -> str:
    value = raw.decode(encoding).rstrip("\0 ")
    if "\\" in value:
        raise _Unusual("multi-valued text")
    return value


def _convert(raw: bytes, vr: str, encoding: str) -> Any:
    if vr == "US":
        if len(raw) != 2:
            raise _Unusual("US value of odd length")
        return raw[0] | raw[1] << 8
    if vr == "CS":  # code strings may be multi-valued (ImageType): kept as ``A\\B``
        return raw.decode("latin_1").rstrip("\0 ")
    text = _text(raw, encoding if vr in _TEXT_VRS else "latin_1") if vr != "DS" else ""
    if vr == "IS":
        text = text.strip()
        return int(text) if text else ""
    if vr == "DS":
        parts = raw.decode("latin_1").rstrip("\0 ").split("\\")
        if parts == [""]:
            return ""
        values = [float(p) for p in parts]
        return values[0] if len(values) == 1 else values
    return text


def _parse_meta(buf: _Buffer) -> tuple[dict[str, str], int]:
    """The file meta group (always explicit VR LE); the position after it."""
    rel = buf.window(0, 132)
    if buf.data[rel + 128 : rel + 132] != b"DICM":
        raise _Unusual("no preamble")
    meta: dict[str, str] = {}
    pos = 132
    while pos + 8 <= buf.size:
        rel = buf.window(pos, 8)
        if _u_hhi(buf.data, rel)[0] != 0x0002:
            break
        tag, _vr, length, vpos = _element(buf, pos, True)
        if length == _UNDEFINED or length > MAX_VALUE:
            raise _Unusual("bad file meta length")
        keyword = _META.get(tag)
        if keyword is not None:
            rel = buf.window(vpos, length)
            meta[keyword] = _text(buf.data[rel : rel + length], "latin_1")
        pos = vpos + length
    return meta, pos


def scan_header(fp: IO[bytes], size: int) -> tuple[HeaderTags, int | None, int, int] | None:
    """Scan one file's header.

    Args:
        fp: the file, opened in binary mode at offset 0.
        size: the file's size in bytes.

    Returns:
        ``(tags, pixel_offset, pixel_length, end)``: the needed tags; the file offset
        and length of native (uncompressed, little-endian, defined-length) pixel data,
        or ``None`` and 0; and the offset where the scan stopped (the pixel data
        element, or the end of the file when there is none). ``None`` when the file
        needs pydicom (see module docs).
    """
    try:
        return _scan(fp, size)
    except (_Unusual, struct.error, ValueError, UnicodeDecodeError, OverflowError):
        return None


def _scan(fp: IO[bytes], size: int) -> tuple[HeaderTags, int | None, int, int]:
    buf = _Buffer(fp, size)
    meta, pos = _parse_meta(buf)
    ts = meta.get("TransferSyntaxUID", "")
    if ts == _IMPLICIT_LE:
        explicit = False
    elif ts == _EXPLICIT_LE or ts.startswith(_ENCAPSULATED):
        explicit = True
    else:
        raise _Unusual("transfer syntax")
    if not explicit and pos + 8 <= size:  # pydicom's check: a VR where a length should be
        rel = buf.window(pos, 8)
        if buf.data[rel + 4 : rel + 6] in _ALL_VRS:
            raise _Unusual("explicit VR in an implicit VR dataset")
    raw, pixel_offset, pixel_length, pos = _walk(buf, pos, explicit)
    if pixel_offset is not None and ts not in (_IMPLICIT_LE, _EXPLICIT_LE):
        pixel_offset, pixel_length = None, 0
    needed = NEEDED
    charset = raw.get(0x00080005)
    encoding = _CHARSETS.get(charset.decode("latin_1").strip(" \0") if charset else "")
    if encoding is None:
        raise _Unusual("character set")
    tags = HeaderTags()
    for tag, value in raw.items():
        keyword, want_vr = needed[tag]
        tags[keyword] = _convert(value, want_vr, encoding)
    frames = tags.get("NumberOfFrames")
    if isinstance(frames, int) and frames > 1:
        raise _Unusual("multi-frame")
    tags.file_meta = meta
    return tags, pixel_offset, pixel_length, pos


def _walk(buf: _Buffer, pos: int, explicit: bool) -> tuple[dict[int, bytes], int | None, int, int]:
    """The top-level elements from ``pos``: the raw needed values, the pixel data's
    position and length (``None`` when absent or encapsulated) and where the walk stopped.

    The hot loop of the scanner: element headers are unpacked straight from the buffer
    and only the rare cases (a refill, a sequence of undefined length) call out.
    """
    raw: dict[int, bytes] = {}
    needed, size = NEEDED, buf.size
    short_vrs = _SHORT_VRS
    data, base = buf.data, buf.base
    while pos < size:
        rel = pos - base
        if rel + 12 > len(data):
            if pos + 8 > size:
                raise _Unusual("trailing bytes")
            rel = buf.window(pos, min(12, size - pos))
            data, base = buf.data, buf.base
        if explicit:
            group, elem, vr, length = _u_hh2shh(data, rel)
            if vr in short_vrs:
                vpos = pos + 8
            elif vr in _LONG_VRS and rel + 12 <= len(data):
                length = _u_i(data, rel + 8)[0]
                vpos = pos + 12
            else:
                raise _Unusual("unknown VR or truncated element")
        else:
            group, elem, length = _u_hhi(data, rel)
            vr, vpos = b"", pos + 8
        tag = group << 16 | elem
        if tag >= 0x3004000C or group == 0x0002:
            if tag == _PIXEL_DATA:
                if length == _UNDEFINED:
                    return raw, None, 0, pos
                if explicit and vr not in (b"OB", b"OW"):
                    raise _Unusual("pixel data VR")
                return raw, vpos, length, pos
            if tag in _NEEDS_PYDICOM or group in (0x0002, 0xFFFE):
                raise _Unusual("needs the full dataset")
        if length == _UNDEFINED:
            if explicit and vr != b"SQ":
                raise _Unusual("undefined length outside a sequence")
            pos = _skip_sequence(buf, vpos, explicit, 1)
            data, base = buf.data, buf.base
            continue
        want = needed.get(tag)
        if want is not None:
            if explicit and vr.decode("latin_1") != want[1]:
                raise _Unusual("unexpected VR")
            if length > MAX_VALUE:
                raise _Unusual("value too long")
            rel = vpos - base
            if rel + length > len(data):
                rel = buf.window(vpos, length)
                data, base = buf.data, buf.base
            raw[tag] = data[rel : rel + length]
        pos = vpos + length
    return raw, None, 0, pos
