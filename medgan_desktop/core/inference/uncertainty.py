"""Per-voxel uncertainty of a synthetic image, from test-time augmentation.

The model translates the source several times under perturbations it should not care
about: a left-right mirror (undone on the output) and a small seeded Gaussian noise on the
source (2 % of its 0.5-99.5 percentile range), alone and together. The standard
deviation of the predictions at each voxel, in the target's units (HU for a synthetic
CT), is the uncertainty map: where the model's answer moves under such changes, it is
not to be trusted. It is an estimate of the model's instability, not a calibrated error
bar; :func:`calibration` measures on held-out data how well it ranks the real error.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy.stats import spearmanr

from medgan_desktop.core.imaging.masks import body_mask, ct_body_mask
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.models.runs import LoadedModel
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import BoolArray, Float32Array, JsonObject
from medgan_desktop.core.volume import Volume

#: The default "uncertain" level of the summary (HU of standard deviation for a CT).
THRESHOLD_HU = 50.0
#: The perturbations: (mirror left-right, add noise).
VARIANTS = ((False, False), (True, False), (False, True), (True, True))
NOISE_SHARE = 0.02


def _perturbed(volume: Volume, flip: bool, noise: bool, seed: int) -> Volume:
    a = np.asarray(volume.array, dtype=np.float32)
    if noise:
        lo, hi = np.percentile(a[:: max(1, a.shape[0] // 16)], (0.5, 99.5))
        rng = np.random.default_rng(seed)
        a = a + rng.normal(0.0, NOISE_SHARE * float(hi - lo), a.shape).astype(np.float32)
    if flip:
        a = a[..., ::-1]
    return replace(volume, array=np.ascontiguousarray(a))


def tta_uncertainty(
    volume: Volume,
    model: LoadedModel,
    *,
    device: torch.device | None = None,
    batch_size: int = 8,
    seed: int = 0,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Volume:
    """The uncertainty map of ``model`` on ``volume`` (see the module docs): a volume on
    the output grid, in the target's units, marked synthetic (it is derived from one)."""
    preds: list[Float32Array] = []
    last: Volume | None = None
    for n, (flip, noise) in enumerate(VARIANTS):
        if cancel is not None:
            cancel.check()
        progress(Progress(n, len(VARIANTS), f"uncertainty: prediction {n + 1}/{len(VARIANTS)}"))
        out = translate(_perturbed(volume, flip, noise, seed), model, batch_size=batch_size,
                        device=device, cancel=cancel)
        a = np.asarray(out.array, dtype=np.float32)
        preds.append(np.ascontiguousarray(a[..., ::-1]) if flip else a)
        last = out
    assert last is not None
    progress(Progress(len(VARIANTS), len(VARIANTS), "uncertainty map ready"))
    sd = np.std(np.stack(preds), axis=0).astype(np.float32)
    return replace(
        last,
        array=sd,
        description=f"UNCERTAINTY (SD, {'HU' if last.modality == 'CT' else last.units}) of {last.description}",
        synthetic=True,
        meta={**last.meta, "map": "uncertainty", "variants": len(VARIANTS),
              "method": "test-time augmentation: left-right mirror and 2 % source noise"},
    )


def body_of(synthetic: Volume) -> BoolArray:
    """The body mask the summaries use (CT: above -500 HU; MR: Otsu)."""
    return ct_body_mask(synthetic) if synthetic.modality == "CT" else body_mask(synthetic)


def summary(uncertainty: Volume, synthetic: Volume, threshold: float = THRESHOLD_HU) -> JsonObject:
    """Share of body voxels whose uncertainty is above ``threshold``, and its median and
    95th percentile inside the body."""
    mask = body_of(synthetic)
    vals = np.asarray(uncertainty.array)[mask] if mask.any() else np.asarray(uncertainty.array).ravel()
    return {
        "threshold": float(threshold),
        "share_above": float(np.mean(vals > threshold)) if vals.size else 0.0,
        "median": float(np.median(vals)) if vals.size else 0.0,
        "p95": float(np.percentile(vals, 95)) if vals.size else 0.0,
        "units": "HU" if synthetic.modality == "CT" else synthetic.units,
        "body_voxels": int(mask.sum()),
    }


def describe(s: JsonObject) -> str:
    """One sentence for the panel and the CLI."""
    return (f"uncertainty: {100 * float(s['share_above']):.1f} % of body voxels above "
            f"{float(s['threshold']):g} {s['units']} (median {float(s['median']):.1f}, "
            f"95th percentile {float(s['p95']):.1f} {s['units']})")


def calibration(uncertainty: Volume, synthetic: Volume, reference: Volume,
                mask: BoolArray | None = None, max_voxels: int = 200_000) -> JsonObject:
    """How well the map predicts the real error against ``reference`` (same grid): the
    Spearman correlation of uncertainty with |error| inside the body, and the share of
    voxels whose error is beyond twice their uncertainty (about 5 % for a calibrated
    Gaussian estimate)."""
    m = body_of(synthetic) if mask is None else mask
    u = np.asarray(uncertainty.array, dtype=np.float64)[m]
    e = np.abs(np.asarray(synthetic.array, dtype=np.float64) - np.asarray(reference.array, dtype=np.float64))[m]
    if u.size > max_voxels:
        pick = np.random.default_rng(0).choice(u.size, size=max_voxels, replace=False)
        u, e = u[pick], e[pick]
    rho = float(spearmanr(u, e).statistic) if u.size > 2 and np.ptp(u) > 0 else float("nan")
    return {"spearman": rho, "share_beyond_2sd": float(np.mean(e > 2.0 * u)) if u.size else float("nan"),
            "voxels": int(u.size)}
