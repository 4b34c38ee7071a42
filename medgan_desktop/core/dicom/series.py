"""DICOM series -> :class:`~medgan_desktop.core.volume.Volume`.

What :func:`load_series` does, in order:

1. Reads every header once (no pixels; the fast scanner of :mod:`.scan` for the
   common little-endian files, pydicom otherwise), noting where native pixel data
   lies, and splits the files by SeriesInstanceUID (a folder is never trusted to hold
   one series). Unreadable files are left out with a warning.
2. Expands enhanced multi-frame objects into one "slice" per frame (per-frame
   position, orientation, pixel spacing and rescale from the functional groups).
3. Geometry. Slices are sorted by their position along the slice normal
   ``row x column``. Then, each with a warning in ``Volume.warnings``:

   * **mixed orientations**: the largest group of slices sharing one orientation is
     kept (``"resample"``), or the load is refused (``"refuse"``);
   * **duplicate positions** (several echoes/phases at one place): the first
     instance (lowest InstanceNumber) at each position is kept;
   * **missing slices / irregular spacing**: the stack is linearly interpolated
     along the normal onto a regular grid with the median spacing (``"resample"``),
     or refused;
   * **gantry tilt** (slice positions not moving along the normal): each slice is
     shifted in-plane (linear interpolation) onto an orthogonal grid (``"resample"``),
     or refused. A tilted stack is never returned with a wrong, orthogonal geometry.

4. Pixels are decoded in a small thread pool after checking the decoded size
   (:data:`~medgan_desktop.core.dicom.reader.MAX_PIXELS_PER_FILE`, decompression
   bombs): native pixels are read with ``numpy.fromfile`` at the offset found in
   step 1, compressed ones decoded by pydicom + pylibjpeg plugins (JPEG, JPEG-LS,
   JPEG 2000, RLE); RescaleSlope/Intercept is applied per slice straight into the
   float32 output (HU for CT); MONOCHROME1 is inverted so that higher values are
   brighter; colour images are averaged to grey.

2D images (CR/DX/single slices) load as one-slice volumes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.multival import MultiValue

from medgan_desktop.core.dicom.reader import (
    DicomReadError,
    HeaderInfo,
    PixelLocation,
    Tags,
    check_pixel_budget,
    open_bounded,
    read_ahead,
    read_header_located,
)
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import JsonObject, PixelArray
from medgan_desktop.core.volume import SourceInfo, Volume

if TYPE_CHECKING:
    from medgan_desktop.core.dicom.index import StudyIndex

#: Largest total number of voxels one series may decode to (about 6 GB as float32).
MAX_SERIES_VOXELS = 1_500_000_000

_ANGLE_TOL_DEG = 0.5  # orientation vectors equal below this angle
_SPACING_REL_TOL = 0.02  # slice gaps equal within 2 % ...
_SPACING_ABS_TOL = 0.01  # ... or 0.01 mm


class Irregular(StrEnum):
    """What to do with irregular geometry (missing slices, gantry tilt, mixed orientations)."""

    RESAMPLE = "resample"
    REFUSE = "refuse"


class GeometryError(ValueError):
    """The series geometry is irregular and the caller asked to refuse it."""


class MultipleSeriesError(ValueError):
    """The files hold several series and no ``series_uid`` chose one."""


@dataclass
class _Slice:
    """One 2D image: a file and, for multi-frame files, a frame index."""

    header: HeaderInfo
    frame: int | None
    position: NDArray[np.float64] | None
    orientation: NDArray[np.float64] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    thickness: float | None
    native: _Native | None = None


@dataclass(frozen=True)
class _Native:
    """How to read uncompressed pixels straight from the file (no pydicom decode)."""

    offset: int
    dtype: str
    bits_stored: int
    signed: bool


def _native_of(ds: Tags, h: HeaderInfo, loc: PixelLocation | None) -> _Native | None:
    if loc is None or h.samples_per_pixel != 1:
        return None
    try:
        alloc = int(ds.get("BitsAllocated", 0) or 0)
        stored = int(ds.get("BitsStored", alloc) or alloc)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    except (TypeError, ValueError):
        return None
    if alloc not in (8, 16, 32) or not 0 < stored <= alloc:
        return None
    if loc.length < h.rows * h.columns * h.frames * alloc // 8:
        return None  # truncated: let pydicom report it
    dtype = ("<i" if signed else "<u") + str(alloc // 8)
    return _Native(loc.offset, dtype, stored, signed)


_Header = tuple[HeaderInfo, Tags, PixelLocation | None]


def _read_one(p: Path) -> _Header | str:
    try:
        return read_header_located(p)
    except DicomReadError as exc:
        return f"{p}: {exc}"


def _read_headers(
    files: Sequence[Path], cancel: CancelToken | None
) -> tuple[list[_Header], list[str]]:
    # Parsing is GIL-bound; the read-ahead threads overlap the file reads (cold disks).
    out: list[_Header] = []
    bad: list[str] = []
    with closing(read_ahead(_read_one, [Path(p) for p in files])) as results:
        for r in results:
            if cancel is not None:
                cancel.check()
            if isinstance(r, str):
                bad.append(r)
            else:
                out.append(r)
    return out, bad


def _n_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def split_series(files: Sequence[Path]) -> dict[str, list[Path]]:
    """Group files by SeriesInstanceUID (derived keys for stripped headers).

    Unreadable files are left out. Insertion order follows the first file of each series.
    """
    groups: dict[str, list[Path]] = {}
    headers, _ = _read_headers([Path(f) for f in files], None)
    for h, _ds, _loc in headers:
        groups.setdefault(h.series_instance_uid, []).append(h.path)
    return groups


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    if seq:
        return seq[0]
    return None


def _frame_attr(shared: Any, per_frame: Any, group: str, attr: str) -> Any:
    for src in (per_frame, shared):
        item = _seq_item(src, group)
        if item is not None and attr in item:
            return item.get(attr)
    return None


def _to_floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _spacing_from(ds: Tags) -> tuple[float, float] | None:
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        sp = _to_floats(ds.get(kw), 2)
        if sp is not None and sp[0] > 0 and sp[1] > 0:
            return (sp[0], sp[1])
    return None


def _float(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


def _slices_of(h: HeaderInfo, ds: Tags, loc: PixelLocation | None) -> list[_Slice]:
    """One :class:`_Slice` per frame (enhanced multi-frame) or per file."""
    slope = _float(ds.get("RescaleSlope"), 1.0)
    intercept = _float(ds.get("RescaleIntercept"), 0.0)
    thickness = _float(ds.get("SliceThickness"), 0.0) or None
    spacing = _spacing_from(ds)
    pos = None if h.image_position is None else np.array(h.image_position, dtype=np.float64)
    ori = None if h.image_orientation is None else np.array(h.image_orientation, dtype=np.float64)
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frames = ds.get("PerFrameFunctionalGroupsSequence")
    if h.frames <= 1 and not per_frames:
        native = _native_of(ds, h, loc)
        return [_Slice(h, None, pos, ori, spacing, slope, intercept, thickness, native)]
    out: list[_Slice] = []
    offsets = _to_floats(ds.get("GridFrameOffsetVector"), h.frames)
    for f in range(h.frames):
        pf = per_frames[f] if per_frames is not None and f < len(per_frames) else None
        fpos = _to_floats(_frame_attr(shared, pf, "PlanePositionSequence",
                                      "ImagePositionPatient"), 3)
        fori = _to_floats(_frame_attr(shared, pf, "PlaneOrientationSequence",
                                      "ImageOrientationPatient"), 6)
        fsp = _to_floats(_frame_attr(shared, pf, "PixelMeasuresSequence", "PixelSpacing"), 2)
        fth = _frame_attr(shared, pf, "PixelMeasuresSequence", "SliceThickness")
        fslope = _frame_attr(shared, pf, "PixelValueTransformationSequence", "RescaleSlope")
        finter = _frame_attr(shared, pf, "PixelValueTransformationSequence", "RescaleIntercept")
        p = np.array(fpos, dtype=np.float64) if fpos is not None else pos
        o = np.array(fori, dtype=np.float64) if fori is not None else ori
        if fpos is None and p is not None and offsets is not None and o is not None:
            normal = np.cross(o[:3], o[3:])
            p = p + offsets[f] * normal  # RT Dose style frame offsets
        out.append(
            _Slice(
                h, f, p, o,
                (fsp[0], fsp[1]) if fsp is not None else spacing,
                _float(fslope, slope), _float(finter, intercept),
                _float(fth, 0.0) or thickness,
            )
        )
    return out


def _angle_deg(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 180.0
    c = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return float(np.degrees(np.arccos(c)))


def _same_orientation(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    return _angle_deg(a[:3], b[:3]) < _ANGLE_TOL_DEG and _angle_deg(a[3:], b[3:]) < _ANGLE_TOL_DEG


def _orthonormal(ori: NDArray[np.float64]) -> NDArray[np.float64]:
    """Columns: row direction, column direction, normal (re-orthogonalised)."""
    r = ori[:3] / (np.linalg.norm(ori[:3]) or 1.0)
    c = ori[3:] - np.dot(ori[3:], r) * r
    c = c / (np.linalg.norm(c) or 1.0)
    n = np.cross(r, c)
    return np.stack([r, c, n], axis=1)


@dataclass
class _Plan:
    slices: list[_Slice]
    direction: NDArray[np.float64]
    origin: NDArray[np.float64]
    spacing: tuple[float, float, float]
    positions_along_normal: NDArray[np.float64] | None  # None: regular grid
    inplane_shifts: NDArray[np.float64] | None  # (k, 2) shifts in pixels (rows, cols)
    warnings: list[str]
    geometry_known: bool = True
    thickness: float | None = None  # the acquired slice thickness, when the grid was resampled


def _plan_geometry(slices: list[_Slice], on_irregular: Irregular) -> _Plan:
    warnings: list[str] = []
    refuse = on_irregular == Irregular.REFUSE
    geo = [s for s in slices if s.position is not None and s.orientation is not None]
    first = slices[0]
    ps = first.pixel_spacing or (1.0, 1.0)
    if first.pixel_spacing is None:
        warnings.append("no pixel spacing in the header: 1 mm assumed")
    if geo and len(geo) < len(slices):
        # A few slices lack their position: leave them out rather than discard the
        # geometry of the whole series (which would invent an identity orientation).
        msg = (f"{len(slices) - len(geo)} of {len(slices)} slices have no "
               "ImagePositionPatient/ImageOrientationPatient")
        if refuse:
            raise GeometryError(msg)
        warnings.append(msg + "; left out (their place in the stack is unknown)")
    if not geo:
        # No patient geometry (secondary capture, some CR/DX): stack in instance order,
        # and say that the geometry is unknown (the volume is marked so).
        if len(slices) > 1:
            warnings.append(
                "no slice has ImagePositionPatient/ImageOrientationPatient: the patient "
                "geometry is unknown (stacked in instance-number order)"
            )
        ordered = sorted(
            slices,
            key=lambda s: (s.header.instance_number or 0, str(s.header.path), s.frame or 0),
        )
        sk = first.thickness or 1.0
        origin = first.position if first.position is not None else np.zeros(3)
        direction = _orthonormal(first.orientation) if first.orientation is not None else np.eye(3)
        return _Plan(ordered, direction, origin, (ps[1], ps[0], sk), None, None, warnings,
                     geometry_known=False)

    # Mixed orientations: keep the largest group.
    groups: list[list[_Slice]] = []
    for s in geo:
        for g in groups:
            assert g[0].orientation is not None and s.orientation is not None
            o = g[0].orientation
            if np.array_equal(o, s.orientation) or _same_orientation(o, s.orientation):
                g.append(s)
                break
        else:
            groups.append([s])
    if len(groups) > 1:
        groups.sort(key=len, reverse=True)
        msg = (f"mixed orientations: {len(groups)} orientation groups "
               f"({', '.join(str(len(g)) for g in groups)} slices)")
        if refuse:
            raise GeometryError(msg)
        warnings.append(msg + f"; kept the largest group of {len(groups[0])} slices")
    kept = groups[0]
    assert kept[0].orientation is not None
    direction = _orthonormal(kept[0].orientation)
    normal = direction[:, 2]

    def along(s: _Slice) -> float:
        assert s.position is not None
        return float(np.dot(s.position, normal))

    kept.sort(key=lambda s: (along(s), s.header.instance_number or 0, s.frame or 0))
    # Duplicate positions (multi-echo, multi-phase): keep the first per position.
    unique: list[_Slice] = []
    for s in kept:
        if unique and abs(along(s) - along(unique[-1])) < _SPACING_ABS_TOL:
            continue
        unique.append(s)
    if len(unique) < len(kept):
        msg = (f"{len(kept) - len(unique)} slices share a position with another slice "
               "(several echoes, phases or duplicates)")
        if refuse:
            raise GeometryError(msg)
        warnings.append(msg + "; kept the first instance at each position")
    kept = unique
    assert kept[0].position is not None
    origin = kept[0].position.copy()
    if len(kept) == 1:
        sk = first.thickness or 1.0
        return _Plan(kept, direction, origin, (ps[1], ps[0], sk), None, None, warnings)

    pos = np.stack([s.position for s in kept if s.position is not None])
    d_along = pos @ normal
    gaps = np.diff(d_along)
    step = float(np.median(gaps))
    # Gantry tilt: the in-plane drift of the slice positions.
    rel = pos - pos[0]
    inplane = np.stack([rel @ direction[:, 0], rel @ direction[:, 1]], axis=1)  # mm
    shifts: NDArray[np.float64] | None = None
    drift = float(np.abs(inplane[-1]).max())
    total_len = float(d_along[-1] - d_along[0])
    if drift > max(0.1 * min(ps), 1e-3 * total_len):
        tilt = float(np.degrees(np.arctan2(np.hypot(*inplane[-1]), total_len)))
        msg = f"gantry tilt or sheared stack: slice positions drift {tilt:.2f} deg off the normal"
        if refuse:
            raise GeometryError(msg)
        warnings.append(msg + "; slices shifted in-plane onto an orthogonal grid")
        # pixels: (rows shift = along column direction / row spacing, cols = along row / col sp)
        shifts = np.stack([inplane[:, 1] / ps[0], inplane[:, 0] / ps[1]], axis=1)
    tol = max(_SPACING_ABS_TOL, _SPACING_REL_TOL * abs(step))
    positions: NDArray[np.float64] | None = None
    thickness: float | None = None
    if np.any(np.abs(gaps - step) > tol):
        big = gaps > step + tol
        missing = int(np.sum(np.round(gaps[big] / step) - 1)) if np.any(big) else 0
        kind = f"about {missing} missing slices" if missing > 0 else "irregular slice spacing"
        msg = (f"{kind}: gaps between {gaps.min():.3f} and {gaps.max():.3f} mm "
               f"(typical {step:.3f} mm)")
        if refuse:
            raise GeometryError(msg)
        grid_step, n = _grid_following(d_along - d_along[0], step, float(gaps.max()))
        warnings.append(
            msg + f"; linearly resampled along the normal onto {n} slices every {grid_step:.3f} "
            f"mm from the first to the last of the {len(kept)} acquired slices"
        )
        positions = d_along - d_along[0]
        step = grid_step
        thickness = first.thickness
    return _Plan(kept, direction, origin, (ps[1], ps[0], step), positions, shifts, warnings,
                 thickness=thickness)


def _grid_following(positions: NDArray[np.float64], typical: float, largest_gap: float
                    ) -> tuple[float, int]:
    """A regular grid that follows irregular slices: ``(step, n)``.

    The step is the typical gap (never larger than the largest real gap), adjusted so that
    the grid starts at the first acquired slice and ends exactly at the last one: no
    acquired slice falls outside it, and the stack's extent is unchanged.
    """
    extent = float(positions[-1] - positions[0])
    step = min(max(typical, 1e-6), largest_gap)
    n = max(2, round(float(extent / step)) + 1)
    return extent / (n - 1), n


def _decode(s: _Slice, ds_cache: dict[Path, PixelArray]) -> PixelArray:
    """Decoded pixels of one slice (rows, cols) or (rows, cols, samples)."""
    h = s.header
    check_pixel_budget(h.rows, h.columns, h.frames, h.samples_per_pixel)
    if s.frame is None and s.native is not None:
        nat = s.native
        arr = np.fromfile(h.path, dtype=nat.dtype, count=h.rows * h.columns, offset=nat.offset)
        arr = arr.reshape(h.rows, h.columns)
        alloc = arr.dtype.itemsize * 8
        if nat.bits_stored < alloc:
            if nat.signed:  # sign-extend from bits_stored, in place
                sh = alloc - nat.bits_stored
                np.left_shift(arr, sh, out=arr)
                np.right_shift(arr, sh, out=arr)
            else:
                np.bitwise_and(arr, (1 << nat.bits_stored) - 1, out=arr)
        return arr
    if s.frame is None:
        with open_bounded(h.path) as fp:
            ds = pydicom.dcmread(fp, force=True)
            arr = ds.pixel_array
        return np.asarray(arr)
    cached = ds_cache.get(h.path)
    if cached is None:
        with open_bounded(h.path) as fp:
            ds = pydicom.dcmread(fp, force=True)
            cached = np.asarray(ds.pixel_array)
        ds_cache[h.path] = cached
    arr = cached
    if arr.ndim == 2 or (arr.ndim == 3 and h.samples_per_pixel > 1 and h.frames == 1):
        return arr
    return np.asarray(arr[s.frame])


def load_series(
    files: Sequence[Path],
    *,
    series_uid: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    on_irregular: str = "resample",
) -> Volume:
    """Load one DICOM series as a volume (see the module docs for every choice made).

    Args:
        files: the series' files (may include other series: they are split off).
        series_uid: which series to load when ``files`` holds several.
        progress: progress callback (one report per slice).
        cancel: cancel token checked between slices.
        on_irregular: ``"resample"`` (default) or ``"refuse"`` irregular geometry.

    Raises:
        MultipleSeriesError: several series and no ``series_uid``.
        GeometryError: irregular geometry with ``on_irregular="refuse"``.
        DicomReadError: no readable image in ``files`` or a file that cannot be decoded.
    """
    mode = Irregular(on_irregular)
    progress(Progress(0, 0, "reading headers"))
    headers, bad = _read_headers([Path(f) for f in files], cancel)
    warnings: list[str] = []
    if bad:
        warnings.append(f"{len(bad)} unreadable files left out: " + "; ".join(bad[:3]))
    by_series: dict[str, list[_Header]] = {}
    for hdr in headers:
        by_series.setdefault(hdr[0].series_instance_uid, []).append(hdr)
    if not by_series:
        if not files:
            raise DicomReadError("no files were given (the folder is empty)")
        raise DicomReadError(
            "no readable DICOM image among the files" + (": " + "; ".join(bad[:3]) if bad else "")
        )
    if series_uid is None:
        if len(by_series) > 1:
            raise MultipleSeriesError(
                f"the files hold {len(by_series)} series; choose one with series_uid"
            )
        series_uid = next(iter(by_series))
    members = by_series.get(series_uid)
    if not members:
        raise DicomReadError(f"series {series_uid} is not among the files")
    members = [m for m in members if m[0].has_pixels]
    if not members:
        raise DicomReadError(f"series {series_uid} has no image pixels (rows/columns missing)")
    slices: list[_Slice] = []
    for h, ds, loc in members:
        slices.extend(_slices_of(h, ds, loc))
    shapes = Counter((s.header.rows, s.header.columns) for s in slices)
    if len(shapes) > 1:
        (rc, _n), *_ = shapes.most_common(1)
        dropped = len(slices) - shapes[rc]
        warnings.append(f"{dropped} slices with a different matrix size left out")
        slices = [s for s in slices if (s.header.rows, s.header.columns) == rc]
    plan = _plan_geometry(slices, mode)
    warnings.extend(plan.warnings)
    first_h, first_ds, _ = members[0]
    if first_h.uids_derived:
        warnings.append("missing UIDs in the headers: series grouped by folder and "
                        "Frame of Reference; instance UIDs derived")

    nk = len(plan.slices)
    rows, cols = first_h.rows, first_h.columns
    if nk * rows * cols > MAX_SERIES_VOXELS:
        raise DicomReadError(f"series too large ({nk}x{rows}x{cols} voxels)")
    out = np.empty((nk, rows, cols), dtype=np.float32)
    photometric = str(first_ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    cache: dict[Path, PixelArray] = {}
    multi = any(s.frame is not None for s in plan.slices)
    colour = [False]

    def fill(k: int) -> None:
        s = plan.slices[k]
        arr = _decode(s, cache)
        if arr.ndim == 3:  # colour: average to grey
            colour[0] = True
            arr = arr.mean(axis=-1)
        np.multiply(arr, np.float32(s.slope), out=out[k], casting="unsafe")
        if s.intercept:
            out[k] += np.float32(s.intercept)

    try:
        if multi:  # frames share a decoded file array: decode sequentially
            for k in range(nk):
                if cancel is not None:
                    cancel.check()
                fill(k)
                progress(Progress(k + 1, nk, f"slice {k + 1}/{nk}"))
        else:
            with ThreadPoolExecutor(max_workers=_n_threads()) as pool:
                for done, _ in enumerate(pool.map(fill, range(nk)), start=1):
                    if cancel is not None:
                        cancel.check()
                    progress(Progress(done, nk, f"slice {done}/{nk}"))
    except (DicomReadError, Cancelled, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder failure becomes a clear reason
        raise DicomReadError(f"cannot decode pixels ({type(exc).__name__}: {exc})") from exc
    cache.clear()
    if colour[0]:
        warnings.append("colour images converted to grey (mean of channels)")
    if photometric == "MONOCHROME1":
        lo, hi = float(out.min()), float(out.max())
        np.subtract(lo + hi, out, out=out)
        warnings.append("MONOCHROME1 inverted so that higher values are brighter")

    if plan.inplane_shifts is not None:
        out = _unshear(out, plan.inplane_shifts)
    if plan.positions_along_normal is not None:
        out = _resample_along_k(out, plan.positions_along_normal, plan.spacing[2])

    modality = first_h.modality
    rescale_type = str(first_ds.get("RescaleType", "")).strip().upper()
    units = "HU" if modality == "CT" or rescale_type == "HU" else "scanner"
    sop_uids = tuple(s.header.sop_instance_uid for s in plan.slices)
    source = SourceInfo(
        patient_id=first_h.patient_id,
        patient_name=first_h.patient_name,
        study_instance_uid=first_h.study_instance_uid,
        series_instance_uid=first_h.series_instance_uid,
        frame_of_reference_uid=first_h.frame_of_reference_uid,
        sop_instance_uids=sop_uids,
        sop_class_uid=first_h.sop_class_uid,
        files=tuple(str(s.header.path) for s in plan.slices),
        study_description=first_h.study_description,
        series_number=first_h.series_number,
        series_description=first_h.series_description,
        body_part=first_h.body_part,
        protocol_name=first_h.protocol_name,
        sequence=first_h.sequence,
        echo_time=first_h.echo_time,
        repetition_time=first_h.repetition_time,
        inversion_time=first_h.inversion_time,
        image_type=first_h.image_type,
    )
    meta: JsonObject = {"photometric": photometric}
    if plan.thickness is not None:
        meta["acquired_slice_thickness"] = plan.thickness
    synthetic = any(s.header.synthetic for s in plan.slices)
    wc, ww = first_ds.get("WindowCenter"), first_ds.get("WindowWidth")
    if wc is not None and ww is not None:
        try:
            c = float(wc[0]) if isinstance(wc, MultiValue | list) else float(wc)
            w = float(ww[0]) if isinstance(ww, MultiValue | list) else float(ww)
            meta["window"] = (c, w)
        except (TypeError, ValueError):
            pass
    return Volume(
        array=out,
        spacing=plan.spacing,
        origin=(float(plan.origin[0]), float(plan.origin[1]), float(plan.origin[2])),
        direction=plan.direction,
        modality=modality,
        units=units,
        description=first_h.series_description or first_h.study_description or modality,
        source=source,
        warnings=tuple(warnings),
        meta=meta,
        synthetic=synthetic,
        geometry_known=plan.geometry_known,
    )


def _unshear(vol: NDArray[np.float32], shifts: NDArray[np.float64]) -> NDArray[np.float32]:
    from scipy.ndimage import shift as nd_shift

    fill = float(vol.min())
    out = np.empty_like(vol)
    for k in range(vol.shape[0]):
        out[k] = nd_shift(vol[k], shift=(shifts[k, 0], shifts[k, 1]), order=1,
                          mode="constant", cval=fill)
    return out


def _resample_along_k(
    vol: NDArray[np.float32], positions: NDArray[np.float64], step: float
) -> NDArray[np.float32]:
    """Linear interpolation from slices at ``positions`` (mm, ascending) to a regular grid."""
    n = round(float(positions[-1] / step)) + 1
    targets = np.minimum(np.arange(n) * step, positions[-1])
    idx = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, len(positions) - 2)
    t0, t1 = positions[idx], positions[idx + 1]
    w = ((targets - t0) / np.where(t1 > t0, t1 - t0, 1.0)).astype(np.float32)
    out = np.empty((n, *vol.shape[1:]), dtype=np.float32)
    for k in range(n):
        out[k] = vol[idx[k]] * (1 - w[k]) + vol[idx[k] + 1] * w[k]
    return out


def load_series_from_index(
    index: StudyIndex,
    uid: str,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    on_irregular: str = "resample",
) -> Volume:
    """Load an indexed series by its UID (see :func:`load_series`)."""
    files = index.series_files(uid)
    if not files:
        raise DicomReadError(f"series {uid} is not in the index")
    return load_series(files, series_uid=uid, progress=progress, cancel=cancel,
                       on_irregular=on_irregular)
