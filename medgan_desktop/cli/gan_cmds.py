"""``medgan train`` and ``medgan sample``: the GAN engine from the command line.

    medgan train --method dcgan --data ../shared/data/chest_xray/train --size 64 --steps 2000
    medgan train --method recommended --data DIR        # the measured small-data default
    medgan train --resume RUN_DIR --steps 4000          # N is the new total
    torchrun --nproc_per_node=2 -m medgan_desktop.cli train --method dcgan --data DIR --out RUN
    medgan sample --model RUN_DIR_OR_MODEL_ID --n 16 --seed 0 --out DIR [--format png|dicom]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError

#: ``medgan train --method recommended``; the same string as ``core.gan.recommend.ALIAS``
#: (kept literal so that building the parser does not import torch; a test checks they agree).
_ALIAS = "recommended"


def register(sub: Any) -> None:
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
    t.add_argument("--steps", type=int, help="total training steps (with --resume: the new total)")
    t.add_argument("--batch", type=int, help="global batch size (default 32)")
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
        "a TrainConfig field (checkpoint_every, ...), data.FIELD, or a method option (extra.KEY or KEY; "
        "method options are passed to the method unchecked)",
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


def _field_names() -> tuple[set[str], set[str], set[str]]:
    """MethodConfig, TrainConfig (with ``data``) and DataConfig field names."""
    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.training.config import DataConfig, TrainConfig

    return (
        {f.name for f in dataclasses.fields(MethodConfig)},
        {f.name for f in dataclasses.fields(TrainConfig)},
        {f.name for f in dataclasses.fields(DataConfig)},
    )


def _check_types(values: dict[str, Any], cls: Any, section: str) -> None:
    """Refuse values of the wrong kind for a config dataclass's fields (a number for a
    number, text for text...), judged from each field's default value."""
    for f in dataclasses.fields(cls):
        if f.name not in values or f.default is dataclasses.MISSING:  # extra, data
            continue
        default, val = f.default, values[f.name]
        if isinstance(default, bool):
            ok, kind = isinstance(val, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(val, int) and not isinstance(val, bool), "a whole number"
        elif isinstance(default, float) or default is None:  # None: window_lo / window_hi
            number = isinstance(val, int | float) and not isinstance(val, bool)
            ok, kind = number or (default is None and val is None), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(val, str), "text"
        elif isinstance(default, tuple):
            ok, kind = isinstance(val, list | tuple), "a list"
        else:
            continue
        if not ok:
            raise CliError(f"{section} {f.name} must be {kind}, got {val!r}")


def _near_field(key: str, fields: set[str]) -> list[str]:
    """Settings a method-option key was probably meant to be (``ema`` -> ``ema_decay``)."""
    near = set(difflib.get_close_matches(key, sorted(fields), n=3, cutoff=0.75))
    near |= {f for f in fields if len(key) >= 2 and key in f}
    return sorted(near)


def _apply_sets(sets: list[str], mc: dict[str, Any], tc: dict[str, Any]) -> None:
    m_fields, t_fields, d_fields = _field_names()
    m_fields, t_fields = m_fields - {"extra"}, t_fields - {"data"}
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
        elif key in m_fields:
            mc[key] = val
        elif key in t_fields:
            tc[key] = val
        else:
            near = _near_field(key, m_fields | t_fields | {f"data.{f}" for f in d_fields})
            if near and _is_main_process():
                print(
                    f"medgan train: warning: --set {key} is not a setting, so it goes to the method as "
                    f"option extra.{key}; did you mean {' or '.join(near)}?",
                    file=sys.stderr,
                )
            mc.setdefault("extra", {})[key] = val


def _read_config_file(path: str, mc: dict[str, Any], tc: dict[str, Any]) -> None:
    """Merge ``--config FILE`` into ``mc``/``tc``; unknown keys are a :class:`CliError`."""
    from medgan_desktop.core.training.config import check_keys

    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read config {path}: {exc}") from exc
    m_fields, t_fields, d_fields = _field_names()
    sections = ("method_config", "train_config", "data")
    try:
        if not isinstance(cfg, dict):
            raise ValueError(f"it must hold a JSON object with {', '.join(sections)}")
        check_keys(cfg, sections, "config")
        for name in sections:
            if not isinstance(cfg.get(name) or {}, dict):
                raise ValueError(f"{name} must be a JSON object")
        file_mc = dict(cfg.get("method_config") or {})
        check_keys(file_mc, m_fields, "method_config")
        file_tc = dict(cfg.get("train_config") or {})
        check_keys(file_tc, t_fields, "train_config")
        data = dict(file_tc.pop("data", None) or {})
        data.update(cfg.get("data") or {})
        check_keys(data, d_fields, "data")
        file_extra = file_mc.pop("extra", None) or {}
        if not isinstance(file_extra, dict):
            raise ValueError("method_config.extra must be a JSON object")
    except ValueError as exc:
        raise CliError(f"config {path}: {exc}") from exc
    mc["extra"] = {**mc.get("extra", {}), **file_extra}
    mc.update(file_mc)
    tc.update(file_tc)
    tc["data"] = {**tc.get("data", {}), **data}


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


def _list_methods() -> None:
    from medgan_desktop.core.gan.methods.base import available_methods
    from medgan_desktop.core.gan.recommend import ALIAS, describe

    for name, cls in available_methods().items():
        hint = "  (train with medgan translate-train)" if cls.task != "synthesis" else ""
        print(f"{name:12s} {cls.task:12s} {cls.description}{hint}")
    print(f"{ALIAS:12s} {'synthesis':12s} the small-data default: {describe()}")


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _new_run_settings(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """``(method name, MethodConfig, TrainConfig)`` of a new run from the arguments."""
    from medgan_desktop.core.gan.methods.base import MethodConfig, Task, get_method
    from medgan_desktop.core.gan.recommend import (
        ALIAS,
        RECOMMENDED_METHOD,
        preset,
        recommended_config,
    )
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.run import method_config_from_dict, method_config_to_dict

    if not args.method:
        raise CliError("--method is required (or --resume RUN_DIR); see --list-methods")
    if not args.data:
        raise CliError("--data is required")
    recommended = args.method.strip().lower() == ALIAS
    try:
        cls = get_method(RECOMMENDED_METHOD if recommended else args.method)
    except KeyError as exc:
        raise CliError(f"{exc.args[0]}, or {ALIAS!r}") from exc
    if cls.task != Task.SYNTHESIS:
        raise CliError(
            f"{cls.name} is a {cls.task} method: train it with medgan translate-train "
            "(medgan train trains synthesis methods; see medgan translate-train --help)"
        )
    # the method's published settings (or the recommended ones), overridden below
    mc: dict[str, Any] = method_config_to_dict(recommended_config() if recommended else preset(cls.name))
    tc: dict[str, Any] = {}
    if args.config:
        _read_config_file(args.config, mc, tc)
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
    _check_types(mc, MethodConfig, "method setting")
    _check_types(tc, TrainConfig, "training setting")
    _check_types(tc.get("data") or {}, DataConfig, "data setting")
    try:
        tcfg = TrainConfig.from_dict(tc, strict=True).validate()
    except (TypeError, ValueError) as exc:
        raise CliError(f"bad training settings: {exc}") from exc
    if tcfg.data.path:  # absolute, so that --resume works from any directory
        tcfg = tcfg.replace(data=dataclasses.replace(tcfg.data, path=_abs(tcfg.data.path)))
    mc["size"] = tcfg.data.size
    mc["channels"] = tcfg.data.channels
    try:
        mcfg = method_config_from_dict(mc)
    except (TypeError, ValueError) as exc:
        raise CliError(f"bad method settings: {exc}") from exc
    return cls.name, mcfg, tcfg


def _resume_data_path(run_dir: Path, stored: str, moved_to: str | None) -> str:
    """Where a resumed run's data is: ``--data``, the stored path, or a stored relative path
    taken from the run folder's parent (runs written before paths were stored absolute)."""
    if moved_to:
        if not Path(moved_to).expanduser().exists():
            raise CliError(f"--data {moved_to} does not exist")
        return _abs(moved_to)
    if not stored:  # study-index series: no path
        return stored
    tried = [_abs(stored)]
    if not os.path.isabs(os.path.expanduser(stored)):
        tried.append(os.path.normpath(os.path.join(os.path.dirname(_abs(str(run_dir))), stored)))
    for cand in tried:
        if os.path.exists(cand):
            return cand
    raise CliError(
        f"the training data of {run_dir} ({stored}) is not found; tried {' and '.join(tried)}. "
        "Pass --data PATH with its current location"
    )


def _resume_settings(args: argparse.Namespace, run_dir: Path) -> tuple[str, Any, Any, int, list[Any]]:
    """``(method name, MethodConfig, TrainConfig, start step, broken checkpoints to set aside)``."""
    from medgan_desktop.core.gan.methods.base import Task
    from medgan_desktop.core.training.config import TrainConfig
    from medgan_desktop.core.training.run import ModelLoadError, load_run, newest_intact_checkpoint

    try:
        info = load_run(run_dir)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    if info.task != Task.SYNTHESIS:
        raise CliError(f"{run_dir} is a {info.task} run: resume it with medgan translate-train")
    ignored = [
        flag
        for flag, val in (
            ("--method", args.method), ("--config", args.config), ("--set", args.set), ("--size", args.size),
            ("--channels", args.channels), ("--batch", args.batch), ("--seed", args.seed),
            ("--max-images", args.max_images), ("--modality", args.modality),
            ("--label-from-subfolders", args.label_from_subfolders), ("--out", args.out),
        )
        if val
    ]
    if ignored and _is_main_process():
        print(
            f"medgan train: warning: {', '.join(ignored)} ignored with --resume (the run keeps its settings; "
            "only --steps, --device and --data apply)",
            file=sys.stderr,
        )
    try:
        tcfg = TrainConfig.from_dict(info.train_config)
    except (TypeError, ValueError) as exc:
        raise CliError(f"{run_dir}/run.json has bad training settings: {exc}") from exc
    changes: dict[str, Any] = {}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.device:
        changes["device"] = args.device
    data = dataclasses.replace(tcfg.data, path=_resume_data_path(run_dir, tcfg.data.path, args.data))
    tcfg = tcfg.replace(**changes, data=data)
    intact, broken = newest_intact_checkpoint(run_dir)
    if intact is None:
        if broken:
            why = "; ".join(b.reason for b in broken)
            raise CliError(f"{run_dir} has no intact checkpoint to resume from ({why}): start a new run")
        raise CliError(
            f"{run_dir} holds no checkpoint to resume from (the run stopped before its first one): "
            "start a new run"
        )
    if tcfg.steps <= intact[0]:
        raise CliError(f"{run_dir} already reached step {intact[0]}: pass a larger --steps total")
    if broken and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        files = ", ".join(str(b.weights) for b in broken)
        raise CliError(
            f"the newest checkpoint(s) of {run_dir} are unreadable ({files}): resume once without "
            f"torchrun (it sets them aside and continues from step {intact[0]}), or move them away"
        )
    return info.method, info.method_config, tcfg, intact[0], broken


def _discard_failed_start(run_dir: Path, before: set[str] | None) -> None:
    """Remove what a start that failed before its first checkpoint wrote into ``run_dir``
    (run.json, metrics, samples), so that the same ``--out`` can be used again. Entries
    that were there before (``before``) are kept; a folder it created is removed."""
    from medgan_desktop.core.training.run import WEIGHTS, list_checkpoints

    if not _is_main_process() or not run_dir.is_dir():
        return
    if list_checkpoints(run_dir) or (run_dir / WEIGHTS).exists():
        return
    for p in run_dir.iterdir():
        if before is not None and p.name in before:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if before is None:
        try:
            run_dir.rmdir()
        except OSError:
            return
    print(f"medgan train: removed the unfinished run in {run_dir} (no checkpoint was written)", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from medgan_desktop.core.gan.methods.base import get_method
    from medgan_desktop.core.gan.recommend import ALIAS, describe
    from medgan_desktop.core.training.data import DataError, build_dataset
    from medgan_desktop.core.training.loop import TrainingError, TrainingOOMError, train
    from medgan_desktop.core.training.run import set_aside_checkpoint

    if args.list_methods:
        _list_methods()
        return 0
    broken: list[Any] = []
    start = 0
    if args.resume:
        run_dir = Path(args.resume)
        method_name, mcfg, tcfg, start, broken = _resume_settings(args, run_dir)
    else:
        method_name, mcfg, tcfg = _new_run_settings(args)
        if args.out:
            run_dir = Path(args.out)
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise CliError("under torchrun pass --out RUN_DIR (every process must write the same run)")
        else:
            run_dir = _default_out(method_name)
        if (run_dir / "run.json").exists():
            raise CliError(f"{run_dir} already holds a run: use --resume {run_dir} or another --out")
        if run_dir.exists() and not run_dir.is_dir():
            raise CliError(f"--out {run_dir} is a file, not a folder")
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
        for b in broken:
            moved = set_aside_checkpoint(b.weights)
            print(
                f"medgan train: warning: the checkpoint at step {b.step} is unreadable ({b.reason}); "
                f"set aside as {', '.join(p.name for p in moved)}",
                file=sys.stderr,
            )
        what = method_name
        if not args.resume and args.method.strip().lower() == ALIAS:
            what = f"{ALIAS}: {describe()}"
        resumed = f" from step {start}" if args.resume else ""
        print(f"training {what} on {len(dataset)} images -> {run_dir}{resumed}", file=sys.stderr)
    before = None if args.resume or not run_dir.is_dir() else {p.name for p in run_dir.iterdir()}
    try:
        try:
            summary = train(
                method_name, mcfg, tcfg, dataset, run_dir, progress=_printer(), resume=bool(args.resume)
            )
        except DataError as exc:
            raise CliError(str(exc)) from exc
        except TrainingOOMError as exc:
            print(f"medgan train: error: {exc}", file=sys.stderr)
            if not args.resume:
                _discard_failed_start(run_dir, before)
            return 3
        except TrainingError as exc:
            raise CliError(str(exc)) from exc
        except (ValueError, KeyError) as exc:
            raise CliError(str(exc)) from exc
    except BaseException:
        if not args.resume:
            _discard_failed_start(run_dir, before)
        raise
    if _is_main_process():
        print(
            f"done: step {summary.step}/{summary.total_steps} in {summary.seconds:.1f}s "
            f"({summary.images_per_s:.1f} img/s); run folder {summary.run_dir}",
        )
    return 0


def resolve_model_ref(ref: str) -> Path:
    """A model id or folder through the model registry, which checks the sha256 of any
    catalogued model (also when it is given as a path inside a models folder) and returns
    other run folders as they are."""
    from medgan_desktop.core.models.registry import resolve_model

    try:
        return Path(resolve_model(str(Path(ref).expanduser()) if Path(ref).expanduser().exists() else ref))
    except Exception as exc:  # registry errors of any kind are user errors here
        raise CliError(f"cannot resolve model {ref!r}: {exc}") from exc


def _prepare_out(out: Path, fmt: str) -> bool:
    """Check (before any model is loaded) that samples can be written to ``out``: a folder,
    created when missing, that accepts a file (empty or new for DICOM). Returns whether it
    was created here."""
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file: give a folder (it is created when missing)")
    if fmt == "dicom" and out.is_dir() and any(out.iterdir()):
        raise CliError(f"--out {out} is not empty: DICOM export writes a new series into an empty or new folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".medgan-write-check-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if created:
            _remove_if_empty(out)
        raise CliError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    return created


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def cmd_sample(args: argparse.Namespace) -> int:
    from medgan_desktop.core.inference.sample import SampleError, sample, save_pngs, truncation_mode
    from medgan_desktop.core.training.devices import select_device
    from medgan_desktop.core.training.run import ModelLoadError, load_model

    if args.n < 1:
        raise CliError("--n must be >= 1")
    out = Path(args.out).expanduser()
    created = _prepare_out(out, args.format)
    try:
        run_dir = resolve_model_ref(args.model)
        try:
            model = load_model(run_dir, select_device(args.device))
        except (ModelLoadError, ValueError) as exc:
            raise CliError(str(exc)) from exc
        truncation = args.truncation
        if truncation is not None and model.info.task == "synthesis" and truncation_mode(model) is None:
            print(
                f"medgan sample: warning: {model.info.method} has no truncation trick; "
                f"--truncation {truncation:g} does not apply and is ignored",
                file=sys.stderr,
            )
            truncation = None
        try:
            images = sample(model, args.n, seed=args.seed, label=args.label, truncation=truncation)
        except SampleError as exc:
            raise CliError(str(exc)) from exc
        if args.format == "png":
            try:
                paths = save_pngs(images, out, prefix=f"seed{args.seed}")
            except OSError as exc:
                raise CliError(f"cannot write PNG files to {out}: {exc.strerror or exc}") from exc
        else:
            paths = export_dicom(images, model, out, args.seed)
    except BaseException:
        if created:
            _remove_if_empty(out)
        raise
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
