"""Synthesis quality at equal CPU budget: every GAN method on real chest X-rays.

Each method trains on ``../shared/data/chest_xray/train`` (Kermany et al. 2018, CC BY 4.0)
at 64² for the same CPU-time budget (1 torch thread, each run in its own child process so
its peak resident memory is its own), then generates as many images as the held-out set
holds and reports the Fréchet distance and KID against the held-out real images in the
shipped feature extractor's space (``models/feature_extractor``), training images/s and
peak memory. A second configuration trains on only 500 images. Every figure is compared
with plain DCGAN trained in the same run.

The held-out set is the extractor's own stratified 15 % split (seed 0), so neither the
GANs nor the extractor have seen those images.

Run: ``python benchmarks/bench_synthesis_quality.py [--quick] [--budget-s S] [--max-images N]
[--json OUT]``; ``--make-split DIR`` only writes the train/held-out split as symlink folders
(``DIR/train/<class>``, ``DIR/test/<class>``), e.g. to train a shipped model on the
training part with ``medgan train --data DIR/train``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "chest_xray" / "train"
CLASSES = ("NORMAL", "PNEUMONIA")
HELD_OUT = 0.15
SEED = 0


def split_files(root: Path = DATA) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """(train, held-out) lists of ``(file, label)``: the feature extractor's stratified split."""
    import numpy as np

    from medgan_desktop.core.metrics.train_extractor import split

    if not root.is_dir():
        raise FileNotFoundError(f"chest X-ray data missing: {root} (see ../shared/data/DATA.md)")
    files = [(f, c) for c, name in enumerate(CLASSES) for f in sorted((root / name).glob("*")) if f.is_file()]
    labels = np.asarray([c for _, c in files], dtype=np.int64)
    tr, te = split(labels, HELD_OUT, SEED)
    return [files[i] for i in tr], [files[i] for i in te]


def make_split(out: Path, root: Path = DATA) -> tuple[Path, Path]:
    """Write ``out/train/<class>/`` and ``out/test/<class>/`` as symlinks to the real files."""
    train, test = split_files(root)
    for part, items in (("train", train), ("test", test)):
        for f, c in items:
            dst = out / part / CLASSES[c] / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(f.resolve())
    return out / "train", out / "test"


# -- what is compared --------------------------------------------------------------------------
#: name -> (registry method, MethodConfig overrides on top of the method's preset).
#: ``*_sd`` are the small-data settings: DiffAugment (Zhao et al. 2020) + generator EMA.
#: EMA 0.99 (half-life ~70 steps) because a CPU budget of minutes is a few hundred steps:
#: 0.999 would still be mostly the random initial generator.
SMALL_DATA: dict[str, Any] = {"diffaugment": "translation,cutout", "ema_decay": 0.99}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dcgan": ("dcgan", {}),
    "lsgan": ("lsgan", {}),
    "wgan_gp": ("wgan_gp", {}),
    "cgan": ("cgan", {}),
    "stylegan2": ("stylegan2", {}),
    "progressive": ("progressive", {}),
    "dcgan_sd": ("dcgan", SMALL_DATA),
    "cgan_sd": ("cgan", SMALL_DATA),
    "dcgan_sdc": ("dcgan", {**SMALL_DATA, "diffaugment": "color,translation,cutout"}),
    "dcgan_ema": ("dcgan", {"ema_decay": SMALL_DATA["ema_decay"]}),
}
QUICK_VARIANTS = ("dcgan", "dcgan_sd", "cgan_sd")
REFERENCE = "dcgan"
BATCH = 32


# -- child process: one training run under a CPU-time budget ------------------------------------
def _child(spec_path: Path) -> int:
    """Train one variant for ``budget_s`` CPU seconds, sample, measure; write JSON next to spec."""
    import dataclasses
    import resource
    import tempfile

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from medgan_desktop.core.gan.methods.base import get_method
    from medgan_desktop.core.inference.sample import sample
    from medgan_desktop.core.metrics.distribution import frechet_distance, kid
    from medgan_desktop.core.metrics.features import default_extractor
    from medgan_desktop.core.models.runs import load_model
    from medgan_desktop.core.progress import CancelToken, Progress
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.data import ImageFolderDataset
    from medgan_desktop.core.training.loop import train

    spec = json.loads(spec_path.read_text())
    method, overrides = VARIANTS[spec["variant"]]
    cls = get_method(method)
    ds = ImageFolderDataset(Path(spec["train_dir"]), size=64, channels=1, label_from_subfolders=True,
                            max_images=int(spec["max_images"]), seed=SEED, modality="CR")
    # The parent decoded every JPEG once; reuse those tensors (same preprocessing) instead of
    # paying the decode in each child's budget.
    cache = np.load(spec["cache"])
    pos = {name: i for i, name in enumerate(json.loads(Path(spec["cache_names"]).read_text()))}
    ds._cache = {i: torch.from_numpy(cache[pos[f.name]]) for i, f in enumerate(ds.files) if f.name in pos}
    conditional = cls.requires_labels
    preset = cls.default_config() if hasattr(cls, "default_config") else None  # type: ignore[attr-defined]
    mcfg = dataclasses.replace(preset, size=64, channels=1, num_classes=2 if conditional else 0, **overrides)
    tcfg = TrainConfig(steps=10**7, batch_size=BATCH, checkpoint_every=10**7, sample_every=0, log_every=10,
                       seed=SEED, device="cpu", threads=1,
                       data=DataConfig(path=spec["train_dir"], size=64, label_from_subfolders=True,
                                       max_images=int(spec["max_images"]), modality="CR"))
    token = CancelToken()
    budget = float(spec["budget_s"])
    cpu0 = time.process_time()
    wall0 = time.perf_counter()

    def stop_at_budget(_: Progress) -> None:
        if time.process_time() - cpu0 >= budget:
            token.cancel()

    with tempfile.TemporaryDirectory() as tmp:
        summary = train(method, mcfg, tcfg, ds, Path(tmp) / "run", progress=stop_at_budget, cancel=token)
        cpu_s = time.process_time() - cpu0
        wall_s = time.perf_counter() - wall0
        peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # before sampling
        model = load_model(Path(tmp) / "run", "cpu")
        n = int(spec["n_eval"])
        fractions = spec["class_fractions"]
        if conditional:  # classes in the held-out proportions
            counts = [round(n * f) for f in fractions]
            counts[-1] = n - sum(counts[:-1])
            fake = np.concatenate([sample(model, k, seed=1 + c, label=c) for c, k in enumerate(counts) if k > 0])
        else:
            fake = sample(model, n, seed=1)
    fake01 = (fake[:, 0] + 1.0) / 2.0
    feats = default_extractor().extract(fake01)
    real = np.load(spec["real_features"])
    km, ks = kid(real, feats, subsets=50, subset_size=min(500, len(real) // 2, len(feats) // 2))
    out = {
        "variant": spec["variant"],
        "method": method,
        "options": {"diffaugment": mcfg.diffaugment, "ema_decay": mcfg.ema_decay, **dict(mcfg.extra)},
        "train_images": len(ds),
        "steps": summary.step,
        "cpu_s": round(cpu_s, 1),
        "wall_s": round(wall_s, 1),
        "images_per_s": round(summary.images_per_s, 2),
        "images_per_cpu_s": round(summary.step * BATCH / max(cpu_s, 1e-9), 2),
        "fd": round(frechet_distance(real, feats), 4),
        "kid": round(km, 5),
        "kid_std": round(ks, 5),
        "peak_rss_train_mb": round(peak_train, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    spec_path.with_suffix(".out.json").write_text(json.dumps(out))
    return 0


# -- parent ---------------------------------------------------------------------------------------
def _prepare(work: Path, quick: bool, log: Any) -> dict[str, Any]:
    """Split, decode the training images once, extract held-out real features."""
    import numpy as np
    import torch

    from medgan_desktop.core.metrics.distribution import frechet_distance, kid
    from medgan_desktop.core.metrics.features import default_extractor
    from medgan_desktop.core.training.data import ImageFolderDataset

    train_dir, test_dir = make_split(work / "split")
    cap = 600 if quick else 0
    tr = ImageFolderDataset(train_dir, size=64, label_from_subfolders=True, max_images=cap, seed=SEED)
    te = ImageFolderDataset(test_dir, size=64, label_from_subfolders=True, seed=SEED)
    t0 = time.perf_counter()
    with torch.inference_mode():
        cache = np.stack([tr.load(i).numpy() for i in range(len(tr))])
        held = np.stack([te.load(i).numpy()[0] for i in range(len(te))])
    log(f"decoded {len(tr)} training + {len(te)} held-out images in {time.perf_counter() - t0:.1f}s")
    if quick:  # a smaller held-out set keeps the quick run quick
        keep = np.random.default_rng(SEED).choice(len(held), 160, replace=False)
        held, held_labels = held[np.sort(keep)], np.asarray(te.labels)[np.sort(keep)]
    else:
        held_labels = np.asarray(te.labels)
    np.save(work / "cache.npy", cache)
    (work / "cache_names.json").write_text(json.dumps([f.name for f in tr.files]))
    ext = default_extractor()
    real = ext.extract((held + 1.0) / 2.0)
    np.save(work / "real_features.npy", real)
    # floor: real training images vs the held-out images (what a perfect generator scores)
    pick = np.random.default_rng(SEED + 1).choice(len(cache), min(len(held), len(cache)), replace=False)
    train_feats = ext.extract((cache[pick, 0] + 1.0) / 2.0)
    km, _ = kid(real, train_feats, subsets=50, subset_size=min(500, len(real) // 2))
    return {
        "train_dir": str(tr.root),
        "n_train": len(tr),
        "n_held_out": len(held),
        "class_fractions": [float((held_labels == c).mean()) for c in range(len(CLASSES))],
        "floor": {"fd": round(frechet_distance(real, train_feats), 4), "kid": round(km, 5)},
    }


def _spawn(work: Path, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    import subprocess

    path = work / f"{spec['config']}_{spec['variant']}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(path)],
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
    out = path.with_suffix(".out.json")
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout)[-1500:]
        return {"variant": spec["variant"], "error": f"child exited {proc.returncode}: {tail}"}
    return dict(json.loads(out.read_text()))


def _compare(rows: dict[str, dict[str, Any]]) -> None:
    ref = rows.get(REFERENCE, {})
    for r in rows.values():
        if "fd" in r and "fd" in ref:
            r["fd_vs_dcgan"] = round(ref["fd"] / r["fd"], 3)  # > 1: better than plain DCGAN
            r["kid_minus_dcgan"] = round(r["kid"] - ref["kid"], 5)  # < 0: better


def measure(budget_s: float, configs: dict[str, int], variants: tuple[str, ...], quick: bool,
            jobs: int = 1, log: Any = print) -> dict[str, Any]:
    """Run every variant on every configuration (name -> max training images, 0 = all)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medgan_sq_") as tmp:
        work = Path(tmp)
        prep = _prepare(work, quick, log)
        n_eval = prep["n_held_out"]
        result: dict[str, Any] = {
            "name": "synthesis_quality",
            "data": "Kermany et al. 2018 chest X-rays (CC BY 4.0), 64x64 grey",
            "budget_cpu_s": budget_s,
            "batch": BATCH,
            "threads_per_run": 1,
            "parallel_runs": jobs,
            "held_out_images": n_eval,
            "extractor": "shipped medfeaturenet-cxr64-v1",
            "floor_train_vs_held_out": prep["floor"],
            "configs": {},
        }
        specs = [
            {
                "config": cname, "variant": v, "budget_s": budget_s, "max_images": max_images,
                "train_dir": prep["train_dir"], "cache": str(work / "cache.npy"),
                "cache_names": str(work / "cache_names.json"),
                "real_features": str(work / "real_features.npy"), "n_eval": n_eval,
                "class_fractions": prep["class_fractions"],
            }
            for cname, max_images in configs.items()
            for v in variants
        ]

        def one(spec: dict[str, Any]) -> dict[str, Any]:
            t0 = time.perf_counter()
            row = _spawn(work, spec, timeout=budget_s * 20 + 600)
            log(f"[{spec['config']}] {spec['variant']}: {json.dumps(row)[:300]} ({time.perf_counter() - t0:.0f}s)")
            return row

        # children run ``jobs`` at a time, one torch thread each; the budget is CPU time, so
        # runs sharing the machine still get the same amount of computation
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            rows_flat = list(pool.map(one, specs))
        for cname in configs:
            rows = {s["variant"]: r for s, r in zip(specs, rows_flat, strict=True) if s["config"] == cname}
            _compare(rows)
            result["configs"][cname] = rows
        result["recommended"] = _recommend(result)
    return result


def _recommend(result: dict[str, Any]) -> dict[str, Any]:
    """The variant with the best mean FD ratio over DCGAN across the configurations, among
    the methods a new user can train on any image folder (no class labels needed)."""
    from medgan_desktop.core.gan.methods.base import get_method

    names = [v for v in VARIANTS
             if all("fd_vs_dcgan" in c.get(v, {}) for c in result["configs"].values())
             and not get_method(VARIANTS[v][0]).requires_labels]
    if not names:
        return {"variant": REFERENCE, "reason": "no complete measurement"}
    score = {v: sum(c[v]["fd_vs_dcgan"] for c in result["configs"].values()) / len(result["configs"])
             for v in names}
    best = max(score, key=lambda v: score[v])
    return {
        "variant": best,
        "method": VARIANTS[best][0],
        "options": VARIANTS[best][1],
        "mean_fd_ratio_vs_dcgan": round(score[best], 3),
        "margin": {c: {"fd_vs_dcgan": rows[best]["fd_vs_dcgan"], "kid_minus_dcgan": rows[best]["kid_minus_dcgan"]}
                   for c, rows in result["configs"].items()},
        "beats_dcgan_on_all": all(rows[best]["fd_vs_dcgan"] > 1.0 and rows[best]["kid_minus_dcgan"] < 0
                                  for rows in result["configs"].values()),
    }


def run(quick: bool = False, budget_s: float | None = None, max_images: int = 500, jobs: int = 1,
        variants: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The benchmark: all variants at equal CPU budget, on all images and on ``max_images``."""
    configs = {"all": 0, f"n{max_images}": max_images}
    chosen = variants or (QUICK_VARIANTS if quick else tuple(VARIANTS))
    if REFERENCE not in chosen:
        chosen = (REFERENCE, *chosen)
    return measure(budget_s or (6.0 if quick else 50.0), configs, chosen, quick, jobs)


def to_markdown(res: dict[str, Any]) -> str:
    """The results as Markdown tables (one per configuration)."""
    lines = [
        "# Synthesis quality at equal CPU budget",
        "",
        f"Data: {res['data']}; held-out real images: {res['held_out_images']} (the feature extractor's "
        f"stratified 15 % split, never trained on). Each run: {res['budget_cpu_s']:.0f} CPU-seconds of "
        f"training, batch {res['batch']}, {res['threads_per_run']} torch thread, its own child process "
        f"({res.get('parallel_runs', 1)} at a time). "
        f"FD and KID in the space of the {res['extractor']} extractor (not comparable with InceptionV3 FID). "
        f"Floor (real training images vs held-out): FD {res['floor_train_vs_held_out']['fd']}, "
        f"KID {res['floor_train_vs_held_out']['kid']}.",
        "",
    ]
    for cname, rows in res["configs"].items():
        n = next((r.get("train_images") for r in rows.values() if "train_images" in r), "?")
        lines += [f"## {cname} ({n} training images)", "",
                  "| variant | method | options | steps | img/s | img/CPU-s | FD | FD ratio vs DCGAN | KID | "
                  "KID − DCGAN | peak RSS MB |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for v, r in rows.items():
            if "error" in r:
                lines.append(f"| {v} | error: {r['error'][:80]} |")
                continue
            opts = ", ".join(f"{k}={val}" for k, val in r["options"].items() if val not in ("", 0, 0.0))
            lines.append(
                f"| {v} | {r['method']} | {opts or 'preset'} | {r['steps']} | {r['images_per_s']} | "
                f"{r['images_per_cpu_s']} | {r['fd']} | {r.get('fd_vs_dcgan', '')} | {r['kid']} ± {r['kid_std']} | "
                f"{r.get('kid_minus_dcgan', '')} | {r['peak_rss_mb']} |"
            )
        lines.append("")
    rec = res.get("recommended", {})
    if rec:
        lines += ["## Recommended default", "", "```", json.dumps(rec, indent=2), "```", ""]
    return "\n".join(lines)


def evaluate_conditional(run_dir: Path, grid_png: Path | None = None, per_class_grid: int = 8,
                         log: Any = print) -> dict[str, Any]:
    """Per-class held-out FD/KID of a class-conditional run (or shipped model folder).

    For each class, as many images as the held-out split has of that class are generated
    (label by name) and compared with those real images; the extractor's NORMAL/PNEUMONIA
    head also reports how often a generated image is classified as the class asked for
    (its held-out accuracy on real images is 0.967). The floor is the same comparison for
    real training images of the class. Optionally writes a sample grid (one row per class).
    """
    import numpy as np
    import torch

    from medgan_desktop.core.imaging.display import grid, png_bytes
    from medgan_desktop.core.inference.sample import sample
    from medgan_desktop.core.metrics.distribution import frechet_distance, kid
    from medgan_desktop.core.metrics.features import default_extractor
    from medgan_desktop.core.models.runs import load_model
    from medgan_desktop.core.training.data import ImageFolderDataset

    model = load_model(Path(run_dir), "cpu")
    names = list(model.info.preprocessing.class_names)
    ext = default_extractor()
    out: dict[str, Any] = {"classes": {}}
    all_real, all_fake = [], []
    with tempfile_dir() as tmp:
        train_dir, test_dir = make_split(tmp / "split")
        te = ImageFolderDataset(test_dir, size=64, label_from_subfolders=True, seed=SEED)
        tr = ImageFolderDataset(train_dir, size=64, label_from_subfolders=True, seed=SEED)
        for c, name in enumerate(names):
            real = np.stack([te.load(i).numpy()[0] for i in range(len(te)) if te.labels[i] == c])
            real01 = (real + 1.0) / 2.0
            fake = sample(model, len(real), seed=100 + c, label=name)
            fake01 = (fake[:, 0] + 1.0) / 2.0
            fr, ff = ext.extract(real01), ext.extract(fake01)
            tr_idx = [i for i in range(len(tr)) if tr.labels[i] == c]
            pick = np.random.default_rng(SEED + 2).choice(tr_idx, len(real), replace=False)
            ft = ext.extract((np.stack([tr.load(int(i)).numpy()[0] for i in pick]) + 1.0) / 2.0)
            with torch.inference_mode():
                logits, _ = ext.net(torch.from_numpy(fake01[:, None].astype(np.float32)))
            sub = min(500, len(real) // 2)
            km, ks = kid(fr, ff, subsets=50, subset_size=sub)
            fkm, _ = kid(fr, ft, subsets=50, subset_size=sub)
            out["classes"][name] = {
                "n": len(real),
                "fd": round(frechet_distance(fr, ff), 4),
                "kid": round(km, 5),
                "kid_std": round(ks, 5),
                "classified_as_label": round(float((logits.argmax(1) == c).float().mean()), 3),
                "floor_fd": round(frechet_distance(fr, ft), 4),
                "floor_kid": round(fkm, 5),
            }
            log(f"{name}: {out['classes'][name]}")
            all_real.append(fr)
            all_fake.append(ff)
    fr_all, ff_all = np.concatenate(all_real), np.concatenate(all_fake)
    km, ks = kid(fr_all, ff_all, subsets=50, subset_size=min(500, len(fr_all) // 2))
    out["all"] = {"n": len(fr_all), "fd": round(frechet_distance(fr_all, ff_all), 4),
                  "kid": round(km, 5), "kid_std": round(ks, 5)}
    if grid_png is not None:
        rows = [sample(model, per_class_grid, seed=0, label=name) for name in names]
        grid_png.write_bytes(png_bytes(grid(np.concatenate(rows), ncol=per_class_grid)))
    return out


def tempfile_dir() -> Any:
    """A temporary folder as a context manager yielding a Path."""
    import contextlib
    import tempfile

    @contextlib.contextmanager
    def cm() -> Any:
        with tempfile.TemporaryDirectory(prefix="medgan_sq_") as t:
            yield Path(t)

    return cm()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget, 3 variants: a smoke run")
    ap.add_argument("--budget-s", type=float, help="CPU seconds of training per run (default 50; quick 6)")
    ap.add_argument("--max-images", type=int, default=500, help="training images of the small-data run")
    ap.add_argument("--variants", help=f"comma-separated subset of {', '.join(VARIANTS)} (dcgan always runs)")
    ap.add_argument("--jobs", type=int, default=1, help="training runs at a time (each 1 thread; default 1)")
    ap.add_argument("--json", type=Path, help="write the result as JSON here")
    ap.add_argument("--md", type=Path, help="write the Markdown table here")
    ap.add_argument("--make-split", type=Path, metavar="DIR", help="only write the train/test split folders")
    ap.add_argument("--eval-model", type=Path, metavar="RUN_DIR",
                    help="only evaluate a class-conditional run per class on the held-out split")
    ap.add_argument("--grid", type=Path, help="with --eval-model: write a sample grid PNG (a row per class)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child)
    if args.eval_model:
        res = evaluate_conditional(args.eval_model, args.grid)
        text = json.dumps(res, indent=2)
        if args.json:
            args.json.write_text(text)
        print(text)
        return 0
    if args.make_split:
        tr, te = make_split(args.make_split)
        print(f"wrote {tr} and {te}")
        return 0
    variants = tuple(v.strip() for v in args.variants.split(",")) if args.variants else None
    unknown = [v for v in variants or () if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    res = run(quick=args.quick, budget_s=args.budget_s, max_images=args.max_images, jobs=args.jobs,
              variants=variants)
    text = json.dumps(res, indent=2)
    if args.json:
        args.json.write_text(text)
    if args.md:
        args.md.write_text(to_markdown(res))
    print(text)
    return 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
