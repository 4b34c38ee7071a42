"""``medgan train`` and ``medgan sample``: the GAN engine from the command line.

    medgan train --method dcgan --data ../shared/data/chest_xray/train --size 64 --steps 2000
    medgan train --method recommended --data DIR        # the measured small-data default
    medgan train --resume RUN_DIR --steps 4000          # N is the new total
    torchrun --nproc_per_node=2 -m medgan_desktop.cli train --method dcgan --data DIR --out RUN
    medgan sample --model RUN_DIR_OR_MODEL_ID --n 16 --seed 0 --out DIR [--format png|dicom]
    medgan sample --model cxr_cgan_64 --labels NORMAL=234,PNEUMONIA=390 --out DIR

The commands parse arguments into the specs of :mod:`medgan_desktop.core.jobs.train` and
:mod:`medgan_desktop.core.jobs.sample` and print the results; the Train and Sample panels
run the same jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError
from medgan_desktop.cli.output import is_main_process, printer

#: ``medgan train --method recommended``; the same string as ``core.gan.recommend.ALIAS``
#: (kept literal so that building the parser does not import torch; a test checks they agree).
_ALIAS = "recommended"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "train",
        help="train a GAN on an image folder or volumes",
        description="Train a GAN method into a run folder (or resume one). Writes run.json, "
        "metrics.jsonl, checkpoints, sample grids and weights.safetensors. "
        f"--method {_ALIAS} trains the measured small-data default (see --list-methods).",
    )
    t.add_argument(
        "--method",
        help=f"method name (see --list-methods), or {_ALIAS!r}: the small-data default the synthesis "
        "benchmark measured best, with its options (--set and --config override them)",
    )
    t.add_argument("--list-methods", action="store_true", help="print the available methods and exit")
    t.add_argument(
        "--data",
        help="image folder (PNG/JPEG), volume file (NIfTI/MHA) or folder of volumes/DICOM "
        "(stored as an absolute path; with --resume: where the run's data is now, if it moved)",
    )
    t.add_argument("--size", type=int, help="image size (default 64)")
    t.add_argument("--channels", type=int, help="1 (grey, default) or 3")
    t.add_argument("--steps", type=int,
                   help="total training steps (default 2000; with --resume: the new total; with a "
                   "budget: the most)")
    t.add_argument("--cpu-seconds", type=float,
                   help="stop when the run has used this much CPU time, all threads, across resumes")
    t.add_argument("--budget-minutes", type=float,
                   help="stop after this many wall-clock minutes of training")
    t.add_argument("--threads", type=int,
                   help="CPU threads of torch and ITK (default 0: all cores but one)")
    t.add_argument("--batch", type=int, help="global batch size (default 32)")
    t.add_argument("--val-share", type=float,
                   help="hold out this share of an image folder, whole patients at a time (the "
                   "patient read from file names such as person123_* or IM-0115-*), as a "
                   "validation set never trained on (default 0: none)")
    t.add_argument("--val-every", type=int,
                   help="every N steps, score the generator on the validation set (Fréchet distance "
                   "in the shipped features, class-matched) and keep the best step's weights as "
                   "best.safetensors, which sample and export then use (needs --val-share)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--out", help="run folder (default: <method>-<time> in the app's runs folder)")
    t.add_argument(
        "--config",
        help="JSON file with up to three objects: method_config (MethodConfig fields, method options "
        "under extra), train_config (TrainConfig fields) and data (DataConfig fields); unknown keys "
        "are refused. Command-line options and --set override it",
    )
    t.add_argument("--label-from-subfolders", action="store_true", help="class label = first-level subfolder")
    t.add_argument("--max-images", type=int, help="use at most N images/slices")
    t.add_argument("--modality", help="CT, MR, CR, ... (default: guessed)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last intact checkpoint")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting: a MethodConfig field (lr_g, diffaugment, ema_decay, ...), "
        "a TrainConfig field (checkpoint_every, checkpoint_minutes, ...), data.FIELD, or one of the "
        "method's options (see --list-methods); unknown keys are refused",
    )
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sample",
        help="generate images from a trained model",
        description="Sample images from a run folder or model id; the same seed writes identical files.",
    )
    s.add_argument("--model", required=True,
                   help="model id, run folder, or a run's checkpoint file (checkpoints/step_*.safetensors)")
    s.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--label", help="one class for all images: a name (any case) or an index")
    s.add_argument("--labels", metavar="MIX",
                   help="a class mix instead of --n, e.g. NORMAL=234,PNEUMONIA=390")
    s.add_argument("--truncation", type=float, help="truncation threshold (where the method supports it)")
    s.add_argument("--out", required=True,
                   help="output folder (created when missing; existing files are never overwritten)")
    s.add_argument("--format", choices=("png", "dicom"), default="png", help="png (default) or synthetic DICOM")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    s.set_defaults(func=cmd_sample)


# -- train -----------------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        return text


def _sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = _parse_value(raw)
    return out


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(cfg, dict):
        raise CliError(f"config {path}: it must hold a JSON object with method_config, "
                       "train_config and data")
    return cfg


def _list_methods() -> None:
    from medgan_desktop.core.gan.methods.base import available_methods
    from medgan_desktop.core.gan.recommend import ALIAS, describe

    for name, cls in available_methods().items():
        hint = "  (train with medgan translate-train)" if cls.task != "synthesis" else ""
        print(f"{name:12s} {cls.task:12s} {cls.description}{hint}")
        opts = ", ".join(f"{f.name}={f.default!r}" for f, _ in cls.Options.fields_info())
        if opts:
            print(f"{'':12s} {'':12s} options: {opts}")
    print(f"{ALIAS:12s} {'synthesis':12s} the small-data default: {describe()}")


def cmd_train(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.train import ResumeSpec, TrainSpec, label_for, run_resume, run_train, settings

    if args.list_methods:
        _list_methods()
        return 0
    report = printer("train")
    if args.resume:
        ignored = [flag for flag, val in (
            ("--method", args.method), ("--config", args.config), ("--set", args.set),
            ("--size", args.size), ("--channels", args.channels), ("--batch", args.batch),
            ("--seed", args.seed), ("--max-images", args.max_images), ("--modality", args.modality),
            ("--label-from-subfolders", args.label_from_subfolders), ("--out", args.out),
            ("--val-share", args.val_share), ("--val-every", args.val_every)) if val]
        if ignored and is_main_process():
            print(f"medgan train: warning: {', '.join(ignored)} ignored with --resume (the run keeps "
                  "its settings; only --steps, --device, --data, --threads and the budgets apply)",
                  file=sys.stderr)
        res = run_resume(ResumeSpec(
            run_dir=args.resume, steps=args.steps, device=args.device, data=args.data,
            cpu_seconds=args.cpu_seconds, budget_minutes=args.budget_minutes,
            threads=args.threads), progress=report)
    else:
        if not args.method:
            raise CliError("--method is required (or --resume RUN_DIR); see --list-methods")
        if not args.data:
            raise CliError("--data is required")
        if not args.out and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise CliError("under torchrun pass --out RUN_DIR (every process must write the same run)")
        data: dict[str, Any] = {"path": str(args.data)}
        for key, val in (("size", args.size), ("channels", args.channels),
                         ("max_images", args.max_images), ("modality", args.modality),
                         ("val_share", args.val_share)):
            if val is not None:
                data[key] = val
        if args.label_from_subfolders:
            data["label_from_subfolders"] = True
        loop = {"steps": args.steps, "batch_size": args.batch, "device": args.device,
                "seed": args.seed, "threads": args.threads, "cpu_seconds": args.cpu_seconds,
                "budget_minutes": args.budget_minutes, "val_every": args.val_every}
        config = _read_config_file(args.config) if args.config else None
        name, mcfg, tcfg = settings(args.method, config=config, sets=_sets(args.set), data=data,
                                    loop=loop)
        res = run_train(TrainSpec(name, mcfg, tcfg, out=args.out or "",
                                  label=label_for(args.method)), progress=report)
    if is_main_process():
        s = res.summary
        stop = {"total": "", "user": " (stopped)", "cpu_budget": " (CPU budget spent)",
                "time_budget": " (time budget spent)"}[str(s.stopped_by)]
        print(f"done: step {s.step}/{s.total_steps}{stop} in {s.seconds:.1f}s "
              f"({s.cpu_seconds:.0f} CPU-s, {s.images_per_s:.1f} img/s); run folder {s.run_dir}")
        best = res.best
        if best is not None:
            print(f"best validation FD {best.val_fd:.3f} at step {best.step}: kept as best.safetensors "
                  "(sample and export use it)")
    return 0


# -- sample ----------------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.sample import SampleFormat, SampleSpec, parse_mix, run_sample

    if args.labels and args.label:
        raise CliError("give --label (one class) or --labels (a class mix), not both")
    spec = SampleSpec(
        model=args.model, n=args.n, seed=args.seed, label=args.label,
        mix=parse_mix(args.labels) if args.labels else {}, truncation=args.truncation,
        out=str(args.out), format=SampleFormat(args.format), device=args.device,
    )
    res = run_sample(spec, progress=printer("sample", plain=False))
    print(f"wrote {len(res.written)} {args.format.upper()} files to {args.out}")
    return 0
