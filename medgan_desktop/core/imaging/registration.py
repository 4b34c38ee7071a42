"""Registering a CT onto an MR (or any two images of one patient) with SimpleITK.

Volumes: rigid (Euler 3D), optionally followed by affine, Mattes mutual
information, multi-resolution; the moving image (CT) is resampled onto the fixed
grid (MR) with air (-1024 HU) outside. Because scans can be acquired in very
different orientations (the MRI-DIR phantom was turned 180 degrees between its CT
and MR), several starting rotations can be tried and the best final MI kept.

2D image pairs of different field of view (e.g. slice-matched PNG pairs): a
similarity transform (rotation, scale, shift) then optional affine.

Every result carries a :class:`RegistrationQuality` (initial and final mutual
information, the change, iterations, the optimiser's stop reason), so the UI and
the data preparation can show and store how well the images were aligned.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import Float32Array, JsonObject, PixelArray
from medgan_desktop.core.volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk

#: Starting rotations (about x, y, z in radians) tried by ``try_orientations``.
_ORIENTATIONS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (math.pi, 0.0, 0.0),
    (0.0, math.pi, 0.0),
    (0.0, 0.0, math.pi),
)


@dataclass(frozen=True)
class RegistrationQuality:
    """How well a registration went.

    Args:
        initial_mi: Mattes mutual information before optimisation (after centring).
        final_mi: mutual information at the end (higher is better; SimpleITK's metric
            value with its sign flipped).
        iterations: optimiser iterations in the last stage.
        stop_condition: the optimiser's stop description.
        stages: the transform stages run ("rigid", "affine", "similarity").
        orientation: index of the starting rotation kept (0 = as acquired).
    """

    initial_mi: float
    final_mi: float
    iterations: int
    stop_condition: str
    stages: tuple[str, ...]
    orientation: int = 0

    @property
    def improvement(self) -> float:
        return self.final_mi - self.initial_mi

    def to_dict(self) -> JsonObject:
        d = asdict(self)
        d["stages"] = list(self.stages)
        d["improvement"] = self.improvement
        return d


@dataclass(frozen=True)
class RegistrationResult:
    """The moving volume resampled onto the fixed grid, its transform and quality.

    Args:
        resampled: the moving image on the fixed image's grid.
        transform: the SimpleITK transform mapping fixed points to moving points.
        quality: see :class:`RegistrationQuality`.
    """

    resampled: Volume
    transform: sitk.Transform
    quality: RegistrationQuality


def _as_float(vol: Volume) -> sitk.Image:
    import SimpleITK as sitk

    img: sitk.Image = sitk.Cast(vol.to_sitk(), sitk.sitkFloat32)
    return img


def _method(bins: int, sampling: float, iterations: int, seed: int, levels: int) -> sitk.ImageRegistrationMethod:
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-4,
        numberOfIterations=iterations,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    shrink = [2**i for i in reversed(range(levels))]
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel([float(s) / 2 for s in shrink])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return reg


def _run(reg: sitk.ImageRegistrationMethod, fixed: sitk.Image, moving: sitk.Image,
         cancel: CancelToken | None) -> sitk.Transform:
    import SimpleITK as sitk

    if cancel is not None:

        def _check() -> None:
            if cancel.cancelled:
                reg.StopRegistration()

        reg.AddCommand(sitk.sitkIterationEvent, _check)
    out: sitk.Transform = reg.Execute(fixed, moving)
    if cancel is not None:
        cancel.check()
    return out


def _shrunk(img: sitk.Image, max_size: int | None) -> sitk.Image:
    """``img`` shrunk by integer factors so no in-plane side exceeds ``max_size``."""
    import SimpleITK as sitk

    if max_size is None:
        return img
    size = img.GetSize()
    factors = [max(1, -(-int(n) // max_size)) if i < 2 else 1 for i, n in enumerate(size)]
    return img if all(f == 1 for f in factors) else sitk.Shrink(img, factors)


def mutual_information(
    fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, bins: int = 50, seed: int = 7
) -> float:
    """Mattes MI between ``fixed`` and ``moving`` under ``transform`` (higher is better)."""
    reg = _method(bins, 0.2, 1, seed, 1)
    reg.SetInitialTransform(transform, inPlace=False)
    return -float(reg.MetricEvaluate(fixed, moving))


def _affine_from(linear: sitk.Euler3DTransform | sitk.Similarity2DTransform, dim: int) -> sitk.AffineTransform:
    """The affine transform equal to a rigid or similarity one, to start an affine stage."""
    import SimpleITK as sitk

    aff = sitk.AffineTransform(dim)
    aff.SetMatrix(linear.GetMatrix())
    aff.SetTranslation(linear.GetTranslation())
    aff.SetCenter(linear.GetCenter())
    return aff


def _quality(reg: sitk.ImageRegistrationMethod, initial_mi: float, final_mi: float, stages: list[str],
             orientation: int = 0) -> RegistrationQuality:
    """The quality of a registration whose last stage ran ``reg``."""
    return RegistrationQuality(initial_mi=initial_mi, final_mi=final_mi, iterations=int(reg.GetOptimizerIteration()),
                               stop_condition=str(reg.GetOptimizerStopConditionDescription()),
                               stages=tuple(stages), orientation=orientation)


def register_volumes(
    fixed: Volume,
    moving: Volume,
    *,
    affine: bool = False,
    try_orientations: bool = False,
    iterations: int = 200,
    sampling: float = 0.05,
    levels: int = 3,
    bins: int = 50,
    seed: int = 7,
    max_size: int | None = 160,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> RegistrationResult:
    """Register ``moving`` (CT) onto ``fixed`` (MR): rigid, then optionally affine.

    Args:
        fixed: the reference volume (its grid is kept).
        moving: the volume to align and resample (CT in HU).
        affine: run an affine stage after the rigid one.
        try_orientations: also start from 180 degree rotations about each axis and
            keep the best final MI (scans acquired in different positions).
        iterations: optimiser iterations per stage.
        sampling: fraction of voxels sampled for the metric.
        levels: multi-resolution levels.
        bins: histogram bins of Mattes MI.
        seed: metric sampling seed (results are reproducible).
        max_size: register on copies shrunk so no in-plane side exceeds this (the
            transform is physical, so the full-resolution CT is resampled with it);
            None registers at full resolution.
        progress: progress callback.
        cancel: cancel token.
    """
    import SimpleITK as sitk

    f_full = _as_float(fixed)
    m_full = _as_float(moving)
    f, m = _shrunk(f_full, max_size), _shrunk(m_full, max_size)
    starts = _ORIENTATIONS if try_orientations else _ORIENTATIONS[:1]
    total = len(starts) + (1 if affine else 0) + 1
    best: tuple[float, int, sitk.Transform, sitk.ImageRegistrationMethod, float] | None = None
    for n, rot in enumerate(starts):
        if cancel is not None:
            cancel.check()
        progress(Progress(n, total, f"rigid registration, start {n + 1}/{len(starts)}"))
        init = sitk.CenteredTransformInitializer(
            f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
        init = sitk.Euler3DTransform(init)
        init.SetRotation(*rot)
        initial_mi = mutual_information(f, m, init, bins, seed)
        reg = _method(bins, sampling, iterations, seed, levels)
        reg.SetInitialTransform(init, inPlace=False)
        tx = _run(reg, f, m, cancel)
        mi = mutual_information(f, m, tx, bins, seed)
        if best is None or mi > best[0]:
            best = (mi, n, tx, reg, initial_mi)
    assert best is not None
    final_mi, orientation, transform, reg, initial_mi = best
    stages = ["rigid"]
    if affine:
        progress(Progress(total - 2, total, "affine registration"))
        aff = _affine_from(sitk.Euler3DTransform(sitk.CompositeTransform(transform).GetNthTransform(0)), 3)
        reg2 = _method(bins, sampling, iterations, seed, levels)
        reg2.SetInitialTransform(aff, inPlace=False)
        tx2 = _run(reg2, f, m, cancel)
        mi2 = mutual_information(f, m, tx2, bins, seed)
        if mi2 >= final_mi:  # keep the affine stage only when it helps
            transform, reg, final_mi = tx2, reg2, mi2
            stages.append("affine")
    progress(Progress(total - 1, total, "resampling onto the fixed grid"))
    fill = -1024.0 if moving.modality.upper() == "CT" else float(np.min(moving.array))
    out = sitk.Resample(m_full, f_full, transform, sitk.sitkLinear, fill, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(out).astype(np.float32, copy=False)
    quality = _quality(reg, initial_mi, final_mi, stages, orientation)
    resampled = replace(
        moving,
        array=arr,
        spacing=fixed.spacing,
        origin=fixed.origin,
        direction=fixed.direction.copy(),
        warnings=(*moving.warnings, f"registered onto {fixed.modality} grid (MI {final_mi:.3f})"),
        meta={**moving.meta, "registration": quality.to_dict()},
    )
    progress(Progress(total, total, "registration done"))
    return RegistrationResult(resampled=resampled, transform=transform, quality=quality)


def register_2d(
    fixed: PixelArray,
    moving: PixelArray,
    *,
    affine: bool = True,
    iterations: int = 150,
    bins: int = 32,
    seed: int = 7,
    fill: float | None = None,
) -> tuple[Float32Array, RegistrationQuality]:
    """Align a 2D ``moving`` image to ``fixed`` (different field of view/scale allowed).

    A similarity transform (rotation, isotropic scale, shift) initialised on the
    images' centres of mass, then an optional affine stage kept only when it
    raises the MI. Pixel spacing is taken as 1 for both.

    Returns:
        ``(moving resampled onto fixed's pixel grid, quality)``.
    """
    import SimpleITK as sitk

    if fixed.ndim != 2 or moving.ndim != 2:
        raise ValueError("register_2d needs two 2D images")
    f = sitk.GetImageFromArray(np.asarray(fixed, dtype=np.float32))
    m = sitk.GetImageFromArray(np.asarray(moving, dtype=np.float32))
    init = sitk.CenteredTransformInitializer(
        f, m, sitk.Similarity2DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    initial_mi = mutual_information(f, m, init, bins, seed)
    reg = _method(bins, 0.1, iterations, seed, 3)
    reg.SetInitialTransform(init, inPlace=False)
    transform = reg.Execute(f, m)
    final_mi = mutual_information(f, m, transform, bins, seed)
    stages = ["similarity"]
    if affine:
        aff = _affine_from(sitk.Similarity2DTransform(sitk.CompositeTransform(transform).GetNthTransform(0)), 2)
        reg2 = _method(bins, 0.1, iterations, seed, 2)
        reg2.SetInitialTransform(aff, inPlace=False)
        tx2 = reg2.Execute(f, m)
        mi2 = mutual_information(f, m, tx2, bins, seed)
        if mi2 >= final_mi:
            transform, reg, final_mi = tx2, reg2, mi2
            stages.append("affine")
    bg = float(np.min(moving)) if fill is None else float(fill)
    out = sitk.Resample(m, f, transform, sitk.sitkLinear, bg, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out).astype(np.float32, copy=False), _quality(reg, initial_mi, final_mi, stages)
