"""MR -> CT on unseen brain patients: leave-one-patient-out screen of recipe candidates.

Each candidate is trained by the product's own job (``run_train_translation``, what
``medgan translate-train`` and the Train panel run) at the same CPU budget on the T1/CT
PNG slices of ``paired_mrct_2d`` brain patients, holding out one patient per fold, and
scored on that patient with the job's held-out evaluation (SynthRAD: MAE in HU inside the
head mask; the PNG grey levels map linearly to HU, so ratios between candidates are those
in grey levels). Every candidate is scored twice on the same slices for all candidates:
on all of the held-out patient's slices, and on the slices that pass the registration QC
(``--slice-qc 0.7``), since a misregistered reference slice scores the registration, not
the model.

    python benchmarks/bench_mrct_lopo.py [--budget CPU_SECONDS] [--folds 01,02,...]
        [--candidates recipe,recipe_qc,...] [--json OUT] [--md OUT]

The issue's protocol is 1,500 CPU-s with 1 thread and all six folds (about 2.5 hours per
candidate on this machine); ``--budget`` and ``--folds`` run a shorter screen, stated in
the output.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "paired_mrct_2d"
PATIENTS = ("01", "02", "03", "04", "05", "06")
QC = 0.7
#: HU per grey level of the 8-bit CT PNGs (grey 0-255 read as [-1024, 3000] HU).
GREY_HU = 4024.0 / 255.0

#: name -> (method, TranslationTrainSpec fields, method options)
CANDIDATES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "unet_plain": ("unet_l1", {"register": True}, {}),
    "recipe": ("recommended", {}, {}),
    "recipe_qc": ("recommended", {"slice_qc": QC}, {}),
    "recipe_qc_dropout": ("recommended", {"slice_qc": QC}, {"dropout": 0.3}),
}


def _pairs() -> tuple[Any, ...]:
    from medgan_desktop.core.jobs.train_translation import PairSpec

    out = []
    for p in PATIENTS:
        root = DATA / f"Patient_{p}"
        if not root.is_dir():
            raise FileNotFoundError(f"benchmark data missing: {root}")
        out.append(PairSpec(str(root / "T1"), str(root / "CT"), patient=f"Patient_{p}"))
    return tuple(out)


def _score(run: Path, patient: str, size: int) -> dict[str, Any]:
    from medgan_desktop.core.imaging.tasks import get_task
    from medgan_desktop.core.jobs.translation_eval import evaluate_heldout
    from medgan_desktop.core.training.pairs import load_image_pair

    root = DATA / patient
    pair = load_image_pair(root / "T1", root / "CT", register=True, max_side=max(64, size), patient=patient,
                           qc_ratio=QC)
    task = get_task("mr_to_ct")
    every = list(range(pair.source.shape[0]))
    kept = list(pair.slices) if pair.slices is not None else every
    out = {}
    for name, slices in (("all", every), ("qc", kept)):
        h = evaluate_heldout(run, [(pair, slices)], task)
        out[name] = {"mae": h["mae"], "me": h["me"], "psnr": h["psnr"], "ssim": h["ssim"], "slices": len(slices)}
    return out


def run(budget: float, folds: tuple[str, ...], candidates: tuple[str, ...], size: int,
        partial: Path | None = None) -> dict[str, Any]:
    from medgan_desktop.core.jobs.train_translation import TranslationTrainSpec, run_train_translation

    pairs = _pairs()
    res: dict[str, Any] = {"cpu_budget_s": budget, "threads": 1, "size": size, "folds": list(folds),
                           "slice_qc_for_scoring": QC, "candidates": {}}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for cand in candidates:
            method, fields, options = CANDIDATES[cand]
            rows = []
            for f in folds:
                patient = f"Patient_{f}"
                print(f"[bench] {cand}: held out {patient}, {budget:g} CPU-s", file=sys.stderr, flush=True)
                spec = TranslationTrainSpec(
                    method=method, pairs=pairs, out=str(tmp / f"{cand}_{f}"), size=size, steps=1_000_000,
                    batch=8, threads=1, device="cpu", seed=0, cpu_seconds=budget, evaluate=False,
                    heldout_patients=(patient,), extra=options, **fields)
                t0 = time.perf_counter()
                r = run_train_translation(spec)
                row = {"held_out": patient, "steps": r.summary.step, "cpu_s": round(r.summary.cpu_seconds, 1),
                       "wall_s": round(time.perf_counter() - t0, 1), "train_slices": r.n_slices,
                       **_score(r.run_dir, patient, size)}
                print(f"[bench] {cand} {patient}: MAE all {row['all']['mae']:.1f} HU, QC {row['qc']['mae']:.1f} HU",
                      file=sys.stderr, flush=True)
                rows.append(row)
                res["candidates"][cand] = {"method": method, "settings": fields, "options": options, "folds": rows}
                if partial is not None:  # what is done so far survives an interrupted screen
                    partial.write_text(json.dumps(res, indent=2))
    return res


def _mean(rows: list[dict[str, Any]], part: str, key: str) -> float:
    return sum(float(r[part][key]) for r in rows) / len(rows)


def to_markdown(res: dict[str, Any]) -> str:
    lines = [f"## MR -> CT on unseen brain patients (leave-one-patient-out screen, {res['cpu_budget_s']:g} CPU-s "
             f"per model, 1 thread, {res['size']} px, folds {', '.join(res['folds'])})", "",
             "MAE/ME in HU inside the head mask, on all of the held-out patient's slices and on those that pass "
             f"the registration QC (final MI >= {res['slice_qc_for_scoring']:g} x the patient's median), the same "
             "slices for every candidate. Mean over the folds.", "",
             f"Grey levels of the 8-bit CT PNGs = HU / {GREY_HU:.2f} (the PNGs' grey 0-255 is read as "
             "[-1024, 3000] HU).", "",
             "| candidate | MAE all (HU / grey) | MAE QC (HU / grey) | ME QC (HU) | PSNR QC | SSIM QC | steps | "
             "per fold (MAE QC, grey) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, c in res["candidates"].items():
        rows = c["folds"]
        per = ", ".join(f"{r['held_out'][-2:]}: {r['qc']['mae'] / GREY_HU:.1f}" for r in rows)
        ma, mq = _mean(rows, 'all', 'mae'), _mean(rows, 'qc', 'mae')
        lines.append(f"| {name} | {ma:.0f} / {ma / GREY_HU:.1f} | {mq:.0f} / {mq / GREY_HU:.1f} | "
                     f"{_mean(rows, 'qc', 'me'):+.1f} | {_mean(rows, 'qc', 'psnr'):.2f} | "
                     f"{_mean(rows, 'qc', 'ssim'):.3f} | {sum(r['steps'] for r in rows) // len(rows)} | {per} |")
    lines += ["", "Candidates: " + "; ".join(
        f"{n} = {c['method']} {c['settings'] or ''} {c['options'] or ''}".strip() for n, c in res["candidates"].items())]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=1500.0, help="CPU seconds per model (default 1500)")
    ap.add_argument("--folds", default=",".join(PATIENTS), help="held-out patients, e.g. 05,06")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    res = run(a.budget, tuple(a.folds.split(",")), tuple(a.candidates.split(",")), a.size, a.json)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    md = to_markdown(res)
    if a.md:
        a.md.write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
