"""The sample study: a small real head MR + head CT study with no real patient identity.

Built by the project's own code, on first use (or once at packaging time), from data that
Debian packages ship under licences that permit it:

* **MR**: the Colin27 T1 head template ``ch2.nii.gz`` from Debian ``mricron-data``
  (BSD-3-clause, Chris Rorden's MRIcron; an average of 27 scans of Colin Holmes' head).
* **CT**: the head CT "ProMED CT 0051" inside ``Cranium.inv3`` from Debian
  ``invesalius-examples`` (GPL-2, InVesalius project; a gzipped tar holding ``main.plist``
  and the raw int16 HU matrix ``matrix.dat``).

Both are written as axial DICOM series (MR Image Storage, CT Image Storage) of one study of
the fake patient ``SAMPLE^STUDY`` with :func:`~medgan_desktop.core.dicom.write.write_volume_series`.
The two heads are different people scanned on different machines, so each series has its
own Frame of Reference. A complete build holds a stamp file and is reused; builds go into a
temp folder that is renamed into place only when complete. A pre-built copy shipped in
``resources/sample_study`` (the PyInstaller build makes one) is copied instead when present.
"""

from __future__ import annotations

import json
import plistlib
import secrets
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import PixelArray
from medgan_desktop.core.volume import Volume

PATIENT_NAME = "SAMPLE^STUDY"
PATIENT_ID = "MEDGAN-SAMPLE-001"
STAMP_NAME = "SAMPLE_STUDY_COMPLETE"
#: Bump when the recipe changes so old builds are rebuilt.
RECIPE_VERSION = 1
#: Grid of the MR series after downsampling (mm: column, row, slice).
MR_SPACING: tuple[float, float, float] = (1.5, 1.5, 1.8)

MR_SOURCE = Path("/usr/share/mricron/templates/ch2.nii.gz")
CT_SOURCE = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
MR_PACKAGE = "mricron-data"
CT_PACKAGE = "invesalius-examples"

# Deterministic study UID (pydicom's UID root + a fixed suffix for this recipe): a rebuilt
# sample study is the same study, so re-importing it never duplicates it in the index.
_STUDY_UID = str(generate_uid(entropy_srcs=["medgan_desktop sample study", str(RECIPE_VERSION)]))

__all__ = [
    "PATIENT_NAME",
    "SampleSources",
    "SampleStudyUnavailable",
    "build_sample_study",
    "ensure_sample_study",
    "is_complete",
    "load_colin27_mr",
    "load_invesalius_ct",
]


class SampleStudyUnavailable(FileNotFoundError):
    """Neither the source data nor a pre-built copy of the sample study is available."""


@dataclass(frozen=True)
class SampleSources:
    """Where the source images are (the Debian package locations by default)."""

    mr: Path = MR_SOURCE
    ct: Path = CT_SOURCE

    def missing(self) -> list[str]:
        """Human-readable names of what is missing (empty when both are present)."""
        out = []
        if not self.mr.is_file():
            out.append(f"{self.mr} (Debian package '{MR_PACKAGE}')")
        if not self.ct.is_file():
            out.append(f"{self.ct} (Debian package '{CT_PACKAGE}')")
        return out


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a finished sample study of the current recipe."""
    stamp = Path(folder) / STAMP_NAME
    if not stamp.is_file():
        return False
    try:
        info = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("recipe_version") == RECIPE_VERSION


# -- sources ---------------------------------------------------------------------------
def _resample(volume: Volume, spacing: tuple[float, float, float]) -> Volume:
    """Smooth (anti-alias) and linearly resample onto a coarser grid with the same extent."""
    import SimpleITK as sitk

    img = volume.to_sitk()
    img = sitk.Cast(img, sitk.sitkFloat32)
    old = np.asarray(volume.spacing, dtype=np.float64)
    new = np.asarray(spacing, dtype=np.float64)
    sigma = np.sqrt(np.maximum(new**2 - old**2, 0.0)) / 2.355
    if np.any(sigma > 0):
        img = sitk.SmoothingRecursiveGaussian(img, [float(max(s, 1e-3)) for s in sigma])
    size = [round(float(n * o / s)) for n, o, s in zip(img.GetSize(), old, new, strict=True)]
    out = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(),
                        tuple(float(s) for s in new), img.GetDirection(), 0.0,
                        sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(out)
    return Volume(array=arr, spacing=(float(new[0]), float(new[1]), float(new[2])),
                  origin=volume.origin, direction=volume.direction, modality=volume.modality,
                  units=volume.units, description=volume.description)


def load_colin27_mr(path: Path = MR_SOURCE,
                    spacing: tuple[float, float, float] = MR_SPACING) -> Volume:
    """The Colin27 T1 head as an axial LPS volume (i: right→left, j: anterior→posterior).

    Args:
        path: ``ch2.nii.gz`` (Debian ``mricron-data``).
        spacing: output grid spacing in mm (downsampled with anti-aliasing).
    """
    import nibabel as nib
    from nibabel import orientations as ornt

    img: Any = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    affine = np.asarray(img.affine, dtype=np.float64)
    # Reorder/flip the voxel axes so that i, j, k run to L, P, S (a DICOM axial series).
    transform = ornt.ornt_transform(ornt.io_orientation(affine), ornt.axcodes2ornt("LPS"))
    data = ornt.apply_orientation(data, transform)
    affine = affine @ ornt.inv_ornt_aff(transform, img.shape)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # RAS mm -> LPS mm
    zooms = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / zooms[None, :]
    vol = Volume(
        array=np.ascontiguousarray(data.transpose(2, 1, 0)),
        spacing=(float(zooms[0]), float(zooms[1]), float(zooms[2])),
        origin=(float(lps[0, 3]), float(lps[1, 3]), float(lps[2, 3])),
        direction=direction,
        modality="MR",
        units="scanner",
        description="T1 head (Colin27)",
    )
    out = _resample(vol, spacing)
    arr = np.clip(np.rint(out.array), 0, None).astype(np.int16)
    return out.with_array(arr)


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    for member in tar.getmembers():
        if member.isfile() and Path(member.name).name == name:
            f = tar.extractfile(member)
            if f is not None:
                return f.read()
    raise ValueError(f"{name} not found in the InVesalius project")


def load_invesalius_ct(path: Path = CT_SOURCE) -> Volume:
    """The head CT of an InVesalius ``.inv3`` project as an axial LPS volume in HU.

    InVesalius stores the matrix as ``(slice, row, column)`` int16 (little-endian) with the
    rows flipped upside down (VTK's y-up convention; checked on the images: row 0 holds the
    head rest, i.e. the back of the head) and slices running from the feet to the head.
    The rows are flipped back so that row 0 is anterior, as in a DICOM axial image.
    """
    with tarfile.open(path, "r:gz") as tar:
        main = plistlib.loads(_read_member(tar, "main.plist"))
        matrix = main["matrix"]
        raw = _read_member(tar, str(matrix["filename"]))
    shape = tuple(int(n) for n in matrix["shape"])
    dtype = np.dtype(str(matrix["dtype"])).newbyteorder("<")
    arr: PixelArray = np.frombuffer(raw, dtype=dtype)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"matrix.dat holds {arr.size} voxels, main.plist says {shape}")
    arr = arr.reshape(shape)[:, ::-1, :].astype(np.int16)
    lo, hi = (int(v) for v in main.get("scalar_range", (-1024, 4095)))
    if int(arr.min()) < lo - 1 or int(arr.max()) > hi + 1:
        raise ValueError("unexpected CT value range: the byte order of matrix.dat is not int16 LE")
    si, sj, sk = (float(s) for s in main["spacing"])
    nk, nj, ni = arr.shape
    origin = (-(ni - 1) * si / 2.0, -(nj - 1) * sj / 2.0, -0.5 * (nk - 1) * sk)
    return Volume(array=np.ascontiguousarray(arr), spacing=(si, sj, sk), origin=origin,
                  direction=np.eye(3), modality="CT", units="HU",
                  description="Head CT (InVesalius ProMED CT 0051)",
                  meta={"window": (40, 80)})


# -- building ----------------------------------------------------------------------------
def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()


def _publish(tmp: Path, out: Path) -> Path:
    """Rename ``tmp`` to ``out``; if another build finished first, keep that one."""
    try:
        tmp.replace(out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_complete(out):
            return out
        raise
    return out


def _prepare_target(out: Path, *, replace_incomplete: bool) -> None:
    if out.exists() and not is_complete(out):
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif replace_incomplete:
            shutil.rmtree(out)
        else:
            raise FileExistsError(
                f"{out} exists and is not a complete sample study: choose an empty folder"
            )


def build_sample_study(
    out_dir: Path,
    *,
    sources: SampleSources | None = None,
    replace_incomplete: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Build the sample study into ``out_dir`` (reused when already complete).

    Args:
        out_dir: folder to create; it gets ``MR/``, ``CT/`` and a stamp file.
        sources: source image locations (Debian package paths by default).
        replace_incomplete: delete a half-built ``out_dir`` (only for folders we own).

    Returns:
        ``out_dir``.

    Raises:
        SampleStudyUnavailable: a source file is missing (names the Debian package).
        FileExistsError: ``out_dir`` holds something else and ``replace_incomplete`` is off.
    """
    out = Path(out_dir).expanduser().resolve()
    if is_complete(out):
        return out
    src = sources or SampleSources()
    missing = src.missing()
    if missing:
        raise SampleStudyUnavailable(
            "the sample study cannot be built: missing " + "; ".join(missing)
            + f". Install them with: apt-get install {MR_PACKAGE} {CT_PACKAGE}"
        )
    _prepare_target(out, replace_incomplete=replace_incomplete)
    from medgan_desktop.core.dicom.write import write_volume_series

    total = 5
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        _check(cancel)
        progress(Progress(0, total, "reading the Colin27 head MR"))
        mr = load_colin27_mr(src.mr)
        _check(cancel)
        progress(Progress(1, total, "reading the InVesalius head CT"))
        ct = load_invesalius_ct(src.ct)
        _check(cancel)
        common: dict[str, Any] = {"patient_name": PATIENT_NAME, "patient_id": PATIENT_ID,
                                  "study_uid": _STUDY_UID, "cancel": cancel}
        progress(Progress(2, total, f"writing the MR series ({mr.shape[0]} slices)"))
        mr_files = write_volume_series(mr, tmp / "MR", series_number=1,
                                       series_description="T1 head (Colin27, mricron-data)",
                                       **common)
        progress(Progress(3, total, f"writing the CT series ({ct.shape[0]} slices)"))
        ct_files = write_volume_series(ct, tmp / "CT", series_number=2,
                                       series_description="Head CT (InVesalius examples)",
                                       **common)
        _check(cancel)
        stamp = {
            "recipe_version": RECIPE_VERSION,
            "patient_name": PATIENT_NAME,
            "study_instance_uid": _STUDY_UID,
            "series": {
                "MR": {"files": len(mr_files), "shape": list(mr.shape),
                       "spacing": list(mr.spacing), "source": f"{src.mr} ({MR_PACKAGE}, "
                       "BSD-3-clause, Chris Rorden; Colin27 average T1)"},
                "CT": {"files": len(ct_files), "shape": list(ct.shape),
                       "spacing": list(ct.spacing), "source": f"{src.ct} ({CT_PACKAGE}, "
                       "GPL-2, InVesalius; ProMED CT 0051)"},
            },
        }
        (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
        progress(Progress(4, total, "finishing"))
        result = _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(Progress(total, total, f"sample study ready in {out}"))
    return result


def _copy_prebuilt(prebuilt: Path, out: Path, cancel: CancelToken | None) -> Path:
    _prepare_target(out, replace_incomplete=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.copying-{secrets.token_hex(4)}"
    try:
        shutil.copytree(prebuilt, tmp)
        _check(cancel)
        return _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_sample_study(
    paths: AppPaths,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    *,
    sources: SampleSources | None = None,
) -> Path:
    """Return the folder of the sample study, building it on first use.

    Order: an existing complete build in ``paths.sample_study_dir``; a copy of the
    pre-built study in ``paths.resources_dir / "sample_study"``; a fresh build from the
    Debian packages' files.

    Raises:
        SampleStudyUnavailable: neither a pre-built copy nor the source files exist.
    """
    out = paths.sample_study_dir
    if is_complete(out):
        progress(Progress(1, 1, f"sample study ready in {out}"))
        return out
    prebuilt = paths.resources_dir / "sample_study"
    if is_complete(prebuilt):
        progress(Progress(0, 1, "copying the bundled sample study"))
        result = _copy_prebuilt(prebuilt, out, cancel)
        progress(Progress(1, 1, f"sample study ready in {out}"))
        return result
    try:
        return build_sample_study(out, sources=sources, replace_incomplete=True,
                                  progress=progress, cancel=cancel)
    except SampleStudyUnavailable as exc:
        raise SampleStudyUnavailable(
            f"{exc}. (No pre-built copy in {prebuilt} either.)"
        ) from exc
