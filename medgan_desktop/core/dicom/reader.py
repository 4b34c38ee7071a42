"""Reading DICOM headers safely, one file at a time.

Everything here reads *headers only* and turns every failure into a
:class:`DicomReadError` with a short human-readable reason, so callers (the index,
the series loader) can record the problem and carry on. :func:`read_header_located`
first tries the fast scanner of :mod:`.scan` (about ten times faster than pydicom on
common files; it reads only the needed tags) and hands anything unusual to pydicom
(``stop_before_pixels``, reads bounded by the file size with :func:`open_bounded`),
so both paths give the same :class:`HeaderInfo` for the same file.

Files whose headers were stripped of their identifiers still get stable keys:
a missing SOPInstanceUID falls back to the file meta's MediaStorageSOPInstanceUID
and then to a ``2.25`` UID derived from the file path; a missing
SeriesInstanceUID / StudyInstanceUID becomes a ``2.25`` UID derived from the
folder, Frame of Reference, series number, description and modality. The same
inputs always give the same keys, so re-importing dedupes and the series loader
splits files exactly as the index grouped them.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medgan_desktop.core.dicom.scan import HeaderTags, scan_header

#: The header of one file: a pydicom dataset, or the needed tags from the fast scanner.
Tags = Dataset | HeaderTags

#: Read common headers with the fast scanner (:mod:`.scan`); pydicom for the rest.
#: Tests and the benchmark switch it off to compare with the pure pydicom path.
FAST_SCAN = True

#: File name suffixes that are never DICOM: skipped silently during a walk.
NON_DICOM_SUFFIXES = frozenset(
    {
        ".txt", ".md", ".json", ".xml", ".html", ".htm", ".pdf", ".csv", ".log", ".ini",
        ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".nii", ".gz", ".mha",
        ".mhd", ".nrrd", ".raw", ".zip", ".exe", ".dll", ".inf", ".sqlite", ".db",
        ".py", ".pyc", ".sh", ".bat", ".js", ".css", ".tfm", ".ds_store", ".lnk", ".url",
    }
)
NON_DICOM_NAMES = frozenset({"license", "readme", "provenance", "autorun", "thumbs.db", "index",
                             "sample_study_complete"})

#: The largest number of pixels (rows x columns x frames x samples) one file may hold
#: before its pixel data is decoded: protects against decompression bombs.
MAX_PIXELS_PER_FILE = 1 << 29


_SMALL_READ = 1 << 16

#: SOP classes whose instances are images: such a file without pixel data is truncated.
IMAGE_STORAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.1",  # CR, DX, MG, IO
    "1.2.840.10008.5.1.4.1.1.2",  # CT, enhanced CT
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.4",  # MR, enhanced MR
    "1.2.840.10008.5.1.4.1.1.6",  # US
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture
    "1.2.840.10008.5.1.4.1.1.12",  # XA, RF
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # enhanced PET
)


def ends_before_pixels(tags: Tags) -> bool:
    """Whether a header that reached the end of its file without pixel data is a cut image.

    True when it describes an image (rows/columns, or an image storage SOP class) or when
    it lacks its study or series UID (a file cut inside its header): indexing it would
    invent a study for a fragment. Non-image objects (reports, plans) have no pixels.
    """
    if "Rows" in tags or "Columns" in tags:
        return True
    if not _text(tags, "StudyInstanceUID") or not _text(tags, "SeriesInstanceUID"):
        return True
    sop_class = _text(tags, "SOPClassUID")
    return any(sop_class == p or sop_class.startswith(p + ".") for p in IMAGE_STORAGE_PREFIXES)


class _BoundedReader(io.BufferedReader):
    """A binary file whose ``read(n)`` never asks for more than the bytes left.

    pydicom trusts length fields; a corrupt length (e.g. 0xFFFFFFF0) would make a
    plain file's ``read(n)`` allocate gigabytes before finding the file is short.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._size = os.fstat(self.fileno()).st_size

    def read(self, n: int | None = -1, /) -> bytes:
        # Only large requests can over-allocate: small ones skip the (slow) tell().
        if n is not None and n > _SMALL_READ:
            n = max(0, min(n, self._size - self.tell()))
        return super().read(n)


def open_bounded(path: Path) -> io.BufferedReader:
    """Open a DICOM file for pydicom with reads bounded by the file's size."""
    return _BoundedReader(path)


class DicomReadError(Exception):
    """One file could not be read; ``str(exc)`` is the reason shown to the user."""


@dataclass(frozen=True)
class HeaderInfo:
    """The identifiers and geometry of one DICOM instance, read from its header.

    Args:
        path: the file.
        sop_instance_uid: the instance's UID (or a derived stand-in, see module docs).
        series_instance_uid: the series key (or a derived stand-in).
        study_instance_uid: the study key (or a derived stand-in).
        uids_derived: True when any of the three UIDs above was missing and derived.
    """

    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    uids_derived: bool
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_date: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    frame_of_reference_uid: str
    image_position: tuple[float, float, float] | None
    image_orientation: tuple[float, ...] | None
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    has_pixels: bool
    body_part: str = ""
    protocol_name: str = ""
    sequence: str = ""
    echo_time: float | None = None
    repetition_time: float | None = None
    inversion_time: float | None = None
    image_type: tuple[str, ...] = ()
    synthetic: bool = False


def _text(ds: Tags, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    return str(value).strip()


def _number(ds: Tags, keyword: str) -> float | None:
    value: Any = ds.get(keyword)
    if not isinstance(value, str | bytes) and hasattr(value, "__len__"):
        value = value[0] if len(value) else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _values(ds: Tags, keyword: str) -> tuple[str, ...]:
    """A multi-valued text attribute as a tuple (the scanner gives ``A\\B``, pydicom a list)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.split("\\")
    else:
        try:
            parts = [str(v) for v in value]
        except TypeError:
            parts = [str(value)]
    return tuple(p.strip().upper() for p in parts if p.strip())


#: Manufacturer written by this product on every image it generates.
SYNTHESIZER = "medgan_desktop"


def is_synthetic(ds: Tags) -> bool:
    """True when a header says its image is synthetic: ``SyntheticData=YES``, or the marks
    this product writes (its manufacturer, a SYNTHETIC series or derivation description)."""
    if _text(ds, "SyntheticData").upper() == "YES":
        return True
    if _text(ds, "Manufacturer") == SYNTHESIZER and "DERIVED" in _values(ds, "ImageType"):
        return True
    if _text(ds, "SeriesDescription").upper().startswith("SYNTHETIC"):
        return True
    return _text(ds, "DerivationDescription").upper().startswith("SYNTHETIC")


def _int(ds: Tags, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _floats(ds: Tags, keyword: str, n: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        seq = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(seq) != n:
        return None
    return tuple(seq)


def derived_uid(*parts: object) -> str:
    """A stable ``2.25.<int>`` UID derived from ``parts`` (for stripped headers)."""
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return "2.25." + str(int.from_bytes(digest[:15], "big"))


def looks_like_non_dicom(path: Path) -> bool:
    """True for files a walk should skip without trying to parse them."""
    name = path.name.lower()
    if name.startswith("."):
        return True
    dot = name.rfind(".")  # pathlib's suffix rule, without building Path objects
    if 0 < dot < len(name) - 1:
        if name[dot:] in NON_DICOM_SUFFIXES:
            return True
        name = name[:dot]
    return name in NON_DICOM_NAMES


def is_dicomdir(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


@dataclass(frozen=True)
class PixelLocation:
    """Where native (uncompressed, little-endian) pixel data sits in a file."""

    offset: int
    length: int


_NATIVE_LE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _pixel_location(fp: Any, ds: Dataset) -> PixelLocation | None:
    """After a ``stop_before_pixels`` read, the native pixel data's value position."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    encoding = getattr(ds, "original_encoding", (None, None))
    if ts and ts not in _NATIVE_LE:
        return None
    if encoding[1] is False:
        return None
    pos = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00":
        return None
    implicit = encoding[0] if encoding[0] is not None else ts == "1.2.840.10008.1.2"
    if implicit:
        length, start = int.from_bytes(head[4:8], "little"), pos + 8
    else:
        if len(head) < 12 or head[4:6] not in (b"OB", b"OW"):
            return None
        length, start = int.from_bytes(head[8:12], "little"), pos + 12
    if length == 0xFFFFFFFF:
        return None
    return PixelLocation(start, length)


def dcmread_header_located(path: Path) -> tuple[Dataset, PixelLocation | None]:
    """Read a header (no pixels) and locate native pixel data.

    Raises:
        DicomReadError: with a short reason when the file cannot be read.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DicomReadError(f"cannot access file: {exc.strerror or exc}") from exc
    if size < 8:
        raise DicomReadError("empty or truncated file (fewer than 8 bytes)")
    try:
        with open_bounded(path) as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=4096)
            except InvalidDicomError:
                # No preamble/"DICM": older raw datasets are still DICOM, try without it.
                fp.seek(0)
                try:
                    ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=4096,
                                         force=True)
                except Exception as exc:  # noqa: BLE001 - every parse failure is a reason
                    raise DicomReadError(
                        f"not a DICOM file ({type(exc).__name__}: {exc})"
                    ) from exc
                # iterating a Dataset gives its elements; keys() gives their tags
                groups = [int(tag) >> 16 for tag in ds.keys()]  # noqa: SIM118
                if not groups or not all(0x0008 <= g <= 0x7FE0 for g in groups[:3]):
                    raise DicomReadError(
                        "not a DICOM file (no DICM prefix and no readable dataset)"
                    ) from None
            pos = fp.tell()
            if pos >= size and "PixelData" not in ds and ends_before_pixels(ds):
                raise DicomReadError("truncated file: it ends before its pixel data")
            try:
                loc = _pixel_location(fp, ds)
            except Exception:  # noqa: BLE001 - fall back to pydicom's decoder
                loc = None
            if loc is not None and loc.offset + loc.length > size:
                raise DicomReadError(
                    f"truncated pixel data ({size - loc.offset} of {loc.length} bytes)"
                )
    except DicomReadError:
        raise
    except MemoryError as exc:
        raise DicomReadError("header too large to read") from exc
    except Exception as exc:  # noqa: BLE001 - truncated, bad VR, bad lengths ...
        raise DicomReadError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    return ds, loc


def dcmread_header(path: Path) -> Dataset:
    """Read a header (no pixels); raise :class:`DicomReadError` with a reason on failure."""
    return dcmread_header_located(path)[0]


def header_from_dataset(ds: Tags, path: Path) -> HeaderInfo:
    """Extract a :class:`HeaderInfo` (raises :class:`DicomReadError` on garbage)."""
    try:
        return _header_from_dataset(ds, path)
    except DicomReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad values surface lazily in pydicom
        raise DicomReadError(f"invalid header value ({type(exc).__name__}: {exc})") from exc


def _header_from_dataset(ds: Tags, path: Path) -> HeaderInfo:
    meta = getattr(ds, "file_meta", None)
    ts = ""
    media_sop = ""
    if meta is not None:
        ts = str(meta.get("TransferSyntaxUID", "") or "")
        media_sop = str(meta.get("MediaStorageSOPInstanceUID", "") or "").strip()
    sop_class = _text(ds, "SOPClassUID")
    if not sop_class and meta is not None:
        sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "").strip()
    if sop_class == "1.2.840.10008.1.3.10":
        raise DicomReadError("DICOMDIR (a media directory, read for its references)")
    modality = _text(ds, "Modality").upper()
    series_uid = _text(ds, "SeriesInstanceUID")
    rows = _int(ds, "Rows") or 0
    cols = _int(ds, "Columns") or 0
    if not (series_uid or modality):
        raise DicomReadError("no image or series header (truncated or empty dataset)")
    derived = False
    sop_uid = _text(ds, "SOPInstanceUID") or media_sop
    if not sop_uid:
        sop_uid = derived_uid("sop", os.path.abspath(path))
        derived = True
    frame_of_ref = _text(ds, "FrameOfReferenceUID")
    study_uid = _text(ds, "StudyInstanceUID")
    if not study_uid:
        study_uid = derived_uid("study", path.parent, _text(ds, "StudyDate"),
                                _text(ds, "StudyID"), _text(ds, "PatientID"))
        derived = True
    number = _int(ds, "SeriesNumber")
    if not series_uid:
        series_uid = derived_uid("series", path.parent, frame_of_ref, number,
                                 _text(ds, "SeriesDescription"), modality, rows, cols)
        derived = True
    frames = _int(ds, "NumberOfFrames") or 1
    spp = _int(ds, "SamplesPerPixel") or 1
    if rows < 0 or cols < 0 or frames < 0:
        raise DicomReadError("negative image dimensions")
    position = _floats(ds, "ImagePositionPatient", 3)
    orientation = _floats(ds, "ImageOrientationPatient", 6)
    has_pixels = rows > 0 and cols > 0
    return HeaderInfo(
        path=path,
        sop_instance_uid=sop_uid,
        series_instance_uid=series_uid,
        study_instance_uid=study_uid,
        uids_derived=derived,
        sop_class_uid=sop_class,
        transfer_syntax_uid=ts,
        modality=modality or "OT",
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
        series_date=_text(ds, "SeriesDate") or _text(ds, "StudyDate"),
        series_description=_text(ds, "SeriesDescription"),
        series_number=number,
        instance_number=_int(ds, "InstanceNumber"),
        frame_of_reference_uid=frame_of_ref,
        image_position=position,  # type: ignore[arg-type]
        image_orientation=orientation,
        rows=rows,
        columns=cols,
        frames=frames,
        samples_per_pixel=spp,
        has_pixels=has_pixels,
        body_part=_text(ds, "BodyPartExamined").upper(),
        protocol_name=_text(ds, "ProtocolName"),
        sequence=" ".join(x for x in (" ".join(_values(ds, "ScanningSequence")),
                                      _text(ds, "SequenceName")) if x),
        echo_time=_number(ds, "EchoTime"),
        repetition_time=_number(ds, "RepetitionTime"),
        inversion_time=_number(ds, "InversionTime"),
        image_type=_values(ds, "ImageType"),
        synthetic=is_synthetic(ds),
    )


def read_header_located(path: Path) -> tuple[HeaderInfo, Tags, PixelLocation | None]:
    """Read one file's header, its tags and where its native pixel data lies.

    The fast scanner (:func:`~medgan_desktop.core.dicom.scan.scan_header`) reads the
    common case; whatever it does not handle goes through pydicom
    (:func:`dcmread_header_located`), which also gives the reason for a bad file.

    Raises:
        DicomReadError: with a short reason when the file cannot be read.
    """
    if FAST_SCAN:
        try:
            size = Path(path).stat().st_size
            with Path(path).open("rb", buffering=0) as fp:
                scanned = scan_header(fp, size) if size >= 132 else None
        except OSError as exc:
            raise DicomReadError(f"cannot access file: {exc.strerror or exc}") from exc
        if scanned is not None:
            tags, offset, length, end = scanned
            if offset is None and end >= size and ends_before_pixels(tags):
                raise DicomReadError("truncated file: it ends before its pixel data")
            loc = None if offset is None else PixelLocation(offset, length)
            if loc is not None and loc.offset + loc.length > size:
                raise DicomReadError(
                    f"truncated pixel data ({size - loc.offset} of {loc.length} bytes)"
                )
            return header_from_dataset(tags, path), tags, loc
    ds, loc = dcmread_header_located(path)
    return header_from_dataset(ds, path), ds, loc


def read_header(path: Path) -> HeaderInfo:
    """Read one file's header into a :class:`HeaderInfo` or raise :class:`DicomReadError`."""
    return read_header_located(path)[0]


def check_pixel_budget(rows: int, columns: int, frames: int, samples: int = 1) -> None:
    """Refuse images whose decoded size would exceed :data:`MAX_PIXELS_PER_FILE`."""
    n = int(rows) * int(columns) * max(1, int(frames)) * max(1, int(samples))
    if n > MAX_PIXELS_PER_FILE:
        raise DicomReadError(
            f"image too large ({rows}x{columns}x{frames}x{samples} pixels): refused before "
            "decoding (possible decompression bomb)"
        )


def dicomdir_files(path: Path) -> list[Path]:
    """Files referenced by a DICOMDIR (those that exist); raises DicomReadError."""
    try:
        ds: Any = pydicom.dcmread(path, force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:  # noqa: BLE001
        raise DicomReadError(f"unreadable DICOMDIR ({type(exc).__name__}: {exc})") from exc
    root = path.parent
    out: list[Path] = []
    for rec in records:
        ids = rec.get("ReferencedFileID")
        if not ids:
            continue
        parts = [str(p) for p in ids] if not isinstance(ids, str) else [ids]
        candidate = root.joinpath(*parts)
        if candidate.is_file():
            out.append(candidate)
    return out


def walk_files(paths: list[Path]) -> Iterator[Path]:
    """Every regular file under ``paths`` (recursively), in a stable order.

    In each folder its files come first (sorted by name), then its sub-folders (sorted).
    Symbolic links to folders are not followed (no cycles); unreadable folders are
    passed over.
    """
    for root in paths:
        if root.is_file():
            yield root
            continue
        yield from _walk_dir(str(root))


def _walk_dir(top: str) -> Iterator[Path]:
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except OSError:
        return
    files: list[str] = []
    dirs: list[str] = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                dirs.append(e.path)
            elif e.is_file():  # follows links to files, as Path.is_file does
                files.append(e.name)
        except OSError:
            continue
    for name in sorted(files):
        yield Path(top, name)
    for sub in sorted(dirs):  # all in ``top``: sorted as their names
        yield from _walk_dir(sub)


_T = TypeVar("_T")
_R = TypeVar("_R")

#: Threads that read files ahead of the (GIL-bound) header parsing. File reads release
#: the GIL, so on a cold disk (CD, USB stick, network share) the next headers are read
#: while the current ones are parsed: measured 2.3x faster on evicted page cache with 4
#: threads, within a few per cent of a plain loop on a warm cache.
READ_AHEAD_THREADS = 4


def read_ahead(
    fn: Callable[[_T], _R],
    items: Sequence[_T],
    threads: int | None = None,
    window: int = 64,
) -> Generator[_R, None, None]:
    """``map(fn, items)`` in order, with ``fn`` running in ``threads`` threads at most
    ``window`` items ahead of the consumer (``threads`` defaults to
    :data:`READ_AHEAD_THREADS`; 1 runs a plain loop).

    Exceptions from ``fn`` are raised when their result is reached. Close the iterator
    (``contextlib.closing``) to stop early: work not yet started is cancelled and the
    threads are joined.
    """
    threads = READ_AHEAD_THREADS if threads is None else threads
    if threads <= 1 or len(items) < 3:
        for x in items:
            yield fn(x)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dicom-read")
    pending: deque[Future[_R]] = deque()
    it = iter(items)
    try:
        for x in it:
            pending.append(pool.submit(fn, x))
            if len(pending) >= window:
                break
        while pending:
            fut = pending.popleft()
            for x in it:
                pending.append(pool.submit(fn, x))
                break
            yield fut.result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
