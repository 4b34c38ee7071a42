"""Train a GAN, and resume a run: ``medgan train`` and the Train panel's synthesis tab.

* :func:`settings` turns what a user asked for (a method or ``recommended``, a config file,
  ``KEY=VALUE`` overrides, data and loop fields) into a checked ``(method, MethodConfig,
  TrainConfig)``: unknown keys and values of the wrong kind are refused in one sentence,
  method options are checked against the method's own ``Options`` dataclass.
* :func:`run_train` trains a new run; :func:`run_resume` continues one, after
  :func:`resume_plan` has applied the one resume rule of the product (the newest intact,
  weights-only checkpoint; broken ones are set aside as ``*.broken`` with a message). A
  translation run is resumed by its own job, with the same call.
* :func:`preview` builds the dataset and returns a grid of preprocessed images.

Every stop (the total, a CPU or wall-clock budget, Stop, closing the app, Ctrl-C, SIGTERM)
writes a checkpoint first; a start that fails before its first checkpoint removes what it
created (the training loop does both).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.gan.methods.base import MethodConfig, Task, get_method
from medgan_desktop.core.gan.options import OptionError
from medgan_desktop.core.gan.recommend import ALIAS, RECOMMENDED_METHOD, describe, preset, recommended_config
from medgan_desktop.core.imaging.display import grid
from medgan_desktop.core.jobs.base import JobError, training_errors
from medgan_desktop.core.models.runs import (
    BrokenCheckpoint,
    ModelLoadError,
    RunInfo,
    load_run,
    method_config_from_dict,
    method_config_to_dict,
    newest_intact_checkpoint,
    set_aside_checkpoint,
)
from medgan_desktop.core.progress import CancelToken, ProgressCallback, Stage, no_progress, notice, stage
from medgan_desktop.core.training.config import DataConfig, TrainConfig, check_keys
from medgan_desktop.core.training.data import DataError, TrainingDataset, build_dataset, preview_batch
from medgan_desktop.core.training.loop import RunSummary, train
from medgan_desktop.core.training.validation import BestCheckpoint
from medgan_desktop.core.types import JsonObject, UInt8Array

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


# -- settings ---------------------------------------------------------------------------------
def _kind_check(values: Mapping[str, object], cls: type[DataclassInstance], section: str) -> None:
    """Refuse values of the wrong kind for a config dataclass's fields, judged from each
    field's default (a number for a number, text for text...)."""
    for f in dataclasses.fields(cls):
        if f.name not in values or f.default is dataclasses.MISSING:  # extra, data
            continue
        default, val = f.default, values[f.name]
        if isinstance(default, bool):
            ok, kind = isinstance(val, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(val, int) and not isinstance(val, bool), "a whole number"
        elif isinstance(default, float) or default is None:
            number = isinstance(val, int | float) and not isinstance(val, bool)
            ok, kind = number or (default is None and val is None), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(val, str), "text"
        elif isinstance(default, tuple):
            ok, kind = isinstance(val, list | tuple), "a list"
        else:
            continue
        if not ok:
            raise JobError(f"{section} {f.name} must be {kind}, got {val!r}")


def label_for(method: str) -> str:
    """What a run asked for as ``recommended`` is called in run.json and messages."""
    return f"{ALIAS}: {describe()}" if method.strip().lower() == ALIAS else ""


def field_names() -> tuple[set[str], set[str], set[str]]:
    """MethodConfig, TrainConfig and DataConfig field names."""
    return (
        {f.name for f in dataclasses.fields(MethodConfig)},
        {f.name for f in dataclasses.fields(TrainConfig)},
        {f.name for f in dataclasses.fields(DataConfig)},
    )


def _apply_sets(sets: Mapping[str, Any], option_names: Sequence[str], mc: JsonObject,
                tc: JsonObject) -> None:
    """Route ``KEY=VALUE`` overrides: MethodConfig and TrainConfig fields, ``data.FIELD``,
    and the method's options (``extra.KEY`` or ``KEY``); anything else is refused."""
    m_fields, t_fields, d_fields = field_names()
    m_fields, t_fields = m_fields - {"extra"}, t_fields - {"data"}
    for key, val in sets.items():
        if key.startswith("data."):
            sub = key[5:]
            if sub not in d_fields:
                raise JobError(f"unknown data setting {sub!r}; known: {', '.join(sorted(d_fields))}")
            tc.setdefault("data", {})[sub] = val
        elif key.startswith("extra.") or key in option_names:
            mc.setdefault("extra", {})[key.removeprefix("extra.")] = val
        elif key in m_fields:
            mc[key] = val
        elif key in t_fields:
            tc[key] = val
        else:
            known = [*sorted(m_fields | t_fields), *option_names, *(f"data.{f}" for f in sorted(d_fields))]
            near = set(difflib.get_close_matches(key, known, n=3, cutoff=0.75))
            near |= {k for k in known if len(key) >= 2 and key in k}
            hint = f" (did you mean {' or '.join(repr(k) for k in sorted(near))}?)" if near else ""
            raise JobError(f"unknown setting {key!r}{hint}: give a MethodConfig or TrainConfig "
                           "field, data.FIELD, or one of the method's options (medgan train "
                           "--list-methods)")


def read_config(cfg: Mapping[str, Any], mc: JsonObject, tc: JsonObject) -> None:
    """Merge a config object (``method_config``, ``train_config``, ``data``) into ``mc``/``tc``.

    Raises:
        JobError: unknown keys or sections.
    """
    m_fields, t_fields, d_fields = field_names()
    sections = ("method_config", "train_config", "data")
    try:
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
        raise JobError(f"config: {exc}") from None
    mc["extra"] = {**mc.get("extra", {}), **file_extra}
    mc.update(file_mc)
    tc.update(file_tc)
    tc["data"] = {**tc.get("data", {}), **data}


def settings(
    method: str,
    *,
    config: Mapping[str, Any] | None = None,
    sets: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    loop: Mapping[str, Any] | None = None,
) -> tuple[str, MethodConfig, TrainConfig]:
    """A new run's checked settings, built in the order a user expects to be obeyed:
    the method's published preset (or the recommended setting), then the config object,
    then ``data`` and ``loop`` fields, then ``sets`` (``KEY=VALUE`` overrides).

    Raises:
        JobError: an unknown or translation method, unknown keys, wrong kinds, bad values.
    """
    recommended = method.strip().lower() == ALIAS
    try:
        cls = get_method(RECOMMENDED_METHOD if recommended else method)
    except KeyError as exc:
        raise JobError(f"{exc.args[0]}, or {ALIAS!r}") from None
    if cls.task != Task.SYNTHESIS:
        raise JobError(f"{cls.name} is a {cls.task} method: train it with medgan translate-train "
                       "(medgan train trains synthesis methods)")
    mc: JsonObject = method_config_to_dict(recommended_config() if recommended else preset(cls.name))
    tc: JsonObject = {}
    if config:
        read_config(config, mc, tc)
    tc["data"] = {**tc.get("data", {}), **dict(data or {})}
    tc.update({k: v for k, v in dict(loop or {}).items() if v is not None})
    _apply_sets(dict(sets or {}), cls.Options.names(), mc, tc)
    _kind_check(mc, MethodConfig, "method setting")
    _kind_check(tc, TrainConfig, "training setting")
    _kind_check(tc.get("data") or {}, DataConfig, "data setting")
    try:
        tcfg = TrainConfig.from_dict(tc, strict=True).validate()
    except (TypeError, ValueError) as exc:
        raise JobError(f"bad training settings: {exc}") from None
    if tcfg.data.path:  # absolute, so that a resume works from any directory
        path = _absolute(tcfg.data.path)
        tcfg = tcfg.replace(data=dataclasses.replace(tcfg.data, path=path))
    mc["size"] = tcfg.data.size
    mc["channels"] = tcfg.data.channels
    try:
        mcfg = method_config_from_dict(mc)
        cls.Options.from_extra(mcfg.extra, strict=True)
    except OptionError as exc:
        raise JobError(f"{cls.name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise JobError(f"bad method settings: {exc}") from None
    return cls.name, mcfg, tcfg


# -- specs and results --------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSpec:
    """A new training run.

    Args:
        method: the registry name (from :func:`settings`).
        method_config: the method's settings (options in ``extra``).
        train_config: the loop's settings and the data.
        out: the run folder ("" : a new ``<method>-<date>`` folder in the runs folder).
        index_db: the study index database, for ``data.kind == "index"``.
        label: what to call the run ("recommended: ..."), recorded in run.json.
    """

    method: str
    method_config: MethodConfig
    train_config: TrainConfig
    out: str = ""
    index_db: str = ""
    label: str = ""


@dataclass(frozen=True)
class ResumeSpec:
    """Continue a run (synthesis or translation).

    Args:
        run_dir: the run folder.
        steps: the new total (None: keep the stored one).
        device: where to train now (None: as stored).
        data: where the training data is now, when it moved (None: the stored path).
        cpu_seconds / budget_minutes: budgets for the continued run (None: as stored).
        threads: CPU threads (None: as stored).
        index_db: the study index database, for runs trained on indexed series.
    """

    run_dir: str
    steps: int | None = None
    device: str | None = None
    data: str | None = None
    cpu_seconds: float | None = None
    budget_minutes: float | None = None
    threads: int | None = None
    index_db: str = ""


@dataclass(frozen=True)
class TrainResult:
    """What a training session did."""

    run_dir: Path
    summary: RunSummary
    n_images: int
    started_at: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def best(self) -> BestCheckpoint | None:
        """The step kept by validation (``best.safetensors``), when the run validates."""
        return BestCheckpoint.read(self.run_dir)


def new_run_dir(paths: AppPaths, method: str) -> Path:
    """A new run folder ``<runs>/<method>-<YYYYmmdd-HHMMSS>[-n]`` (the one naming rule)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = paths.ensure().runs_dir / f"{method}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = run_dir.with_name(f"{method}-{stamp}-{n}")
    return run_dir


def dataset_for(data: DataConfig, seed: int, index_db: str = "") -> TrainingDataset:
    """The training dataset of ``data`` (indexed series through this thread's own connection).

    Raises:
        JobError: the data cannot be read or is too small.
    """
    try:
        if data.kind == "index":
            if not index_db:
                raise JobError("no study index available for the chosen series")
            with StudyIndex(Path(index_db)) as index:
                return build_dataset(data, seed=seed, index=index)
        return build_dataset(data, seed=seed)
    except DataError as exc:
        raise JobError(str(exc)) from exc


def _train(method: str, mcfg: MethodConfig, tcfg: TrainConfig, dataset: TrainingDataset,
           run_dir: Path, progress: ProgressCallback, cancel: CancelToken | None, *,
           resume: bool, label: str = "") -> RunSummary:
    try:
        with training_errors():
            return train(method, mcfg, tcfg, dataset, run_dir, progress=progress, cancel=cancel,
                         resume=resume, label=label)
    except JobError:
        raise
    except (ValueError, KeyError) as exc:  # a method that refuses its data
        raise JobError(str(exc)) from exc


def run_train(spec: TrainSpec, paths: AppPaths | None = None,
              progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> TrainResult:
    """Build the dataset and train a new run (see the module docs).

    Raises:
        JobError: bad data or settings, a folder that holds a run, a failed training
            (out of memory: exit code 3).
    """
    paths = paths or AppPaths.default()
    cls = get_method(spec.method)
    run_dir = Path(spec.out).expanduser() if spec.out else new_run_dir(paths, cls.name)
    if (run_dir / "run.json").exists():
        raise JobError(f"{run_dir} already holds a run: resume it or choose another folder")
    if run_dir.exists() and not run_dir.is_dir():
        raise JobError(f"{run_dir} is a file, not a folder")
    stage(progress, Stage.LOAD, "loading data")
    dataset = dataset_for(spec.train_config.data, spec.train_config.seed, spec.index_db)
    mcfg = spec.method_config
    names = dataset.preprocessing.class_names
    warnings: list[str] = []
    if names:
        mcfg = dataclasses.replace(mcfg, num_classes=len(names))
        if not (cls.requires_labels or cls.supports_labels):
            warnings.append(f"{cls.name} does not use class labels: the {len(names)} classes "
                            f"({', '.join(names)}) are ignored; choose a class-conditional method "
                            "(cgan, stylegan2, progressive) to use them")
            notice(progress, warnings[-1])
    elif cls.requires_labels:
        raise JobError(f"{cls.name} is class-conditional: use labelled data, one subfolder per "
                       "class (--label-from-subfolders, or 'Class labels from subfolders')")
    described = dict(dataset.describe())
    val = described.get("n_validation") or 0
    held = f", {val} held out for validation ({described.get('validation_patients')} patients)" if val else ""
    stage(progress, Stage.TRAIN, f"training {spec.label or cls.name} on {len(dataset)} images{held} -> {run_dir}")
    summary = _train(cls.name, mcfg, spec.train_config, dataset, run_dir, progress, cancel,
                     resume=False, label=spec.label)
    return TrainResult(run_dir, summary, len(dataset), 0, tuple(warnings))


@dataclass(frozen=True)
class ResumePlan:
    """Where a run resumes: the newest intact checkpoint, and the broken ones newer than it."""

    info: RunInfo
    step: int
    broken: tuple[BrokenCheckpoint, ...]


def resume_plan(run_dir: Path) -> ResumePlan:
    """The one resume rule: the newest checkpoint whose weights and weights-only state both
    read back; newer broken ones are listed (:func:`run_resume` sets them aside).

    Raises:
        JobError: not a run, or no intact checkpoint.
    """
    try:
        info = load_run(run_dir)
    except ModelLoadError as exc:
        raise JobError(str(exc)) from exc
    intact, broken = newest_intact_checkpoint(run_dir)
    if intact is None:
        if broken:
            why = "; ".join(b.reason for b in broken)
            raise JobError(f"{run_dir} has no intact checkpoint to resume from ({why}): start a new run")
        raise JobError(f"{run_dir} holds no checkpoint to resume from (the run stopped before its "
                       "first one): start a new run")
    return ResumePlan(info, intact[0], tuple(broken))


def _absolute(path: str | Path) -> str:
    """``path`` with ``~`` expanded, made absolute and normalised (links are not followed)."""
    return os.path.abspath(Path(path).expanduser())


def _resume_data_path(run_dir: Path, stored: str, moved_to: str | None) -> str:
    """Where a resumed run's data is: the given path, the stored one, or a stored relative
    path taken from the run folder's parent (runs written before paths were absolute)."""
    if moved_to:
        if not Path(moved_to).expanduser().exists():
            raise JobError(f"the data folder {moved_to} does not exist")
        return _absolute(moved_to)
    if not stored:  # study-index series: no path
        return stored
    tried = [_absolute(stored)]
    if not Path(stored).expanduser().is_absolute():
        tried.append(_absolute(Path(_absolute(run_dir)).parent / stored))
    for cand in tried:
        if Path(cand).exists():
            return cand
    raise JobError(f"the training data of {run_dir} ({stored}) is not found; tried "
                   f"{' and '.join(tried)}: give its current location (--data PATH)")


def run_resume(spec: ResumeSpec, paths: AppPaths | None = None,
               progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> TrainResult:
    """Continue a run from its newest intact checkpoint (see :func:`resume_plan`).

    Broken newer checkpoints are set aside as ``*.broken`` (each reported as a notice).
    A translation run is continued by :func:`~medgan_desktop.core.jobs.train_translation.
    run_train_translation` with the same rule.

    Raises:
        JobError: nothing to resume, a total not above the checkpoint, data not found.
    """
    run_dir = Path(spec.run_dir)
    plan = resume_plan(run_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and plan.broken:
        files = ", ".join(str(b.weights) for b in plan.broken)
        raise JobError(f"the newest checkpoint(s) of {run_dir} are unreadable ({files}): resume "
                       f"once without torchrun (it sets them aside and continues from step "
                       f"{plan.step}), or move them away")
    try:
        stored = TrainConfig.from_dict(plan.info.train_config)
    except (TypeError, ValueError) as exc:
        raise JobError(f"{run_dir}/run.json has bad training settings: {exc}") from exc
    total = spec.steps if spec.steps is not None else stored.steps
    budgeted = bool(spec.cpu_seconds or spec.budget_minutes)
    if total <= plan.step and not budgeted:
        raise JobError(f"{run_dir} already reached step {plan.step}: ask for a larger total")
    if int(os.environ.get("RANK", "0")) == 0:
        for b in plan.broken:
            moved = set_aside_checkpoint(b.weights)
            notice(progress, f"the checkpoint at step {b.step} is unreadable ({b.reason}); set "
                   f"aside as {', '.join(p.name for p in moved)}; resuming from step {plan.step}")
    if plan.info.task == Task.TRANSLATION:
        from medgan_desktop.core.jobs.train_translation import PairSpec, TranslationTrainSpec, run_train_translation

        res = run_train_translation(TranslationTrainSpec(
            method="", pairs=(PairSpec("", ""),), out=str(run_dir), steps=total,
            cpu_seconds=spec.cpu_seconds or 0.0, budget_minutes=spec.budget_minutes or 0.0,
            device=spec.device or stored.device, threads=spec.threads or stored.threads,
            resume=True), progress, cancel)
        return TrainResult(res.run_dir, res.summary, res.n_slices, plan.step)
    data = dataclasses.replace(stored.data, path=_resume_data_path(run_dir, stored.data.path, spec.data))
    changes: dict[str, Any] = {"steps": total, "data": data}
    for key, value in (("device", spec.device), ("cpu_seconds", spec.cpu_seconds),
                       ("budget_minutes", spec.budget_minutes), ("threads", spec.threads)):
        if value is not None:
            changes[key] = value
    tcfg = stored.replace(**changes)
    stage(progress, Stage.LOAD, "loading data")
    dataset = dataset_for(tcfg.data, tcfg.seed, spec.index_db)
    stage(progress, Stage.TRAIN, f"resuming {plan.info.method} in {run_dir} from step {plan.step}")
    summary = _train(plan.info.method, plan.info.method_config, tcfg, dataset, run_dir, progress,
                     cancel, resume=True)
    return TrainResult(run_dir, summary, len(dataset), plan.step)


# -- preview ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    """16 preprocessed training images, how many there are and their classes."""

    grid: UInt8Array
    n_images: int
    class_names: tuple[str, ...]


def preview(data: DataConfig, index_db: str = "", progress: ProgressCallback = no_progress,
            cancel: CancelToken | None = None) -> Preview:
    """The Train panel's preview of the data after preprocessing."""
    ds = dataset_for(data, 0, index_db)
    if cancel is not None:
        cancel.check()
    batch = preview_batch(ds, 16, seed=1)
    return Preview(grid(batch.numpy()), len(ds), ds.preprocessing.class_names)
