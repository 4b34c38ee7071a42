"""Paired (translation) metrics with the SynthRAD challenge definitions.

For a synthetic CT ``pred`` and its reference CT ``ref`` on the same grid, in HU:

* **MAE** and **ME** (mean error, pred − ref): inside the body mask, no clipping.
* **PSNR**: both volumes clipped to the fixed range [−1024, 3000] HU, data range 4024,
  mean squared error over the mask voxels.
* **SSIM**: both clipped to [−1024, 3000], voxels outside the mask set to −1024, shifted
  to be non-negative, 3D SSIM with data range 4024 (7-voxel uniform window and sample
  covariance as scikit-image's default, or an 11-tap Gaussian window σ = 1.5); the
  SSIM map is averaged over mask voxels after cropping the window's half-width
  border, exactly as SynthRAD's ``ImageMetrics.ssim``.
* **MS-SSIM**: five-scale SSIM (Wang et al. 2003 weights) per axial slice on the same
  clipped/masked images, averaged over slices that contain the mask.

Reports break the numbers down per slice and per tissue class of the reference
(air < −400 HU, soft tissue −400..300 HU, bone > 300 HU) and keep error maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medgan_desktop.core.imaging.masks import body_mask
from medgan_desktop.core.metrics.fusion import volume_spatial_frequency
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import BoolArray, Float64Array, JsonObject, PixelArray
from medgan_desktop.core.volume import Volume

_S = TypeVar("_S", bound=np.generic)
#: SynthRAD's fixed HU range for clipping, PSNR and SSIM.
HU_RANGE: tuple[float, float] = (-1024.0, 3000.0)
DATA_RANGE = HU_RANGE[1] - HU_RANGE[0]
#: Tissue classes by the reference's HU (lower bound inclusive, upper exclusive).
TISSUES: dict[str, tuple[float, float]] = {
    "air": (-math.inf, -400.0),
    "soft_tissue": (-400.0, 300.0),
    "bone": (300.0, math.inf),
}
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: HU below this are scanner padding (outside the reconstructed field of view), not tissue.
PADDING_BELOW = -1100.0


class SsimWindow(StrEnum):
    UNIFORM = "uniform"  # 7-wide box, sample covariance (scikit-image default, SynthRAD)
    GAUSSIAN = "gaussian"  # sigma 1.5, truncate 3.5 (Wang et al. 2004)


def _filter(x: Float64Array, window: SsimWindow) -> Float64Array:
    out: Float64Array
    if window == SsimWindow.GAUSSIAN:
        out = ndimage.gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")
    else:
        out = ndimage.uniform_filter(x, size=7, mode="reflect")
    return out


def _pad(window: SsimWindow) -> int:
    return 5 if window == SsimWindow.GAUSSIAN else 3  # half-width: 11 or 7 taps


def ssim_map(
    x: PixelArray, y: PixelArray, data_range: float, window: SsimWindow = SsimWindow.UNIFORM
) -> tuple[Float64Array, Float64Array]:
    """Local SSIM and contrast-structure maps (any dimension).

    Same constants and covariance convention as ``skimage.metrics.structural_similarity``
    (K1 = 0.01, K2 = 0.03; sample covariance for the uniform window, population for the
    Gaussian one), so ``crop(map, pad).mean()`` equals scikit-image's value.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    ndim = a.ndim
    if window == SsimWindow.UNIFORM:
        n = 7**ndim
        cov_norm = n / (n - 1)
    else:
        cov_norm = 1.0
    ux, uy = _filter(a, window), _filter(b, window)
    uxx, uyy, uxy = _filter(a * a, window), _filter(b * b, window), _filter(a * b, window)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    s = ((2 * ux * uy + c1) / (ux**2 + uy**2 + c1)) * cs
    return s, cs


def _crop(a: NDArray[_S], pad: int) -> NDArray[_S]:
    sl = tuple(slice(pad, dim - pad) if dim > 2 * pad else slice(None) for dim in a.shape)
    cropped: NDArray[_S] = a[sl]
    return cropped


def _prepare(pred: PixelArray, ref: PixelArray, mask: BoolArray | None) -> tuple[Float64Array, Float64Array]:
    """SynthRAD SSIM input: clip, fill outside the mask with −1024, shift to >= 0."""
    lo, hi = HU_RANGE
    p = np.clip(np.asarray(pred, dtype=np.float64), lo, hi)
    r = np.clip(np.asarray(ref, dtype=np.float64), lo, hi)
    if mask is not None:
        p = np.where(mask, p, lo)
        r = np.where(mask, r, lo)
    return p - lo, r - lo


def mae(pred: PixelArray, ref: PixelArray, mask: BoolArray | None = None) -> float:
    """Mean absolute error (HU) inside ``mask``."""
    d = np.abs(np.asarray(pred, np.float64) - np.asarray(ref, np.float64))
    return float(d[mask].mean()) if mask is not None else float(d.mean())


def mean_error(pred: PixelArray, ref: PixelArray, mask: BoolArray | None = None) -> float:
    """Mean signed error pred − ref (HU) inside ``mask``."""
    d = np.asarray(pred, np.float64) - np.asarray(ref, np.float64)
    return float(d[mask].mean()) if mask is not None else float(d.mean())


def psnr(pred: PixelArray, ref: PixelArray, mask: BoolArray | None = None) -> float:
    """PSNR (dB) over the fixed range [−1024, 3000] HU, both clipped; inf when identical."""
    lo, hi = HU_RANGE
    p = np.clip(np.asarray(pred, np.float64), lo, hi)
    r = np.clip(np.asarray(ref, np.float64), lo, hi)
    if mask is not None:
        p, r = p[mask], r[mask]
    mse = float(np.mean((p - r) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim(
    pred: PixelArray,
    ref: PixelArray,
    mask: BoolArray | None = None,
    window: SsimWindow = SsimWindow.UNIFORM,
) -> float:
    """SynthRAD SSIM (3D for volumes, 2D for single images)."""
    s, _ = ssim_map(*_prepare(pred, ref, mask), data_range=DATA_RANGE, window=window)
    return _masked_ssim_mean(s, mask, _pad(window))


def _masked_ssim_mean(smap: Float64Array, mask: BoolArray | None, pad: int) -> float:
    if mask is None:
        return float(_crop(smap, pad).mean(dtype=np.float64))
    m = _crop(mask, pad)
    if not m.any():
        return float("nan")
    return float(_crop(smap, pad)[m].mean(dtype=np.float64))


def ms_ssim_2d(x: PixelArray, y: PixelArray, data_range: float = DATA_RANGE) -> float:
    """Multi-scale SSIM of two 2D images (Gaussian window, up to five scales).

    Images too small for five scales use as many as fit (each scale needs ≥ 11 px),
    with the weights renormalised; negative contrast terms are clamped to 0.
    """
    a = np.asarray(x, np.float64)
    b = np.asarray(y, np.float64)
    n_scales = 1
    while n_scales < 5 and min(a.shape) // (2**n_scales) >= 11:
        n_scales += 1
    w = np.asarray(MS_SSIM_WEIGHTS[:n_scales])
    w = w / w.sum()
    vals: list[float] = []
    for level in range(n_scales):
        s, cs = ssim_map(a, b, data_range, SsimWindow.GAUSSIAN)
        if level == n_scales - 1:
            vals.append(max(0.0, float(_crop(s, 5).mean())))
        else:
            vals.append(max(0.0, float(_crop(cs, 5).mean())))
            h, wd = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
            a = a[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
            b = b[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
    return float(np.prod(np.power(np.asarray(vals), w)))


@dataclass
class PairedReport:
    """Results of :func:`evaluate_pair` (numbers in HU / dB; SSIMs unitless)."""

    mae: float
    me: float
    psnr: float
    ssim: float
    ms_ssim: float
    mask_voxels: int
    ssim_window: str
    per_slice: list[dict[str, float]] = field(default_factory=list)
    per_tissue: dict[str, dict[str, float]] = field(default_factory=dict)
    error: Volume | None = None  # pred − ref in HU, on the reference grid
    mask: BoolArray | None = None
    spatial_frequency_pred: float = float("nan")  # mean per-slice SF (HU), reference grid
    spatial_frequency_ref: float = float("nan")
    scd: float | None = None  # fusion only: pred is a fusion of two given sources
    scd_sources: list[str] = field(default_factory=list)

    def to_dict(self) -> JsonObject:
        """JSON-ready numbers (error maps and masks left out); inf/nan become None."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        numbers = {
            "mae": self.mae,
            "me": self.me,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "ms_ssim": self.ms_ssim,
            "mask_voxels": self.mask_voxels,
            "ssim_window": self.ssim_window,
            "hu_range": list(HU_RANGE),
            "spatial_frequency_pred": self.spatial_frequency_pred,
            "spatial_frequency_ref": self.spatial_frequency_ref,
            "scd": self.scd,
            "scd_sources": self.scd_sources,
            "per_tissue": self.per_tissue,
            "per_slice": self.per_slice,
        }
        return {k: clean(v) for k, v in numbers.items()}


def _resample_onto(pred: Volume, ref: Volume) -> Volume:
    import SimpleITK as sitk

    img = sitk.Resample(pred.to_sitk(), ref.to_sitk(), sitk.Transform(), sitk.sitkLinear,
                        HU_RANGE[0], sitk.sitkFloat32)
    return ref.with_array(sitk.GetArrayFromImage(img), synthetic=pred.synthetic)


def evaluate_pair(
    pred: Volume,
    ref: Volume,
    mask: Volume | PixelArray | BoolArray | None = None,
    window: SsimWindow | str = SsimWindow.UNIFORM,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> PairedReport:
    """All paired metrics for a synthetic volume against its reference.

    Args:
        pred: synthetic CT (HU); resampled onto the reference grid if the grids differ.
        ref: reference CT (HU).
        mask: body mask (non-zero = inside); computed by :func:`body_mask` when None.
        window: SSIM window (``uniform`` as SynthRAD, or ``gaussian``).
        progress: progress callback.
        cancel: cancel token checked between slices.
    """
    window = SsimWindow(window)
    if pred.shape != ref.shape:
        pred = _resample_onto(pred, ref)
    p = np.asarray(pred.array, np.float64)
    r = np.asarray(ref.array, np.float64)
    if mask is None:
        m = body_mask(ref)
    else:
        m = np.greater(np.asarray(mask.array if isinstance(mask, Volume) else mask), 0)
        if m.shape != r.shape:
            raise ValueError(f"mask shape {m.shape} differs from the reference {r.shape}")
    # Padding outside the scanned field of view (PixelPaddingValue, often -2048 or -3024 HU)
    # is not tissue: never scored, whichever mask was given.
    m = m & (r >= PADDING_BELOW)
    if not m.any():
        raise ValueError("the body mask is empty: nothing to evaluate")
    progress(Progress(0, 3 + r.shape[0], "SSIM"))
    pp, rr = _prepare(p, r, m)
    smap, _ = ssim_map(pp, rr, DATA_RANGE, window)
    pad = _pad(window)
    ssim_value = _masked_ssim_mean(smap, m, pad)
    # per-slice SSIM: the 3D map's masked mean in the slice (border cropped in-plane)
    crop_m = np.zeros_like(m)
    crop_m[tuple(slice(pad, d - pad) if d > 2 * pad else slice(None) for d in m.shape)] = True
    crop_m &= m
    per_slice: list[dict[str, float]] = []
    ms_vals: list[float] = []
    for k in range(r.shape[0]):
        if cancel is not None:
            cancel.check()
        mk = m[k]
        if mk.any():
            entry: dict[str, float] = {
                "slice": float(k),
                "mae": mae(p[k], r[k], mk),
                "me": mean_error(p[k], r[k], mk),
                "psnr": psnr(p[k], r[k], mk),
                "ssim": float(smap[k][crop_m[k]].mean()) if crop_m[k].any() else float("nan"),
                "voxels": float(mk.sum()),
            }
            if min(pp.shape[1:]) >= 11:
                entry["ms_ssim"] = ms_ssim_2d(pp[k], rr[k])
                ms_vals.append(entry["ms_ssim"])
            per_slice.append(entry)
        progress(Progress(k + 1, 3 + r.shape[0], f"slice {k + 1}/{r.shape[0]}"))
    per_tissue: dict[str, dict[str, float]] = {}
    for name, (lo, hi) in TISSUES.items():
        t = m & (r >= lo) & (r < hi)
        if t.any():
            per_tissue[name] = {
                "mae": mae(p, r, t),
                "me": mean_error(p, r, t),
                "psnr": psnr(p, r, t),
                "ssim": _masked_ssim_mean(smap, t, pad),
                "voxels": float(t.sum()),
            }
    err = ref.with_array((p - r).astype(np.float32), description="error (pred - ref), HU",
                         synthetic=True, units="HU")
    report = PairedReport(
        mae=mae(p, r, m),
        me=mean_error(p, r, m),
        psnr=psnr(p, r, m),
        ssim=ssim_value,
        ms_ssim=float(np.mean(ms_vals)) if ms_vals else float("nan"),
        mask_voxels=int(m.sum()),
        ssim_window=str(window),
        per_slice=per_slice,
        per_tissue=per_tissue,
        error=err,
        mask=m,
        spatial_frequency_pred=volume_spatial_frequency(p),
        spatial_frequency_ref=volume_spatial_frequency(r),
    )
    progress(Progress(3 + r.shape[0], 3 + r.shape[0], "done"))
    return report


def scaled_metrics(pred: PixelArray, ref: PixelArray, mask: BoolArray, value_range: tuple[float, float],
                   window: SsimWindow = SsimWindow.UNIFORM) -> dict[str, float]:
    """MAE, ME, PSNR and SSIM on any fixed intensity scale (the SynthRAD definitions with
    ``value_range`` in place of [-1024, 3000] HU): for targets that are not CT in HU, such
    as a synthetic MR on its display scale."""
    lo, hi = value_range
    rng = hi - lo
    p = np.clip(np.asarray(pred, np.float64), lo, hi)
    r = np.clip(np.asarray(ref, np.float64), lo, hi)
    m = np.asarray(mask, bool)
    if not m.any():
        raise ValueError("the mask is empty: nothing to evaluate")
    d = p[m] - r[m]
    mse = float(np.mean(d**2))
    smap, _ = ssim_map(np.where(m, p, lo) - lo, np.where(m, r, lo) - lo, rng, window)
    return {"mae": float(np.abs(d).mean()), "me": float(d.mean()),
            "psnr": math.inf if mse == 0 else 10.0 * math.log10(rng**2 / mse),
            "ssim": _masked_ssim_mean(smap, m, _pad(window))}
