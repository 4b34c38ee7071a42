"""Loading 2D image sets for the unpaired metrics and the reader study.

Images come as files or folders of PNG/JPEG/BMP/TIFF, single DICOM files or
NIfTI/MHA volumes (the middle slice). Every image becomes a float32 array in
``[0, 1]``, grey, shape ``(H, W)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import PixelArray

RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"})
VOLUME_SUFFIXES = frozenset({".nii", ".gz", ".mha", ".mhd", ".nrrd"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ""})

Image = NDArray[np.float32]


def is_image_file(path: Path) -> bool:
    """True for file names this module can read (DICOM files may lack a suffix)."""
    suf = path.suffix.lower()
    if path.name.startswith("."):
        return False
    if suf == ".gz":
        return path.name.lower().endswith(".nii.gz")
    return suf in RASTER_SUFFIXES or suf in VOLUME_SUFFIXES or suf in DICOM_SUFFIXES


def list_images(path: Path | str) -> list[Path]:
    """All readable image files under ``path`` (a file or a folder, searched recursively).

    Files are sorted by their path so the order is reproducible.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))


def _to_unit(arr: PixelArray, lo: float | None = None, hi: float | None = None) -> Image:
    a = np.asarray(arr, dtype=np.float32)
    if lo is None or hi is None:
        finite = a[np.isfinite(a)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
    if hi <= lo:
        hi = lo + 1.0
    unit: Image = np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return unit


def _read_dicom(path: Path) -> Image:
    import pydicom

    ds = pydicom.dcmread(str(path))
    arr = np.asarray(ds.pixel_array, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and getattr(ds, "SamplesPerPixel", 1) > 1:
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim == 3:  # multi-frame: middle frame
        arr = arr[arr.shape[0] // 2]
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    arr = arr * slope + intercept
    lo = hi = None
    wc, ww = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if wc is not None and ww is not None:
        c = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
        w = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
        if w > 1:
            lo, hi = c - w / 2.0, c + w / 2.0
    out = _to_unit(arr, lo, hi)
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        out = 1.0 - out
    return out


def _read_volume_slice(path: Path) -> Image:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    if arr.ndim == 4:
        arr = arr.mean(axis=-1)
    if arr.ndim == 3:
        arr = arr[arr.shape[0] // 2]
    lo, hi = np.percentile(arr, [0.5, 99.5])
    return _to_unit(arr, float(lo), float(hi))


def load_image(path: Path | str, size: int | None = None) -> Image:
    """Read one image as grey float32 in ``[0, 1]``, optionally resized to ``size``².

    Raises:
        ValueError: when the file cannot be decoded as an image.
    """
    p = Path(path)
    suf = p.suffix.lower()
    try:
        if suf in RASTER_SUFFIXES:
            from PIL import Image as PILImage

            with PILImage.open(p) as im:
                if im.mode in ("I", "I;16", "I;16B", "F"):
                    out = _to_unit(np.asarray(im, dtype=np.float32))
                else:
                    out = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        elif suf in VOLUME_SUFFIXES:
            out = _read_volume_slice(p)
        else:
            out = _read_dicom(p)
    except Exception as exc:  # any decoder failure becomes one user-facing reason
        raise ValueError(f"cannot read {p.name} as an image: {exc}") from exc
    if size is not None:
        out = resize(out, size)
    return out.astype(np.float32, copy=False)


def resize(img: PixelArray, size: int) -> Image:
    """Bilinear resize of a 2D float image to ``size`` x ``size``."""
    if img.shape == (size, size):
        return np.asarray(img, dtype=np.float32)
    from PIL import Image as PILImage

    pil = PILImage.fromarray(np.asarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), PILImage.Resampling.BILINEAR), dtype=np.float32)


@dataclass(frozen=True)
class ImageSet:
    """Images read from disk with the files they came from (same order)."""

    files: tuple[Path, ...]
    images: tuple[Image, ...]

    def __len__(self) -> int:
        return len(self.images)

    def stack(self, size: int) -> NDArray[np.float32]:
        """All images resized to ``size``² as one ``(N, size, size)`` array."""
        if not self.images:
            return np.zeros((0, size, size), dtype=np.float32)
        return np.stack([resize(im, size) for im in self.images])


def load_images(
    paths: Path | str | Sequence[Path | str],
    size: int | None = None,
    limit: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ImageSet:
    """Read every image under one or several files/folders.

    Args:
        paths: a file, a folder, or a list of them.
        size: resize every image to ``size``² (None keeps the original size).
        limit: read at most this many files (evenly spread over the sorted list).
        progress: progress callback.
        cancel: cancel token checked between files.

    Raises:
        ValueError: when no readable image was found.
    """
    items: Iterable[Path | str] = [paths] if isinstance(paths, str | Path) else paths
    files: list[Path] = []
    for p in items:
        files.extend(list_images(p))
    if limit is not None and len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in idx]
    ok_files: list[Path] = []
    images: list[Image] = []
    for n, f in enumerate(files):
        if cancel is not None:
            cancel.check()
        try:
            images.append(load_image(f, size))
            ok_files.append(f)
        except ValueError:
            if f.suffix:  # a named image file that fails is an error worth seeing
                raise
        if n % 16 == 0 or n == len(files) - 1:
            progress(Progress(n + 1, len(files), f"reading images {n + 1}/{len(files)}"))
    if not images:
        raise ValueError(f"no readable images found in {paths}")
    return ImageSet(tuple(ok_files), tuple(images))
