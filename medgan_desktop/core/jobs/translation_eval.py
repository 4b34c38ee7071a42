"""Held-out evaluation of a translation run, for every task.

After training, :func:`evaluate_heldout` runs the trained model the way a user would on
each held-out part and scores it against the real target in the target's units (SynthRAD
MAE/ME/PSNR/SSIM; a CT in HU over [-1024, 3000], an MR on its display scale 0..1000
inside the body mask):

* registered tasks (MR -> CT, CT -> MR, T1 -> T2): the held-out source is translated and
  compared with its registered target;
* low-dose denoising: a simulated low-dose copy of the held-out CT (a fixed seed, other
  than training's) is denoised and compared with the original; the noisy input itself and
  a Gaussian filter of it are scored alongside, as references;
* through-plane super-resolution: the held-out CT is averaged into thick slices, the model
  restores the thin ones on the finer grid, and the result is compared with the original
  thin slices it never saw; linear and cubic interpolation are scored alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE
from medgan_desktop.core.imaging.slices import volume_slices
from medgan_desktop.core.imaging.tasks import (
    MR_DISPLAY_RANGE,
    Degradation,
    TranslationTask,
    interpolate_through_plane,
    low_dose,
    thick_slices,
)
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.metrics.paired import evaluate_pair, scaled_metrics
from medgan_desktop.core.models.runs import LoadedModel, load_model
from medgan_desktop.core.progress import CancelToken, ProgressCallback, Stage, no_progress, stage
from medgan_desktop.core.training.devices import select_device
from medgan_desktop.core.training.pairs import PairedVolume
from medgan_desktop.core.training.slice_data import pair_mask
from medgan_desktop.core.types import BoolArray, JsonObject
from medgan_desktop.core.volume import Volume

#: Seed of the held-out low-dose noise (training draws its own).
HELDOUT_NOISE_SEED = 1_000_003
#: The Gaussian filter the denoiser is judged against (in-plane sigma, pixels).
GAUSSIAN_SIGMA = 1.0


def display_mr(v: Volume) -> Volume:
    """A real MR on the synthetic MR's display scale (its 0.5..99.5 percentiles -> 0..1000)."""
    arr = np.asarray(v.array, dtype=np.float32)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    scaled = (arr - lo) / max(float(hi - lo), 1e-6) * (MR_DISPLAY_RANGE[1] - MR_DISPLAY_RANGE[0])
    return replace(v, array=np.clip(scaled + MR_DISPLAY_RANGE[0], *MR_DISPLAY_RANGE).astype(np.float32))


def score(pred: Volume, ref: Volume, mask: BoolArray, task: TranslationTask) -> JsonObject:
    """The task's metrics of ``pred`` against ``ref`` (same grid) inside ``mask``."""
    if task.target_modality == "CT":
        rep = evaluate_pair(pred, ref, mask=mask)
        return {"mae": rep.mae, "me": rep.me, "psnr": rep.psnr, "ssim": rep.ssim,
                "mask_voxels": rep.mask_voxels}
    out: JsonObject = dict(scaled_metrics(pred.array, ref.array, mask, MR_DISPLAY_RANGE))
    out["mask_voxels"] = int(np.asarray(mask).sum())
    return out


def _k_part(v: Volume, ks: Sequence[int]) -> Volume:
    return volume_slices(v, ks)


def _j_part(v: Volume, js: Sequence[int]) -> Volume:
    return replace(v, array=np.ascontiguousarray(np.asarray(v.array)[:, js[0]:js[-1] + 1, :]))


def heldout_case(model: LoadedModel, pair: PairedVolume, slices: Sequence[int], task: TranslationTask,
                 cancel: CancelToken | None = None) -> JsonObject:
    """Run and score one held-out part (see the module docs); references alongside."""
    if task.degradation == Degradation.THICK_SLICES:
        thin = _j_part(pair.target, slices) if task.slice_axis == "coronal" else pair.target
        thick = thick_slices(thin, task.factor)
        pred = translate(thick, model, cancel=cancel)
        start = (task.factor - 1) // 2  # the thick centres lie on thin slices (odd factor)
        m = pred.shape[0]
        ref = replace(thin, array=np.asarray(thin.array)[start:start + m])
        mask = pair_mask(ref, ref, task)
        refs = {f"{name} interpolation": interpolate_through_plane(thick, task.factor, order)
                for name, order in (("linear", 1), ("cubic", 3))}
    elif task.degradation == Degradation.LOW_DOSE:
        ref = _k_part(pair.target, slices)
        noisy = low_dose(ref, task.dose, HELDOUT_NOISE_SEED)
        pred = translate(noisy, model, cancel=cancel)
        mask = pair_mask(ref, ref, task)
        smooth = ndimage.gaussian_filter(np.asarray(noisy.array), sigma=(0.0, GAUSSIAN_SIGMA, GAUSSIAN_SIGMA))
        refs = {"noisy input": noisy,
                f"Gaussian filter (sigma {GAUSSIAN_SIGMA:g} px)": replace(noisy, array=smooth.astype(np.float32))}
    else:
        syn = translate(pair.source, model, cancel=cancel)
        pred, ref = _k_part(syn, slices), _k_part(pair.target, slices)
        if task.target_modality == "MR":
            ref = display_mr(ref)
        mask = pair_mask(_k_part(pair.source, slices), ref, task)
        refs = {}
    out = score(pred, ref, mask, task)
    out["references"] = {name: score(v, ref, mask, task) for name, v in refs.items()}
    out["patient"] = pair.patient
    out["slices"] = len(slices)
    return out


def evaluate_heldout(run_dir: Path, test_pairs: Sequence[tuple[PairedVolume, list[int]]], task: TranslationTask,
                     device: str = "cpu", progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> JsonObject:
    """Every held-out part scored, pooled by mask voxels (see the module docs)."""
    model = load_model(run_dir, select_device(device if device != "auto" else "cpu"))
    cases: list[JsonObject] = []
    for i, (pair, slices) in enumerate(test_pairs):
        stage(progress, Stage.EVALUATE, f"evaluating held-out part {i + 1}/{len(test_pairs)}")
        cases.append(heldout_case(model, pair, slices, task, cancel))
    w = np.asarray([float(c["mask_voxels"]) for c in cases])
    w = w / w.sum()

    def pooled(key: str, rows: Sequence[JsonObject]) -> float:
        return float(sum(wi * float(r[key]) for wi, r in zip(w, rows, strict=True)))

    out: JsonObject = {k: pooled(k, cases) for k in ("mae", "me", "psnr", "ssim")}
    names = list(cases[0]["references"]) if cases else []
    out["references"] = {n: {k: pooled(k, [c["references"][n] for c in cases]) for k in ("mae", "psnr", "ssim")}
                         for n in names}
    out["per_case"] = cases
    out["task"] = task.key
    units = "HU" if task.target_modality == "CT" else "MR display units (0-1000 = the target's 0.5-99.5 percentiles)"
    rng = f"[{CT_HU_RANGE[0]:g}, {CT_HU_RANGE[1]:g}] HU" if task.target_modality == "CT" else "0-1000"
    out["definition"] = (f"SynthRAD: MAE/ME in {units} inside the body mask; PSNR over {rng}; 3D SSIM; "
                         f"{task.describe()}")
    return out
