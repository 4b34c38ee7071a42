"""Reading a reader-study pool: files and DICOM series into items of pixels.

A pool's files are grouped into items (a 2D image, a volume file, or the files of one
DICOM series); each item is read into display pixels in its own units (HU for CT) and a
series into a stack in its acquisition plane, in radiological display order, so a file
format's axis convention cannot tell the reader where an item came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.imaging.orientation import ViewAxis, axis_permutation, slice_mapping
from medgan_desktop.core.metrics.images import RASTER_SUFFIXES, load_image
from medgan_desktop.core.types import JsonObject, PixelArray
from medgan_desktop.core.volume import Volume

#: Largest stored item (SQLite refuses blobs above about 1 GB).
MAX_ITEM_BYTES = 900_000_000
VOLUME_NAME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")


class ReviewError(Exception):
    """A user-facing reader-study error (unknown session, invalid answer, bad file)."""


def read_review_image(path: Path) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """Pixels for display in their own units (HU for CT DICOM) and a default window."""
    suf = path.suffix.lower()
    if suf in (".dcm", ".dicom", ""):
        try:
            import pydicom

            ds = pydicom.dcmread(str(path))
            arr = np.asarray(ds.pixel_array, dtype=np.float32)
            if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) > 1:
                arr = arr[..., :3].mean(axis=-1)
            elif arr.ndim == 3:
                arr = arr[arr.shape[0] // 2]
            arr = arr * float(getattr(ds, "RescaleSlope", 1) or 1) + float(
                getattr(ds, "RescaleIntercept", 0) or 0)
            if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
                arr = arr.max() + arr.min() - arr
            lo, hi = np.percentile(arr, [0.5, 99.5])
            return arr.astype(np.float32), (float(lo), float(max(hi, lo + 1)))
        except Exception as exc:  # undecodable DICOM: a clear reason
            raise ReviewError(f"cannot read {path.name}: {exc}") from exc
    name = path.name.lower()
    if name.endswith(VOLUME_NAME_SUFFIXES):
        try:  # keep the volume's own units (HU for CT) so window/level means something
            import SimpleITK as sitk

            arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)
        except Exception as exc:  # unreadable volume: a clear reason
            raise ReviewError(f"cannot read {path.name}: {exc}") from exc
        if arr.ndim == 4:
            arr = arr.mean(axis=-1)
        if arr.ndim == 3:
            arr = arr[arr.shape[0] // 2]
        lo, hi = np.percentile(arr, [0.5, 99.5])
        return arr, (float(lo), float(max(hi, lo + 1)))
    try:
        img = load_image(path) * 255.0
    except ValueError as exc:
        raise ReviewError(str(exc)) from exc
    return img.astype(np.float32), (0.0, 255.0)


def window_of(arr: PixelArray) -> tuple[float, float]:
    """The 0.5..99.5 percentile window (on a subsample of large stacks)."""
    flat = arr.reshape(-1)
    flat = flat[:: max(1, flat.size // 2_000_000)]
    lo, hi = (float(v) for v in np.percentile(flat, [0.5, 99.5]))
    return lo, max(hi, lo + 1.0)


def _looks_hu(arr: PixelArray) -> bool:
    """CT in Hounsfield units, for files that do not say so: air (about -1000) or the
    scanner's padding outside the field of view (-1024 to -3024) among the darkest voxels."""
    flat = arr.reshape(-1)
    flat = flat[:: max(1, flat.size // 2_000_000)]
    return bool(-3100.0 <= float(np.percentile(flat, 0.5)) <= -700.0)


def display_stack(volume: Volume) -> tuple[NDArray[np.float32], tuple[float, float, float], ViewAxis]:
    """A volume as slices in its acquisition plane, in radiological display order.

    The plane is the one the volume's k axis is normal to; slices are ordered towards
    patient left (sagittal), posterior (coronal) or superior (axial), whatever the
    file's own axis order and signs, so DICOM and NIfTI volumes come out alike.

    Returns:
        ``(stack, spacing, plane)``: ``stack`` is ``(slices, rows, cols)`` float32 (a
        copy), ``spacing`` is ``(column, row, slice)`` in mm.
    """
    perm, signs = axis_permutation(volume.direction)
    plane = {2: ViewAxis.AXIAL, 1: ViewAxis.CORONAL, 0: ViewAxis.SAGITTAL}[perm[2]]
    m = slice_mapping(volume.shape, volume.spacing, volume.direction, plane)
    arr = np.transpose(volume.array, (m.slice_axis, m.row_axis, m.col_axis))
    if m.flip_rows:
        arr = arr[:, ::-1, :]
    if m.flip_cols:
        arr = arr[:, :, ::-1]
    if signs[2] < 0:  # k runs towards R, A or I: reverse so the index runs to L, P, S
        arr = arr[::-1]
    stack = np.ascontiguousarray(arr, dtype=np.float32)
    return stack, (m.col_spacing, m.row_spacing, m.slice_spacing), plane


@dataclass(frozen=True)
class Source:
    """One item to be: a 2D image file, a volume file or the files of one DICOM series."""

    kind: str  # "image" | "volume" | "dicom_series"
    files: tuple[Path, ...]
    series_uid: str = ""

    @property
    def label(self) -> str:
        """What the organiser sees in ``source`` (never the reader)."""
        if len(self.files) == 1:
            return str(self.files[0])
        parents = {f.parent for f in self.files}
        where = str(parents.pop()) if len(parents) == 1 else str(self.files[0])
        return f"{where} (series, {len(self.files)} files)"


def pool_sources(files: Sequence[Path], series: bool) -> list[Source]:
    """Group a pool's files into items (see the module docs)."""
    if not series:
        return [Source("image", (f,)) for f in files]
    from medgan_desktop.core.dicom.reader import DicomReadError, HeaderInfo, read_header

    out: list[Source] = []
    groups: dict[str, list[tuple[Path, HeaderInfo]]] = {}
    for f in files:
        name = f.name.lower()
        if name.endswith(VOLUME_NAME_SUFFIXES):
            out.append(Source("volume", (f,)))
            continue
        if f.suffix.lower() in RASTER_SUFFIXES:
            out.append(Source("image", (f,)))
            continue
        try:
            h = read_header(f)
        except (DicomReadError, OSError):
            out.append(Source("image", (f,)))  # read later, failing with a clear reason
            continue
        groups.setdefault(h.series_instance_uid, []).append((f, h))
    for uid, members in groups.items():
        stackable = all(h.image_position is not None for _f, h in members)
        if (len(members) > 1 and stackable) or (len(members) == 1 and members[0][1].frames > 1):
            out.append(Source("dicom_series", tuple(f for f, _h in members), uid))
        else:  # projection images (CR/DX) sharing a series, or single slices
            out.extend(Source("image", (f,)) for f, _h in members)
    return sorted(out, key=lambda s: s.label)


def read_source(src: Source) -> tuple[NDArray[np.float32], tuple[float, float], JsonObject]:
    """Pixels, default window and item meta of one source."""
    if src.kind == "image":
        img, win = read_review_image(src.files[0])
        hu = _image_is_hu(src.files[0], img)
        return img, win, {"kind": "image", "hu": hu}
    try:
        if src.kind == "volume":
            from medgan_desktop.core.io import read_volume_file

            vol = read_volume_file(src.files[0])
        else:
            from medgan_desktop.core.dicom.series import load_series

            vol = load_series(list(src.files), series_uid=src.series_uid or None)
    except Exception as exc:  # any reader failure: one clear reason for this item
        raise ReviewError(f"cannot read {src.files[0].name}: {exc}") from exc
    n_bytes = int(np.prod(vol.shape)) * 4
    if n_bytes > MAX_ITEM_BYTES:
        raise ReviewError(f"{src.label}: {vol.shape} is too large for a review item "
                          f"({n_bytes / 1e9:.1f} GB as float32); crop it first")
    stack, spacing, plane = display_stack(vol)
    hu = vol.modality.upper() == "CT" or vol.units.upper() == "HU" or _looks_hu(stack)
    del vol
    meta = {"kind": "series", "spacing": list(spacing), "plane": plane.value, "hu": hu}
    if stack.shape[0] == 1:  # a one-slice volume is a 2D image
        return stack[0], window_of(stack), {**meta, "kind": "image"}
    return stack, window_of(stack), meta


def _image_is_hu(path: Path, img: PixelArray) -> bool:
    suf = path.suffix.lower()
    if path.name.lower().endswith(VOLUME_NAME_SUFFIXES):
        from medgan_desktop.core.io import guess_modality

        return guess_modality(path.name) == "CT" or _looks_hu(img)
    if suf in RASTER_SUFFIXES:
        return False
    try:
        from medgan_desktop.core.dicom.reader import read_header

        return read_header(path).modality.upper() == "CT"
    except Exception:  # not readable as DICOM here: not HU
        return False
