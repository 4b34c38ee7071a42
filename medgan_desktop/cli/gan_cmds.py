"""``medgan train`` and ``medgan sample``: the GAN engine from the command line.

    medgan train --method dcgan --data ../shared/data/chest_xray/train --size 64 --steps 2000
    medgan train --resume RUN_DIR --steps 4000          # N is the new total
    torchrun --nproc_per_node=2 -m medgan_desktop.cli train --method dcgan --data DIR --out RUN
    medgan sample --model RUN_DIR_OR_MODEL_ID --n 16 --seed 0 --out DIR [--format png|dicom]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError


def register(sub: Any) -> None:
    t = sub.add_parser(
        "train",
        help="train a GAN on an image folder or volumes",
        description="Train a GAN method into a run folder (or resume one). Writes run.json, "
        "metrics.jsonl, checkpoints, sample grids and weights.safetensors.",
    )
    t.add_argument("--method", help="method name (see --list-methods)")
    t.add_argument("--list-methods", action="store_true", help="print the available methods and exit")
    t.add_argument("--data", help="image folder (PNG/JPEG), volume file (NIfTI/MHA) or folder of volumes/DICOM")
    t.add_argument("--size", type=int, help="image size (default 64)")
    t.add_argument("--channels", type=int, help="1 (grey, default) or 3")
    t.add_argument("--steps", type=int, help="total training steps (with --resume: the new total)")
    t.add_argument("--batch", type=int, help="global batch size (default 32)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--out", help="run folder (default: <data dir>/runs/<method>-<time>)")
    t.add_argument("--config", help="JSON file with method_config / train_config (and data) entries")
    t.add_argument("--label-from-subfolders", action="store_true", help="class label = first-level subfolder")
    t.add_argument("--max-images", type=int, help="use at most N images/slices")
    t.add_argument("--modality", help="CT, MR, CR, ... (default: guessed)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting: a MethodConfig field (lr_g, diffaugment, ema_decay, ...), "
        "a TrainConfig field (checkpoint_every, ...), data.FIELD, or a method option (extra.KEY or KEY)",
    )
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sample",
        help="generate images from a trained model",
        description="Sample images from a run folder or model id; the same seed writes identical files.",
    )
    s.add_argument("--model", required=True, help="run folder or model id")
    s.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--label", help="class index or name (conditional models)")
    s.add_argument("--truncation", type=float, help="truncation threshold (where the method supports it)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--format", choices=("png", "dicom"), default="png", help="png (default) or synthetic DICOM")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    s.set_defaults(func=cmd_sample)


# -- settings --------------------------------------------------------------------------------
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


def _apply_sets(sets: list[str], mc: dict[str, Any], tc: dict[str, Any]) -> None:
    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.training.config import DataConfig, TrainConfig

    m_fields = {f.name for f in dataclasses.fields(MethodConfig)}
    t_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"data"}
    d_fields = {f.name for f in dataclasses.fields(DataConfig)}
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--set expects KEY=VALUE, got {item!r}")
        val = _parse_value(raw)
        if key.startswith("data."):
            sub = key[5:]
            if sub not in d_fields:
                raise CliError(f"unknown data setting {sub!r}; known: {', '.join(sorted(d_fields))}")
            tc.setdefault("data", {})[sub] = val
        elif key.startswith("extra."):
            mc.setdefault("extra", {})[key[6:]] = val
        elif key in m_fields and key != "extra":
            mc[key] = val
        elif key in t_fields:
            tc[key] = val
        else:
            mc.setdefault("extra", {})[key] = val


def _default_out(method: str) -> Path:
    from medgan_desktop.core.config import AppPaths

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return AppPaths.default().ensure().runs_dir / f"{method}-{stamp}"


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _printer(every_s: float = 2.0) -> Any:
    from medgan_desktop.core.progress import Progress

    last = [0.0]
    main = _is_main_process()

    def report(p: Progress) -> None:
        now = time.monotonic()
        if not main or (now - last[0] < every_s and p.done < p.total):
            return
        last[0] = now
        d = p.data or {}
        losses = d.get("losses") or {}
        assert isinstance(losses, dict)
        ls = " ".join(f"{k}={v:.3f}" for k, v in losses.items() if k in ("d", "g", "l1", "cycle"))
        ips = float(d.get("images_per_s", 0.0) or 0.0)  # type: ignore[arg-type]
        eta = float(d.get("eta_s", 0.0) or 0.0)  # type: ignore[arg-type]
        print(f"step {p.done}/{p.total}  {ls}  {ips:.1f} img/s  eta {eta:.0f}s", file=sys.stderr, flush=True)

    return report


def cmd_train(args: argparse.Namespace) -> int:
    from medgan_desktop.core.gan.methods.base import Task, available_methods, get_method
    from medgan_desktop.core.training.config import TrainConfig
    from medgan_desktop.core.training.data import DataError, build_dataset
    from medgan_desktop.core.training.loop import TrainingError, TrainingOOMError, train
    from medgan_desktop.core.training.run import (
        ModelLoadError,
        load_run,
        method_config_from_dict,
        method_config_to_dict,
    )

    if args.list_methods:
        for name, cls in available_methods().items():
            print(f"{name:12s} {cls.task:12s} {cls.description}")
        return 0
    mc: dict[str, Any] = {}
    tc: dict[str, Any] = {}
    if args.resume:
        run_dir = Path(args.resume)
        try:
            info = load_run(run_dir)
        except ModelLoadError as exc:
            raise CliError(str(exc)) from exc
        tcfg = TrainConfig.from_dict(info.train_config)
        changes: dict[str, Any] = {}
        if args.steps is not None:
            changes["steps"] = args.steps
        if args.device:
            changes["device"] = args.device
        tcfg = tcfg.replace(**changes)
        if tcfg.steps <= _last_step(run_dir):
            raise CliError(f"{run_dir} already reached step {_last_step(run_dir)}: pass a larger --steps total")
        method_name, mcfg = info.method, info.method_config
        if info.task != Task.SYNTHESIS:
            raise CliError(f"{run_dir} is a {info.task} run: resume it with medgan translate-train")
    else:
        if not args.method:
            raise CliError("--method is required (or --resume RUN_DIR); see --list-methods")
        if not args.data:
            raise CliError("--data is required")
        try:
            cls = get_method(args.method)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from exc
        if cls.task != Task.SYNTHESIS:
            raise CliError(f"{cls.name} is a {cls.task} method; medgan train trains synthesis methods")
        method_name = cls.name
        preset = getattr(cls, "default_config", None)
        if callable(preset):  # the method's published optimiser settings, overridable below
            mc.update(method_config_to_dict(preset()))
        if args.config:
            try:
                cfg_file = json.loads(Path(args.config).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise CliError(f"cannot read config {args.config}: {exc}") from exc
            file_mc = dict(cfg_file.get("method_config", {}))
            extra = {**mc.get("extra", {}), **file_mc.pop("extra", {})}
            mc.update(file_mc)
            mc["extra"] = extra
            tc.update(cfg_file.get("train_config", {}))
        data = dict(tc.get("data") or {})
        data["path"] = str(args.data)
        for key, val in (
            ("size", args.size),
            ("channels", args.channels),
            ("max_images", args.max_images),
            ("modality", args.modality),
        ):
            if val is not None:
                data[key] = val
        if args.label_from_subfolders:
            data["label_from_subfolders"] = True
        tc["data"] = data
        for key, val in (("steps", args.steps), ("batch_size", args.batch), ("device", args.device), ("seed", args.seed)):
            if val is not None:
                tc[key] = val
        _apply_sets(args.set, mc, tc)
        try:
            tcfg = TrainConfig.from_dict(tc).validate()
        except (TypeError, ValueError) as exc:
            raise CliError(f"bad training settings: {exc}") from exc
        mc["size"] = tcfg.data.size
        mc["channels"] = tcfg.data.channels
        try:
            mcfg = method_config_from_dict(mc)
        except (TypeError, ValueError) as exc:
            raise CliError(f"bad method settings: {exc}") from exc
        if args.out:
            run_dir = Path(args.out)
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise CliError("under torchrun pass --out RUN_DIR (every process must write the same run)")
        else:
            run_dir = _default_out(method_name)
        if (run_dir / "run.json").exists():
            raise CliError(f"{run_dir} already holds a run: use --resume {run_dir} or another --out")
    try:
        dataset = build_dataset(tcfg.data, seed=tcfg.seed)
    except DataError as exc:
        raise CliError(str(exc)) from exc
    if not args.resume:
        names = dataset.preprocessing.class_names
        if names:
            mcfg = dataclasses.replace(mcfg, num_classes=len(names))
        if getattr(get_method(method_name), "conditional", False) and not names:
            raise CliError(f"{method_name} is class-conditional: add --label-from-subfolders (one folder per class)")
    if _is_main_process():
        print(f"training {method_name} on {len(dataset)} images -> {run_dir}", file=sys.stderr)
    try:
        summary = train(method_name, mcfg, tcfg, dataset, run_dir, progress=_printer(), resume=bool(args.resume))
    except DataError as exc:
        raise CliError(str(exc)) from exc
    except TrainingOOMError as exc:
        print(f"medgan train: error: {exc}", file=sys.stderr)
        return 3
    except TrainingError as exc:
        raise CliError(str(exc)) from exc
    except (ValueError, KeyError) as exc:
        raise CliError(str(exc)) from exc
    if _is_main_process():
        print(
            f"done: step {summary.step}/{summary.total_steps} in {summary.seconds:.1f}s "
            f"({summary.images_per_s:.1f} img/s); run folder {summary.run_dir}",
        )
    return 0


def _last_step(run_dir: Path) -> int:
    from medgan_desktop.core.training.run import list_checkpoints

    c = list_checkpoints(run_dir)
    return c[-1][0] if c else 0


def resolve_model_ref(ref: str) -> Path:
    """A run folder as given, else a model id through the model registry (when present)."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p
    try:
        from medgan_desktop.core.models.registry import resolve_model
    except ImportError:
        raise CliError(f"{ref} is not a run folder") from None
    try:
        return Path(resolve_model(ref))
    except Exception as exc:  # registry errors of any kind are user errors here
        raise CliError(f"cannot resolve model {ref!r}: {exc}") from exc


def cmd_sample(args: argparse.Namespace) -> int:
    from medgan_desktop.core.inference.sample import SampleError, interpolate, sample, save_pngs  # noqa: F401
    from medgan_desktop.core.training.devices import select_device
    from medgan_desktop.core.training.run import ModelLoadError, load_model

    if args.n < 1:
        raise CliError("--n must be >= 1")
    run_dir = resolve_model_ref(args.model)
    try:
        model = load_model(run_dir, select_device(args.device))
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    try:
        images = sample(model, args.n, seed=args.seed, label=args.label, truncation=args.truncation)
    except SampleError as exc:
        raise CliError(str(exc)) from exc
    out = Path(args.out)
    if args.format == "png":
        paths = save_pngs(images, out, prefix=f"seed{args.seed}")
    else:
        paths = export_dicom(images, model, out, args.seed)
    print(f"wrote {len(paths)} {args.format.upper()} files to {out}")
    return 0


def export_dicom(images: Any, model: Any, out: Path, seed: int) -> list[Path]:
    """Write synthetic Secondary Capture DICOM (one grey image per sample) via ``core.dicom.write``."""
    try:
        from medgan_desktop.core.dicom.write import write_secondary_capture
    except ImportError as exc:
        raise CliError(f"DICOM export is not available in this build ({exc}); use --format png") from exc
    grey = [img.mean(axis=0) for img in images]  # (C, H, W) in [-1, 1] -> (H, W)
    try:
        return list(
            write_secondary_capture(
                grey,
                out,
                description=f"{model.info.method} seed {seed}",
                model_id=str(model.info.path.name),
                value_range=(-1.0, 1.0),
            )
        )
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot write DICOM to {out}: {exc}") from exc
