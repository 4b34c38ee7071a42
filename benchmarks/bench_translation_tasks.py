"""The other image-to-image tasks: held-out quality per preset against its simple reference.

Every model is trained by the product's own job (``run_train_translation``, what
``medgan translate-train --task`` and the Train panel run) at the same CPU budget, on data
split by patient, and scored by the job's held-out evaluation in the target's units
(:mod:`medgan_desktop.core.jobs.translation_eval`):

* ``ct_to_mr`` and ``t1_to_t2``: the brain patients of ``paired_mrct_2d`` (slice-matched CT,
  T1, T2 PNG, registered per slice); patients 05 and 06 held out, 01-04 train. The GAN
  (pix2pix) against the reference, the L1 U-Net, trained the same way in the same run.
  MR is scored on its display scale (0..1000 = the real MR's 0.5..99.5 percentiles).
* ``ct_denoise`` and ``ct_superres``: three real CTs (a human head, the MRI-DIR phantom, a
  TotalSegmentator abdomen), two folds: each of head and abdomen held out once, the model
  trained on the other two. The L1 U-Net trained on the task's pairs against the noisy
  input and a Gaussian filter (denoising) or linear and cubic interpolation
  (super-resolution), all scored on the same held-out CT.

    python benchmarks/bench_translation_tasks.py [--quick] [--budget CPU_SECONDS] [--json OUT] [--md OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BRAIN_TRAIN = ("01", "02", "03", "04")
BRAIN_TEST = ("05", "06")
CTS = {
    "head": ("head_ct_mr/invesalius_cranium_headCT.nii.gz", 2),
    "phantom": ("mridir_phantom/CT_native_half_res.nii.gz", 2),
    "abdomen": ("seg_totalsegmentator/example_ct.nii.gz", 1),
}
CT_FOLDS = (("head", ("phantom", "abdomen")), ("abdomen", ("head", "phantom")))


def _train(spec_kw: dict[str, Any], out: Path) -> dict[str, Any]:
    from medgan_desktop.core.jobs.train_translation import TranslationTrainSpec, run_train_translation

    spec = TranslationTrainSpec(out=str(out), device="cpu", seed=0, **spec_kw)
    t0 = time.perf_counter()
    res = run_train_translation(spec)
    assert res.heldout is not None, "no held-out evaluation"
    return {"steps": res.summary.step, "cpu_s": round(res.summary.cpu_seconds, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "stopped_by": str(res.summary.stopped_by),
            "heldout": {k: res.heldout[k] for k in ("mae", "psnr", "ssim")},
            "references": res.heldout.get("references", {}), "split": res.split,
            "definition": res.heldout["definition"]}


def _brain_pairs(source: str, target: str, patients: tuple[str, ...], n_slices: int | None) -> tuple[Any, ...]:
    from medgan_desktop.core.jobs.train_translation import PairSpec

    out = []
    for p in patients:
        root = DATA / "paired_mrct_2d" / f"Patient_{p}"
        if not root.is_dir():
            raise FileNotFoundError(f"benchmark data missing: {root}")
        out.append(PairSpec(str(root / source), str(root / target), patient=f"Patient_{p}"))
    return tuple(out)


def _subset(pairs: tuple[Any, ...], n_slices: int, tmp: Path) -> tuple[Any, ...]:
    """The middle ``n_slices`` of each patient's folders (quick runs)."""
    from medgan_desktop.core.jobs.train_translation import PairSpec

    out = []
    for ps in pairs:
        dirs = []
        for side in (ps.mr, ps.ct):
            src = Path(side)
            files = sorted(src.glob("*.png"))
            mid = len(files) // 2
            dst = tmp / ps.patient / src.name
            dst.mkdir(parents=True, exist_ok=True)
            for f in files[max(0, mid - n_slices // 2): mid + (n_slices + 1) // 2]:
                shutil.copy(f, dst / f.name)
            dirs.append(str(dst))
        out.append(PairSpec(dirs[0], dirs[1], patient=ps.patient))
    return tuple(out)


def _ct_files(tmp: Path, quick: bool) -> dict[str, Path]:
    """The real CTs, shrunk in-plane (head and phantom 2x; quick runs 4x and 40 slices)."""
    out = {}
    for name, (rel, shrink) in CTS.items():
        path = DATA / rel
        if not path.is_file():
            raise FileNotFoundError(f"benchmark data missing: {path}")
        im = sitk.ReadImage(str(path))
        f = shrink * (2 if quick else 1)
        im = sitk.Shrink(im, [f, f, 1])
        if quick:
            nz = im.GetSize()[2]
            im = im[:, :, max(0, nz // 2 - 20): nz // 2 + 20]
        dst = tmp / f"{name}_ct.nii.gz"
        sitk.WriteImage(sitk.Cast(im, sitk.sitkInt16), str(dst))
        out[name] = dst
    return out


ALL_TASKS = ("t1_to_t2", "ct_to_mr", "ct_denoise", "ct_superres")


def run(quick: bool = False, budget: float = 0.0, tasks: tuple[str, ...] = ALL_TASKS) -> dict[str, Any]:
    from medgan_desktop.core.jobs.train_translation import PairSpec

    budget = budget or (40.0 if quick else 300.0)
    size = 64 if quick else 128
    common = {"size": size, "steps": 100_000, "batch": 8, "cpu_seconds": budget, "threads": 0}
    out: dict[str, Any] = {"cpu_budget_s": budget, "size": size, "quick": quick, "tasks": {}}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for task, source, target in (("t1_to_t2", "T1", "T2"), ("ct_to_mr", "CT", "T1")):
            if task not in tasks:
                continue
            pairs = _brain_pairs(source, target, BRAIN_TRAIN + BRAIN_TEST, None)
            if quick:
                pairs = _subset(pairs, 6, tmp / task)
            res: dict[str, Any] = {"data": "paired_mrct_2d brain, train 01-04, held out 05-06", "models": {}}
            for method in ("unet_l1", "pix2pix"):
                print(f"[bench] {task}: {method} for {budget:g} CPU-s", file=sys.stderr, flush=True)
                res["models"][method] = _train(
                    {**common, "task": task, "method": method, "pairs": pairs, "register": True,
                     "heldout_patients": tuple(f"Patient_{p}" for p in BRAIN_TEST)}, tmp / f"{task}_{method}")
            res["reference"] = "unet_l1"
            out["tasks"][task] = res
        cts = _ct_files(tmp, quick)
        for task in ("ct_denoise", "ct_superres"):
            if task not in tasks:
                continue
            folds = []
            for test, train in CT_FOLDS:
                print(f"[bench] {task}: held out {test}", file=sys.stderr, flush=True)
                pairs = tuple(PairSpec(str(cts[n]), "", patient=n) for n in (*train, test))
                r = _train({**common, "task": task, "method": "unet_l1", "pairs": pairs,
                            "heldout_patients": (test,)}, tmp / f"{task}_{test}")
                r["held_out_ct"] = test
                folds.append(r)
            out["tasks"][task] = {"data": "real CTs: head, phantom, abdomen; one held out per fold",
                                  "folds": folds, "reference": "see references per fold"}
    return out


def to_markdown(res: dict[str, Any]) -> str:
    lines = [f"## Other image-to-image tasks (CPU budget {res['cpu_budget_s']:g} CPU-s per model, "
             f"{res['size']} px, held-out patients)", ""]
    for task, r in res["tasks"].items():
        lines += [f"### {task}", "", f"Data: {r['data']}.", "", "| model | MAE | PSNR (dB) | SSIM | steps | CPU-s |",
                  "| --- | --- | --- | --- | --- | --- |"]
        if "models" in r:
            for name, m in r["models"].items():
                h = m["heldout"]
                lines.append(f"| {name}{' (reference)' if name == r['reference'] else ''} | {h['mae']:.1f} | "
                             f"{h['psnr']:.2f} | {h['ssim']:.3f} | {m['steps']} | {m['cpu_s']:.0f} |")
            split = next(iter(r["models"].values()))["split"]
            lines += ["", f"Split: {split}. {next(iter(r['models'].values()))['definition']}", ""]
        else:
            for f in r["folds"]:
                h = f["heldout"]
                lines.append(f"| unet_l1, held out {f['held_out_ct']} | {h['mae']:.1f} | {h['psnr']:.2f} | "
                             f"{h['ssim']:.3f} | {f['steps']} | {f['cpu_s']:.0f} |")
                for name, ref in f["references"].items():
                    lines.append(f"| {name} (reference), held out {f['held_out_ct']} | {ref['mae']:.1f} | "
                                 f"{ref['psnr']:.2f} | {ref['ssim']:.3f} | - | - |")
            lines += ["", r["folds"][0]["definition"], ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=0.0, help="CPU seconds per model (default 300; quick 40)")
    ap.add_argument("--tasks", default=",".join(ALL_TASKS), help="comma-separated subset of the tasks")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    a = ap.parse_args()
    res = run(a.quick, a.budget, tuple(a.tasks.split(",")))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    md = to_markdown(res)
    if a.md:
        a.md.write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
