"""MR -> CT translation: quality per method against a U-Net baseline, and speed.

Quality (SynthRAD definitions: MAE in HU inside the CT body mask, PSNR over
[-1024, 3000] HU, 3D SSIM) on the MRI-DIR phantom pair (real GE T2 MR and CT of
one porcine phantom, CT rigidly registered onto the MR grid): every translation
method is trained with the same budget (steps x batch, same image size, same
2.5D context) on the lower part of the volume and scored on a held-out slab at
the top (a gap of context + 1 slices between them). ``unet_l1`` is the plain
U-Net regression baseline.

Speed: translating a 200-slice 256 x 256 MR volume with ``translate()`` and the
default model (``models/mrct_phantom_pix2pix``), against the same network run
the plain eager way (NCHW memory format, batch 16, no other changes) and against
the issue's reference point, a 64-filter pix2pix U-Net-256 at batch 16; and the
distilled student against its teacher (time and held-out MAE).

Run ``python benchmarks/bench_translation.py --json out.json`` (``--quick`` for
a short run). Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.gan.networks.unet import UNetGenerator
from medgan_desktop.core.volume import Volume

REPO = Path(__file__).resolve().parents[1]
PHANTOM = REPO.parent / "shared" / "data" / "mridir_phantom"
DEFAULT_MODEL = REPO / "models" / "mrct_phantom_pix2pix"
STUDENT_MODEL = REPO / "models" / "mrct_phantom_student"
HEAD_TEACHER = REPO / "models" / "head_mrct_cyclegan"
HEAD_STUDENT = REPO / "models" / "head_mrct_student"
#: ``distilled`` is a half-width student of the ``pix2pix`` run trained just before it in
#: the same benchmark (same budget, distillation augmentation), so it must come after it.
METHODS = ("unet_l1", "pix2pix", "distilled", "cyclegan", "unit")


def _phantom_pair() -> Any:
    from medgan_desktop.core.training.pairs import load_pair

    if not (PHANTOM / "MR_T2_DICOM").is_dir():
        raise FileNotFoundError(f"MRI-DIR phantom not found at {PHANTOM}")
    return load_pair(
        PHANTOM / "MR_T2_DICOM", PHANTOM / "CT_rigid_to_MR_grid.nii.gz", patient="phantom"
    )


def _method_options(name: str, run_root: Path | None = None) -> dict[str, Any]:
    if name == "distilled":
        assert run_root is not None
        return {"mask_weight": 1.0, "teacher": str(run_root / "pix2pix"), "augment": "affine,intensity"}
    if name in ("cyclegan",):
        return {"n_blocks": 6}
    if name == "unit":
        return {"n_res": 2}
    return {"mask_weight": 1.0}


def bench_quality(quick: bool, device: str) -> dict[str, Any]:
    """Train each method with the same budget on the phantom and score the held-out slab."""
    from medgan_desktop.core.imaging.slices import volume_slab
    from medgan_desktop.core.jobs.train_translation import evaluate_heldout
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.loop import train
    from medgan_desktop.core.training.pairs import PairedVolume, slab_split
    from medgan_desktop.core.training.slice_data import PairedSliceDataset, UnpairedSliceDataset

    size, steps, batch, context, filters = (64, 150, 8, 1, 16) if quick else (128, 1500, 8, 1, 16)
    pair = _phantom_pair()
    train_idx, test_idx = slab_split(pair.source.shape[0], 0.25, gap=context + 1)
    train_pair = PairedVolume(pair.source, pair.target, pair.patient, tuple(train_idx))
    paired = PairedSliceDataset([train_pair], size, context, flip=True)
    unpaired = UnpairedSliceDataset(
        [volume_slab(pair.source, train_idx)], [volume_slab(pair.target, train_idx)], size, context
    )
    out: dict[str, Any] = {
        "data": "MRI-DIR phantom (T2 MR -> CT rigidly registered), train slices "
        f"{train_idx[0]}-{train_idx[-1]}, held-out slab {test_idx[0]}-{test_idx[-1]}",
        "budget": {
            "size": size,
            "steps": steps,
            "batch": batch,
            "context_slices": context,
            "base_filters": filters,
        },
        "methods": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in METHODS:
            ds = unpaired if name in ("cyclegan", "unit") else paired
            mcfg = MethodConfig(
                size=size,
                in_channels=2 * context + 1,
                base_filters=max(4, filters // 2) if name == "distilled" else filters,
                extra=_method_options(name, Path(tmp)),
            )
            tcfg = TrainConfig(
                steps=steps,
                batch_size=batch,
                checkpoint_every=steps,
                sample_every=0,
                log_every=max(1, steps // 10),
                device=device,
                threads=torch.get_num_threads(),
                keep_checkpoints=1,
                data=DataConfig(kind="volumes", size=size, modality="MR"),
            )
            run_dir = Path(tmp) / name
            t0 = time.perf_counter()
            try:
                train(name, mcfg, tcfg, ds, run_dir)
                seconds = time.perf_counter() - t0
                m = evaluate_heldout(run_dir, [(pair, test_idx)], device)
                out["methods"][name] = {
                    "mae_hu": m["mae"],
                    "psnr_db": m["psnr"],
                    "ssim": m["ssim"],
                    "train_seconds": seconds,
                }
            except Exception as exc:  # report and go on with the other methods
                out["methods"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    base = out["methods"].get("unet_l1", {}).get("mae_hu")
    if base:
        for r in out["methods"].values():
            if "mae_hu" in r:
                r["mae_vs_baseline"] = r["mae_hu"] / base
    return out


BRAIN = REPO.parent / "shared" / "data" / "paired_mrct_2d"


def _brain_patient(pid: str, size: int = 128) -> Any:
    """T2 slices and their CT slices registered in 2D (similarity + affine), as one volume pair.

    The PNGs are 8-bit and already windowed (not HU): grey levels 0..255 are mapped
    linearly onto [-1024, 3000] so the HU pipeline applies; MAE is reported back in
    grey levels.
    """
    import torch.nn.functional as F
    from PIL import Image

    from medgan_desktop.core.imaging.registration import register_2d
    from medgan_desktop.core.training.pairs import PairedVolume

    d = BRAIN / f"Patient_{pid}"
    src, tgt = [], []
    for f in sorted((d / "T2").glob("*.png")):
        t2 = np.asarray(Image.open(f).convert("L"), dtype=np.float32)
        ct = np.asarray(Image.open(d / "CT" / f.name).convert("L"), dtype=np.float32)

        def small(a: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(a)[None, None]
            return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True)[
                0, 0
            ].numpy()

        t2s, cts = small(t2), small(ct)
        reg, _ = register_2d(t2s, cts, iterations=100, fill=0.0)
        src.append(t2s)
        tgt.append(reg / 255.0 * 4024.0 - 1024.0)
    mr = Volume(np.stack(src), modality="MR", units="scanner")
    ctv = Volume(np.stack(tgt).astype(np.float32), modality="CT", units="HU")
    return PairedVolume(mr, ctv, pid)


def bench_quality_brain(quick: bool, device: str) -> dict[str, Any]:
    """2D brain pairs: train on patients 01-05, test on 06 (registered per slice in 2D)."""
    from medgan_desktop.core.jobs.train_translation import evaluate_heldout
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.loop import train
    from medgan_desktop.core.training.slice_data import PairedSliceDataset, UnpairedSliceDataset

    size, steps, batch, filters = (64, 150, 8, 16) if quick else (128, 1500, 8, 16)
    train_pairs = [_brain_patient(p, size) for p in ("01", "02", "03", "04", "05")]
    test = _brain_patient("06", size)
    paired = PairedSliceDataset(train_pairs, size, 0, flip=True)
    unpaired = UnpairedSliceDataset(
        [p.source for p in train_pairs], [p.target for p in train_pairs], size, 0
    )
    out: dict[str, Any] = {
        "data": "paired_mrct_2d T2 -> CT (8-bit, windowed; unverified licence, evaluation only): "
        "train patients 01-05, test 06; MAE in grey levels (0-255)",
        "budget": {"size": size, "steps": steps, "batch": batch, "base_filters": filters},
        "methods": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in METHODS:
            ds = unpaired if name in ("cyclegan", "unit") else paired
            mcfg = MethodConfig(
                size=size,
                in_channels=1,
                base_filters=max(4, filters // 2) if name == "distilled" else filters,
                extra=_method_options(name, Path(tmp)),
            )
            tcfg = TrainConfig(
                steps=steps,
                batch_size=batch,
                checkpoint_every=steps,
                sample_every=0,
                log_every=max(1, steps // 10),
                device=device,
                threads=torch.get_num_threads(),
                keep_checkpoints=1,
                data=DataConfig(kind="volumes", size=size, modality="MR"),
            )
            try:
                train(name, mcfg, tcfg, ds, Path(tmp) / name)
                m = evaluate_heldout(
                    Path(tmp) / name, [(test, list(range(test.source.shape[0])))], device
                )
                out["methods"][name] = {
                    "mae_grey": m["mae"] * 255.0 / 4024.0,
                    "psnr_db": m["psnr"],
                    "ssim": m["ssim"],
                }
            except Exception as exc:  # report and go on with the other methods
                out["methods"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _mr_volume(n_slices: int, size: int = 256) -> Volume:
    """A ``n_slices`` x 256 x 256 MR built from the real phantom MR (resampled, slices repeated)."""
    import torch.nn.functional as F

    from medgan_desktop.core.io import open_volume

    mr = open_volume(PHANTOM / "MR_T2_DICOM")
    a = torch.from_numpy(np.asarray(mr.array, dtype=np.float32))[:, None]
    a = F.interpolate(a, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[
        :, 0
    ].numpy()
    reps = int(np.ceil(n_slices / a.shape[0]))
    arr = np.concatenate([a] * reps)[:n_slices]
    sp = (mr.spacing[0] * mr.shape[2] / size, mr.spacing[1] * mr.shape[1] / size, mr.spacing[2])
    return Volume(arr, spacing=sp, modality="MR", units="scanner", description="bench MR")


def _time_translate(volume: Volume, model_dir: Path, device: str, reps: int) -> float:
    """Best of ``reps`` whole-pipeline ``translate()`` calls (after one warm-up)."""
    return _time_translate_pair(volume, [model_dir], device, reps)[0]


def _time_translate_pair(volume: Volume, model_dirs: list[Path], device: str, reps: int) -> list[float]:
    """Best-of-``reps`` time of each model, the models *interleaved* rep by rep.

    On a shared machine the load drifts over seconds; timing teacher and student in
    alternation and keeping each one's best run compares them under the same conditions.
    """
    from medgan_desktop.core.inference.translate import translate
    from medgan_desktop.core.models.runs import load_model

    models = [load_model(d, device) for d in model_dirs]
    for m in models:
        translate(Volume(volume.array[:8], modality="MR"), m, batch_size=8)  # warm-up
    best = [float("inf")] * len(models)
    for _ in range(reps):
        for i, m in enumerate(models):
            t0 = time.perf_counter()
            translate(volume, m, batch_size=16)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


@torch.no_grad()
def _time_eager(net: torch.nn.Module, n: int, channels: int, size: int, batch: int = 16) -> float:
    """The plain eager way: NCHW, batches of ``batch`` slices, no resizing or normalisation."""
    net.eval()
    x = torch.randn(batch, channels, size, size)
    net(x[:2])
    t0 = time.perf_counter()
    for k in range(0, n, batch):
        net(x[: min(batch, n - k)])
    return time.perf_counter() - t0


def bench_speed(quick: bool, device: str) -> dict[str, Any]:
    from medgan_desktop.core.gan.methods.pix2pix import build_unet
    from medgan_desktop.core.models.runs import load_run

    n = 48 if quick else 200
    reps = 1 if quick else 2
    vol = _mr_volume(n)
    out: dict[str, Any] = {
        "slices": n,
        "slice_size": 256,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    if DEFAULT_MODEL.is_dir():
        info = load_run(DEFAULT_MODEL)
        out["default_model"] = DEFAULT_MODEL.name
        out["default_translate_s"] = _time_translate(vol, DEFAULT_MODEL, device, reps)
        same = build_unet(info.method_config, 0.0)
        out["same_arch_eager_s"] = _time_eager(
            same, n, info.method_config.in_channels, info.method_config.size
        )
    ref = UNetGenerator(1, 1, base_filters=64, depth=8, norm="batch")
    out["reference_unet256_64f_eager_s"] = _time_eager(ref, n, 1, 256)
    if STUDENT_MODEL.is_dir() and DEFAULT_MODEL.is_dir():
        # Teacher and student interleaved: the speed-up is measured under the same load.
        t_s, s_s = _time_translate_pair(vol, [DEFAULT_MODEL, STUDENT_MODEL], device, 3 * reps)
        out["teacher_translate_interleaved_s"] = t_s
        out["student_translate_s"] = s_s
        out["student_speedup"] = t_s / s_s
        for key, d in (("teacher", DEFAULT_MODEL), ("student", STUDENT_MODEL)):
            f = d / "heldout_metrics.json"
            if f.is_file():
                out[f"{key}_heldout_mae_hu"] = json.loads(f.read_text())["mae"]
        if "teacher_heldout_mae_hu" in out and "student_heldout_mae_hu" in out:
            out["student_mae_vs_teacher"] = (
                out["student_heldout_mae_hu"] / out["teacher_heldout_mae_hu"]
            )
    if HEAD_TEACHER.is_dir() and HEAD_STUDENT.is_dir():
        t_s, s_s = _time_translate_pair(vol, [HEAD_TEACHER, HEAD_STUDENT], device, 3 * reps)
        out["head_teacher_translate_s"] = t_s
        out["head_student_translate_s"] = s_s
        out["head_student_speedup"] = t_s / s_s
    if n != 200:
        for k in list(out):
            if k.endswith("_s"):
                out[k.replace("_s", "_per_200_slices_s")] = out[k] * 200 / n
    return out


def run(
    quick: bool = True, device: str = "cpu", threads: int | None = None, only: str = ""
) -> dict[str, Any]:
    """All benchmarks (``only``: "quality", "brain" or "speed"); a JSON-serialisable report."""
    if threads is not None:
        torch.set_num_threads(threads)
    report: dict[str, Any] = {"quick": quick, "torch": torch.__version__}
    if only in ("", "speed"):
        report["speed"] = bench_speed(quick, device)
    if only in ("", "quality"):
        report["quality"] = bench_quality(quick, device)
    if only in ("", "brain"):
        report["quality_brain_2d"] = bench_quality_brain(quick, device)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--only", choices=("", "quality", "speed", "brain"), default="")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    rep = run(args.quick, args.device, args.threads, args.only)
    text = json.dumps(rep, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
