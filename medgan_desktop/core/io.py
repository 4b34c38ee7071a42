"""Open anything a user points at as volumes: DICOM, NIfTI/MHA/NRRD, PNG/JPEG.

* DICOM files or folders: one volume per series (split by SeriesInstanceUID).
* ``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``: read with SimpleITK, which
  already converts NIfTI's RAS to ITK's LPS, so the volume is in LPS like DICOM.
  The modality is guessed from the file name (``ct``/``mr`` as a word) and only
  a CT guess sets ``units="HU"``.
* PNG/JPEG/BMP/TIFF: a single image becomes a one-slice volume; a folder of images
  becomes a stack in natural file-name order (all images must share one size).
  Colour images are converted to grey; spacing is 1 mm (unknown).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.dicom.reader import (
    DicomReadError,
    looks_like_non_dicom,
    read_header,
    walk_files,
)
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import SourceInfo, Volume

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Largest 2D image accepted (pixels), to refuse decompression bombs in PNG/JPEG.
MAX_IMAGE_PIXELS = 1 << 28


class UnsupportedFileError(ValueError):
    """The path holds nothing this program can open."""


def _has_suffix(path: Path, suffixes: Sequence[str]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def guess_modality(name: str) -> str:
    """``"CT"``/``"MR"`` when the file name says so (``head_ct.nii``, ``headCT``), else ``"OT"``."""
    low = name.lower()
    ct = re.search(r"(^|[^a-z])ct|ct($|[^a-z])", low) is not None
    mr = re.search(r"(^|[^a-z])(mri?|t1|t2|flair)($|[^a-z])", low) is not None
    if ct and not mr:
        return "CT"
    if mr and not ct:
        return "MR"
    return "OT"


def read_image_file(path: Path) -> NDArray[np.float32]:
    """A PNG/JPEG/BMP/TIFF image as a 2D float32 array (grey; colour averaged by luminance)."""
    from PIL import Image

    with Image.open(path) as img:
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise UnsupportedFileError(f"{path}: image too large ({w}x{h})")
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
            arr = np.asarray(img)
        else:
            arr = np.asarray(img.convert("L"))
    out = np.asarray(arr, dtype=np.float32)
    if out.ndim != 2:
        raise UnsupportedFileError(f"{path}: not a 2D image (shape {out.shape})")
    return out


def read_volume_file(path: Path) -> Volume:
    """A NIfTI/MHA/NRRD file as a volume (LPS, via SimpleITK)."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise UnsupportedFileError(f"{path}: cannot read ({exc})") from exc
    if img.GetDimension() > 3:
        raise UnsupportedFileError(f"{path}: {img.GetDimension()}D images are not supported")
    modality = guess_modality(path.name)
    vol = Volume.from_sitk(
        img,
        modality=modality,
        units="HU" if modality == "CT" else "scanner",
        description=path.name,
        source=SourceInfo(files=(str(path),)),
    )
    return vol.with_array(np.asarray(vol.array, dtype=np.float32))


def read_image_stack(files: Sequence[Path], cancel: CancelToken | None = None,
                     progress: ProgressCallback = no_progress) -> Volume:
    """2D images (sorted naturally) stacked into one volume."""
    ordered = sorted(files, key=_natural_key)
    if not ordered:
        raise UnsupportedFileError("no images")
    first = read_image_file(ordered[0])
    out = np.empty((len(ordered), *first.shape), dtype=np.float32)
    out[0] = first
    for k, f in enumerate(ordered[1:], start=1):
        if cancel is not None:
            cancel.check()
        img = read_image_file(f)
        if img.shape != first.shape:
            raise UnsupportedFileError(
                f"{f}: size {img.shape} differs from {first.shape} ({ordered[0].name})"
            )
        out[k] = img
        progress(Progress(k + 1, len(ordered), f"image {k + 1}/{len(ordered)}"))
    folder = ordered[0].parent
    name = folder.name if len(ordered) > 1 else ordered[0].name
    return Volume(
        array=out,
        modality=guess_modality(name),
        units="pixel",
        description=name,
        source=SourceInfo(files=tuple(str(f) for f in ordered)),
        warnings=("pixel spacing unknown for PNG/JPEG images: 1 mm assumed",),
    )


def open_path(
    path: Path,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[Volume]:
    """Open a file or folder as a list of volumes (see module docs).

    Raises:
        FileNotFoundError: the path does not exist.
        UnsupportedFileError: nothing openable was found.
    """
    from medgan_desktop.core.dicom.series import load_series

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        if _has_suffix(path, VOLUME_SUFFIXES):
            return [read_volume_file(path)]
        if _has_suffix(path, IMAGE_SUFFIXES):
            return [read_image_stack([path])]
        try:
            read_header(path)
        except DicomReadError as exc:
            raise UnsupportedFileError(f"{path}: {exc}") from exc
        return [load_series([path], progress=progress, cancel=cancel)]

    files = list(walk_files([path]))
    volumes_files = [f for f in files if _has_suffix(f, VOLUME_SUFFIXES)]
    candidates = [f for f in files if not looks_like_non_dicom(f)]
    if candidates:
        from medgan_desktop.core.dicom.series import split_series

        groups = split_series(candidates)
        if groups:
            out: list[Volume] = []
            for uid, members in groups.items():
                if cancel is not None:
                    cancel.check()
                try:
                    out.append(load_series(members, series_uid=uid, progress=progress,
                                           cancel=cancel))
                except DicomReadError:
                    continue  # non-image objects (SR, RT plans) in the folder
            if out:
                return out
    if volumes_files:
        return [read_volume_file(f) for f in sorted(volumes_files, key=_natural_key)]
    images = [f for f in files if _has_suffix(f, IMAGE_SUFFIXES)]
    if images:
        by_folder: dict[Path, list[Path]] = {}
        for f in images:
            by_folder.setdefault(f.parent, []).append(f)
        return [read_image_stack(v, cancel=cancel, progress=progress)
                for _k, v in sorted(by_folder.items())]
    raise UnsupportedFileError(f"{path}: no DICOM series, volume or image files found")
