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

from medgan_desktop.core.dicom.reader import DicomReadError, looks_like_non_dicom, read_header, walk_files
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import JsonObject
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


def natural_key(path: Path) -> list[int | str]:
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


def _png_synthetic(path: Path) -> bool:
    """Whether an image carries this product's synthetic mark (PNG text chunk)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}) or {}
    except OSError:
        return False
    return str(text.get("SyntheticData", "")).upper() == "YES"


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
    prov = _provenance_of(path, img)
    if prov.get("modality") in ("CT", "MR") and modality == "OT":
        modality = str(prov["modality"])
    vol = Volume.from_sitk(
        img,
        modality=modality,
        units="HU" if modality == "CT" else "scanner",
        description=(f"SYNTHETIC {path.name}" if prov.get("synthetic") else path.name),
        source=SourceInfo(files=(str(path),)),
        synthetic=bool(prov.get("synthetic")),
        meta={"provenance": prov} if prov else {},
    )
    return vol.with_array(np.asarray(vol.array, dtype=np.float32))


def _provenance_of(path: Path, img: Any) -> JsonObject:
    """What a NIfTI written by this product says about itself: its JSON sidecar, or the
    header description. ``{"synthetic": True, ...}`` for generated images."""
    import json

    out: JsonObject = {}
    side = nifti_sidecar(path)
    if side.is_file():
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and str(data.get("SyntheticData", "")).upper() == "YES":
            out = {"synthetic": True, "modality": str(data.get("modality", "")), "sidecar": data}
    descrip = ""
    for key in ("descrip", "ITK_FileNotes"):
        if img.HasMetaDataKey(key):
            descrip = str(img.GetMetaData(key))
            break
    if descrip.strip().upper().startswith("SYNTHETIC"):
        out.setdefault("synthetic", True)
        words = descrip.split()
        out.setdefault("modality", words[1] if len(words) > 1 else "")
    return out


def read_image_stack(files: Sequence[Path], cancel: CancelToken | None = None,
                     progress: ProgressCallback = no_progress) -> Volume:
    """2D images (sorted naturally) stacked into one volume."""
    ordered = sorted(files, key=natural_key)
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
    synthetic = _png_synthetic(ordered[0])
    return Volume(
        array=out,
        synthetic=synthetic,
        modality="CT" if synthetic and guess_modality(name) == "OT" else guess_modality(name),
        units="pixel",
        description=name,
        source=SourceInfo(files=tuple(str(f) for f in ordered)),
        warnings=("PNG/JPEG images carry no patient geometry: spacing, position and "
                  "orientation are unknown (1 mm placeholders)",),
        geometry_known=False,
    )


def open_path(path: Path, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> list[Volume]:
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
        return [read_volume_file(f) for f in sorted(volumes_files, key=natural_key)]
    images = [f for f in files if _has_suffix(f, IMAGE_SUFFIXES)]
    if images:
        by_folder: dict[Path, list[Path]] = {}
        for f in images:
            by_folder.setdefault(f.parent, []).append(f)
        return [read_image_stack(v, cancel=cancel, progress=progress)
                for _k, v in sorted(by_folder.items())]
    raise UnsupportedFileError(f"{path}: no DICOM series, volume or image files found")


def open_volume(path: Path | str, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> Volume:
    """The one volume at ``path`` (a DICOM series, a NIfTI/MHA/NRRD file, or images).

    Raises:
        FileNotFoundError: the path does not exist.
        UnsupportedFileError: nothing openable, or several series (point at one series).
    """
    vols = open_path(Path(path), progress=progress, cancel=cancel)
    if len(vols) != 1:
        raise UnsupportedFileError(
            f"{path} holds {len(vols)} series; point at one series folder or file"
        )
    return vols[0]


# -- writers ------------------------------------------------------------------------------
def nifti_sidecar(path: Path) -> Path:
    """The JSON provenance file written beside a NIfTI file (``x.nii.gz`` -> ``x.json``)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return Path(path).with_name(name[: -len(suffix)] + ".json")
    return Path(path).with_name(name + ".json")


def nifti_bytes(volume: Volume, description: str = "") -> bytes:
    """A volume as NIfTI-1 bytes (RAS affine from the LPS geometry, float32, mm)."""
    import nibabel as nib

    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS -> RAS
    affine = flip @ volume.affine_lps
    data = np.ascontiguousarray(np.asarray(volume.array, dtype=np.float32).transpose(2, 1, 0))
    img = nib.Nifti1Image(data, affine)
    hdr = img.header
    hdr.set_xyzt_units("mm")
    hdr.set_qform(affine, code=1)
    hdr.set_sform(affine, code=1)
    hdr["descrip"] = description.encode("ascii", "replace")[:79]
    raw: bytes = img.to_bytes()
    return raw


def write_nifti(volume: Volume, path: Path, provenance: JsonObject) -> list[Path]:
    """Write ``volume`` as NIfTI (``.nii`` or ``.nii.gz``) with a JSON provenance sidecar.

    Both files are written atomically (temp file, flushed, renamed): a full disk or a
    read-only folder raises :class:`~medgan_desktop.core.atomic.WriteError` and leaves
    neither a partial image nor a sidecar without its image.

    Args:
        volume: the image.
        path: the ``.nii``/``.nii.gz`` file.
        provenance: what the sidecar records (synthetic mark, model, source, warnings);
            its ``"description"`` also goes into the NIfTI header's ``descrip``.

    Returns:
        ``[image, sidecar]``.
    """
    import gzip
    import json

    from medgan_desktop.core.atomic import atomic_write_bytes, write_error

    path = Path(path)
    if not path.name.lower().endswith((".nii.gz", ".nii")):
        raise UnsupportedFileError(f"{path}: a NIfTI file name ends in .nii.gz or .nii")
    data = nifti_bytes(volume, str(provenance.get("description", "")))
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    sidecar = nifti_sidecar(path)
    text = json.dumps(provenance, indent=2, default=str) + "\n"
    try:
        atomic_write_bytes(sidecar, text.encode("utf-8"))
        try:
            atomic_write_bytes(path, data)
        except BaseException:
            sidecar.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise write_error(exc, path, f"the NIfTI file {path.name}") from exc
    return [path, sidecar]


def write_png_slices(images: Sequence[NDArray[np.uint8]], out: Path, names: Sequence[str],
                     what: str = "the PNG images", text: dict[str, str] | None = None
                     ) -> list[Path]:
    """Write 8-bit images as PNG files named ``names`` into the folder ``out``, all or none.

    ``out`` may also be one ``.png`` file name for a single image. Existing files are never
    overwritten (:class:`FileExistsError` before anything is written). ``text`` is written
    into every file's tEXt chunks (provenance).
    """
    from medgan_desktop.core.atomic import atomic_files_into, atomic_write_bytes, write_error
    from medgan_desktop.core.imaging.display import png_bytes

    out = Path(out)
    if out.suffix.lower() == ".png":
        if len(images) != 1:
            raise UnsupportedFileError(f"{out} names one PNG file, but there are {len(images)} images")
        if out.exists():
            raise FileExistsError(f"{out} already exists: nothing is overwritten")
        try:
            atomic_write_bytes(out, png_bytes(np.ascontiguousarray(images[0]), text))
        except OSError as exc:
            raise write_error(exc, out, what) from exc
        return [out]
    with atomic_files_into(out, list(names), what=what) as tmp:
        for img, name in zip(images, names, strict=True):
            (tmp / name).write_bytes(png_bytes(np.ascontiguousarray(img), text))
    return [out / n for n in names]
