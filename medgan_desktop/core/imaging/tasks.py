"""Image-to-image tasks as data: what goes in, what comes out, how pairs are made.

The translation methods (pix2pix, the L1 U-Net, CycleGAN, UNIT, distilled students) learn
any mapping between two images on one grid; a :class:`TranslationTask` says which one:

* **source and target**: modality (and MR contrast), and how intensities reach the
  networks' [-1, 1]: CT in HU through the fixed SynthRAD window [-1024, 3000], MR through
  its own 0.5/99.5 percentiles (MR has no absolute scale). A synthetic MR is written on
  the MR *display scale*: 0..1000 spans the target's 0.5..99.5 percentile range.
* **pairs**: ``registered`` (two real images of one patient, the target brought onto the
  source grid), or ``degraded`` (self-supervised: the source is a degraded copy of a real
  target: simulated low dose, or thick slices).
* **slicing**: the plane the 2D networks see. Through-plane super-resolution works on
  coronal slices, where the thick-slice blur is visible, of the input first interpolated
  onto the finer grid (:func:`interpolate_through_plane`), so output geometry is exact.
* **metrics and reference**: SynthRAD MAE/PSNR/SSIM in the target's units, against the
  simple reference each task is judged with (the L1 U-Net; for denoising a Gaussian
  filter; for super-resolution cubic interpolation).

Degradations are stated models, not scanner physics: low dose is image-domain noise
whose variance grows with attenuation (Poisson-like: ``sigma = k * sqrt((HU + 1024) /
1024)``, spatially correlated by a small Gaussian, ``k`` from the dose fraction), and thick
slices are the mean of ``factor`` consecutive thin slices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from scipy import ndimage

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE, IntensityWindow
from medgan_desktop.core.types import Float32Array, Float64Array
from medgan_desktop.core.volume import Volume

#: A synthetic MR is written on this scale (the target's 0.5..99.5 percentiles).
MR_DISPLAY_RANGE: tuple[float, float] = (0.0, 1000.0)
#: Low-dose noise at full dose fraction 0.25 (the default): HU of the noise at water.
NOISE_AT_WATER_HU = 40.0


class Pairing(StrEnum):
    REGISTERED = "registered"
    DEGRADED = "degraded"


class Degradation(StrEnum):
    """How a self-supervised task makes its input from the real image (none: real pairs)."""

    NONE = "none"
    LOW_DOSE = "low_dose"
    THICK_SLICES = "thick_slices"


@dataclass(frozen=True)
class TranslationTask:
    """One image-to-image task (see the module docs).

    Args:
        key: the name used by ``--task`` and stored in run.json.
        title: what the GUI shows.
        source_modality / target_modality: "MR" or "CT".
        source_contrast / target_contrast: MR contrast ("T1", "T2") or "".
        pairing: registered real pairs, or degraded copies of one image.
        degradation: how a degraded source is made.
        factor: thick-slice factor (super-resolution).
        dose: dose fraction of the simulated low-dose scan (denoising).
        slice_axis: the plane the networks see: "axial" (k) or "coronal" (j).
        reference: the simple method the task is judged against in the same run.
    """

    key: str
    title: str
    source_modality: str
    target_modality: str
    source_contrast: str = ""
    target_contrast: str = ""
    pairing: Pairing = Pairing.REGISTERED
    degradation: Degradation = Degradation.NONE
    factor: int = 1
    dose: float = 0.25
    slice_axis: str = "axial"
    reference: str = "unet_l1"

    @property
    def self_supervised(self) -> bool:
        return self.pairing == Pairing.DEGRADED

    def window(self, modality: str) -> IntensityWindow:
        return IntensityWindow.ct() if modality.upper() == "CT" else IntensityWindow.mr()

    @property
    def source_window(self) -> IntensityWindow:
        return self.window(self.source_modality)

    @property
    def target_window(self) -> IntensityWindow:
        return self.window(self.target_modality)

    @property
    def target_units(self) -> str:
        return "HU" if self.target_modality == "CT" else "MR display units (0-1000)"

    def describe(self) -> str:
        src = f"{self.source_modality} {self.source_contrast}".strip()
        tgt = f"{self.target_modality} {self.target_contrast}".strip()
        how = {Degradation.LOW_DOSE: f", pairs from simulated {self.dose:g}-dose copies",
               Degradation.THICK_SLICES: f", pairs from {self.factor}x thick-slice copies"}.get(
                   self.degradation, ", registered pairs of one patient")
        return f"{self.title}: {src} -> {tgt}{how}"


TASKS: dict[str, TranslationTask] = {t.key: t for t in (
    TranslationTask("mr_to_ct", "MR -> CT", "MR", "CT"),
    TranslationTask("ct_to_mr", "CT -> MR", "CT", "MR"),
    TranslationTask("t1_to_t2", "MR T1 -> T2", "MR", "MR", "T1", "T2"),
    TranslationTask("ct_denoise", "Low-dose CT denoising", "CT", "CT", pairing=Pairing.DEGRADED,
                    degradation=Degradation.LOW_DOSE, reference="gaussian"),
    TranslationTask("ct_superres", "Through-plane super-resolution (CT, 3x)", "CT", "CT",
                    pairing=Pairing.DEGRADED, degradation=Degradation.THICK_SLICES, factor=3,
                    slice_axis="coronal", reference="cubic"),
)}
DEFAULT_TASK = "mr_to_ct"


def get_task(key: str) -> TranslationTask:
    """The task called ``key`` (ValueError naming the known ones otherwise)."""
    try:
        return TASKS[key]
    except KeyError:
        raise ValueError(f"unknown task {key!r}; one of {', '.join(TASKS)}") from None


# -- degradations ------------------------------------------------------------------------------
def low_dose(volume: Volume, dose: float = 0.25, seed: int = 0) -> Volume:
    """A simulated low-dose copy of a CT (see the module docs for the noise model)."""
    if not 0.0 < dose < 1.0:
        raise ValueError(f"a dose fraction is between 0 and 1, not {dose}")
    rng = np.random.default_rng(seed)
    hu = np.asarray(volume.array, dtype=np.float32)
    k = NOISE_AT_WATER_HU * float(np.sqrt(1.0 / dose - 1.0) / np.sqrt(1.0 / 0.25 - 1.0))
    sigma = k * np.sqrt(np.clip(hu - CT_HU_RANGE[0], 0.0, None) / 1024.0 + 0.05)
    white = rng.standard_normal(hu.shape).astype(np.float32)
    # in-plane correlated noise (CT noise is not white); unit variance kept
    corr = ndimage.gaussian_filter(white, sigma=(0.0, 0.7, 0.7))
    corr /= max(float(corr.std()), 1e-6)
    noisy = np.clip(hu + sigma * corr, CT_HU_RANGE[0], CT_HU_RANGE[1]).astype(np.float32)
    return replace(volume, array=noisy, description=f"{volume.description} (simulated {dose:g} dose)".strip())


def thick_slices(volume: Volume, factor: int) -> Volume:
    """Every ``factor`` consecutive slices averaged into one (a thick-slice acquisition).

    The thick slice sits at the centre of the slices it averages; trailing slices that do
    not fill a slab are left out.
    """
    if factor < 2:
        raise ValueError("a thick-slice factor is at least 2")
    arr = np.asarray(volume.array, dtype=np.float32)
    n = (arr.shape[0] // factor) * factor
    if n < 2 * factor:
        raise ValueError(f"{arr.shape[0]} slices are too few for {factor}x thick slices")
    thick = arr[:n].reshape(n // factor, factor, *arr.shape[1:]).mean(axis=1)
    sz = float(volume.spacing[2])
    offset = (factor - 1) / 2.0 * sz
    k_dir = np.asarray(volume.direction, dtype=np.float64)[:, 2]
    o = np.asarray(volume.origin, dtype=np.float64) + offset * k_dir
    origin = (float(o[0]), float(o[1]), float(o[2]))
    return replace(volume, array=thick.astype(np.float32), spacing=(volume.spacing[0], volume.spacing[1], sz * factor),
                   origin=origin, description=f"{volume.description} ({factor}x thick slices)".strip())


def _linear_k(arr: Float32Array, coords: Float64Array) -> Float32Array:
    """``arr`` sampled along k at fractional slice ``coords`` (linear, clamped to the ends)."""
    n = arr.shape[0]
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1.0)
    lo = np.floor(c).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (c - lo).astype(np.float32)[:, None, None]
    out: Float32Array = ((1.0 - w) * arr[lo] + w * arr[hi]).astype(np.float32)
    return out


def interpolate_through_plane(volume: Volume, factor: int, order: int = 1) -> Volume:
    """The volume on a grid ``factor`` times finer along k (same first and last slice).

    ``n`` slices become ``(n - 1) * factor + 1``; spacing along k is divided by ``factor``,
    origin and direction are kept: the finer grid lies exactly on the source's slices.
    ``order`` 1 is linear (what the super-resolution network refines), 3 cubic (its
    reference).
    """
    arr = np.asarray(volume.array, dtype=np.float32)
    n = arr.shape[0]
    if n < 2:
        raise ValueError("through-plane interpolation needs at least two slices")
    m = (n - 1) * factor + 1
    coords = np.arange(m, dtype=np.float64) / factor
    if order == 1:
        out = _linear_k(arr, coords)
    else:
        out = ndimage.map_coordinates(arr, np.meshgrid(coords, np.arange(arr.shape[1]), np.arange(arr.shape[2]),
                                                       indexing="ij"), order=order, mode="nearest").astype(np.float32)
    sz = float(volume.spacing[2]) / factor
    return replace(volume, array=out, spacing=(volume.spacing[0], volume.spacing[1], sz))


def thick_on_thin_grid(target: Volume, factor: int, order: int = 1) -> Volume:
    """The thick-slice copy of ``target`` interpolated back onto ``target``'s own grid
    (each thin slice from the thick slices around it; the ends repeat the nearest one)."""
    thick = thick_slices(target, factor)
    n = target.shape[0]
    coords = (np.arange(n, dtype=np.float64) - (factor - 1) / 2.0) / factor
    arr = np.asarray(thick.array, dtype=np.float32)
    if order == 1:
        out = _linear_k(arr, coords)
    else:
        c = np.clip(coords, 0.0, arr.shape[0] - 1.0)
        out = ndimage.map_coordinates(arr, np.meshgrid(c, np.arange(arr.shape[1]), np.arange(arr.shape[2]),
                                                       indexing="ij"), order=order, mode="nearest").astype(np.float32)
    return replace(target, array=out, description=f"{target.description} ({factor}x thick, interpolated)".strip())


def degraded_source(target: Volume, task: TranslationTask, seed: int = 0) -> Volume:
    """The network input made from a real ``target`` for a self-supervised task, on the
    target's grid (thick slices are interpolated back onto it)."""
    if task.degradation == Degradation.LOW_DOSE:
        return low_dose(target, task.dose, seed)
    if task.degradation == Degradation.THICK_SLICES:
        return thick_on_thin_grid(target, task.factor)
    raise ValueError(f"task {task.key} makes no degraded pairs")


def slice_view(array: Float32Array, axis: str) -> Float32Array:
    """``array`` (k, j, i) arranged so its first axis is the slicing axis of ``axis``."""
    if axis == "axial":
        return array
    if axis == "coronal":
        return np.ascontiguousarray(np.transpose(array, (1, 0, 2)))
    raise ValueError(f"unknown slice axis {axis!r}")


def unslice_view(array: Float32Array, axis: str) -> Float32Array:
    """Inverse of :func:`slice_view`."""
    return slice_view(array, axis)  # the (1, 0, 2) transpose is its own inverse
