"""Resampling volumes between grids using their patient (LPS) coordinates.

Used by the comparison viewer (show an MR, a synthetic CT and a real CT on one grid)
and for MPR of oblique volumes (reslice onto an axis-aligned grid).
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.imaging.windowing import is_hu
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume


class Interpolation(StrEnum):
    NEAREST = "nearest"
    LINEAR = "linear"
    BSPLINE = "bspline"


def _sitk_interpolator(kind: Interpolation) -> int:
    import SimpleITK as sitk

    interpolators: dict[Interpolation, int] = {
        Interpolation.NEAREST: sitk.sitkNearestNeighbor,
        Interpolation.LINEAR: sitk.sitkLinear,
        Interpolation.BSPLINE: sitk.sitkBSpline,
    }
    return interpolators[kind]


def background_value(volume: Volume) -> float:
    """The value used outside a volume's field of view (air for CT, the minimum otherwise)."""
    if is_hu(volume.modality, volume.units):
        return -1024.0
    if volume.array.size == 0:
        return 0.0
    return float(np.min(volume.array))


def same_grid(a: Volume, b: Volume, tol: float = 1e-3) -> bool:
    """Whether two volumes share shape, spacing, origin and direction (within ``tol`` mm)."""
    return (
        a.shape == b.shape
        and bool(np.allclose(a.spacing, b.spacing, atol=tol))
        and bool(np.allclose(a.origin, b.origin, atol=tol))
        and bool(np.allclose(a.direction, b.direction, atol=1e-5))
    )


def resample_to_reference(
    moving: Volume,
    reference: Volume,
    interpolation: Interpolation | str = Interpolation.LINEAR,
    default_value: float | None = None,
) -> Volume:
    """Resample ``moving`` onto ``reference``'s grid; voxels meet where patient positions meet.

    No registration is done: the volumes must share a frame of reference (or have
    been registered before). The result keeps ``moving``'s modality, units,
    description and synthetic flag; voxels outside ``moving`` get ``default_value``
    (air for CT).

    Args:
        moving: the volume to resample.
        reference: the grid to resample onto.
        interpolation: nearest, linear or bspline.
        default_value: fill value outside ``moving``; chosen from the modality if None.
    """
    if same_grid(moving, reference):
        return moving
    import SimpleITK as sitk

    fill = background_value(moving) if default_value is None else float(default_value)
    src = moving.to_sitk()
    if src.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        src = sitk.Cast(src, sitk.sitkFloat32)
    ref = sitk.Image(reference.shape[2], reference.shape[1], reference.shape[0], sitk.sitkUInt8)
    ref.SetSpacing(tuple(float(s) for s in reference.spacing))
    ref.SetOrigin(tuple(float(o) for o in reference.origin))
    ref.SetDirection(tuple(float(v) for v in reference.direction.flatten()))
    out = sitk.Resample(
        src,
        ref,
        sitk.Transform(),
        _sitk_interpolator(Interpolation(interpolation)),
        fill,
        sitk.sitkFloat32,
    )
    arr = sitk.GetArrayFromImage(out).astype(np.float32, copy=False)
    return replace(
        moving,
        array=arr,
        spacing=reference.spacing,
        origin=reference.origin,
        direction=reference.direction.copy(),
        warnings=(*moving.warnings, "resampled onto the reference grid for display"),
    )


def resample_all_to_reference(
    volumes: list[Volume],
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[Volume]:
    """Put every volume on the first volume's grid (the comparison viewer's input).

    Args:
        volumes: the reference first, then the volumes to resample onto it.
        progress: called after each volume.
        cancel: checked between volumes.
    """
    if not volumes:
        return []
    ref = volumes[0]
    out = [ref]
    total = len(volumes) - 1
    for n, vol in enumerate(volumes[1:], start=1):
        if cancel is not None:
            cancel.check()
        out.append(resample_to_reference(vol, ref))
        progress(Progress(n, total, f"resampled {vol.description or 'volume'} onto the reference"))
    return out


def reslice_axis_aligned(
    volume: Volume,
    spacing: float | None = None,
    interpolation: Interpolation | str = Interpolation.LINEAR,
) -> Volume:
    """Reslice an oblique volume onto an axis-aligned LPS grid covering the same extent.

    Axis-aligned volumes (direction a signed permutation) are returned unchanged, since
    the viewer shows them exactly by flipping and transposing.

    Args:
        volume: the volume to reslice.
        spacing: isotropic output spacing in mm; the finest input spacing if None.
        interpolation: nearest, linear or bspline.
    """
    d = volume.direction
    if np.allclose(np.abs(d), np.round(np.abs(d)), atol=1e-4):
        return volume
    step = float(min(volume.spacing)) if spacing is None else float(spacing)
    k, j, i = volume.shape
    corners = np.array(
        [volume.index_to_lps((a, b, c)) for a in (0, i - 1) for b in (0, j - 1) for c in (0, k - 1)]
    )
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    size = np.maximum(np.ceil((hi - lo) / step).astype(int) + 1, 1)
    ref = Volume(
        array=np.zeros((int(size[2]), int(size[1]), int(size[0])), dtype=np.uint8),
        spacing=(step, step, step),
        origin=(float(lo[0]), float(lo[1]), float(lo[2])),
        direction=np.eye(3),
    )
    return resample_to_reference(volume, ref, interpolation)


def difference(minuend: Volume, subtrahend: Volume) -> Volume:
    """``minuend - subtrahend`` on the minuend's grid (the subtrahend is resampled if needed).

    The result is float32 in the inputs' units, flagged synthetic when the minuend is.
    """
    sub = resample_to_reference(subtrahend, minuend)
    arr: NDArray[np.float32] = np.subtract(minuend.array, sub.array, dtype=np.float32)
    desc = f"{minuend.description or 'A'} - {subtrahend.description or 'B'}"
    return minuend.with_array(arr, description=desc, meta={**minuend.meta, "difference": True})
