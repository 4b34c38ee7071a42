"""Translation training: MR/CT pairs in, a trained run folder and held-out metrics out.

``medgan translate-train`` and the Train panel's translation tab describe what to do with a
:class:`TranslationTrainSpec` and call :func:`run_train_translation`, which

1. reads each MR/CT pair and brings the CT onto the MR grid (optionally registering it,
   rigid then affine; 2D image pairs are registered slice by slice);
2. splits the data: one pair -> a held-out slab at the end of the volume (with a gap of
   the 2.5D context); several pairs -> whole patients held out (never slices); the split
   is reported before training (which patients or slices are held out, and how many
   slices train), so nobody trains on less than they think;
3. builds the paired (pix2pix, unet_l1, distilled) or unpaired (cyclegan, unit) slice
   dataset and trains with the shared loop (a distillation teacher is loaded here and
   handed to the method), within the step total or a CPU/wall-clock budget;
4. records in ``run.json`` what the model may be applied to (modality, weighting, body
   part, field of view: :mod:`medgan_desktop.core.models.fit`), and the spec itself so the
   run can be resumed;
5. translates each held-out MR with the trained model and scores it against the CT with
   the SynthRAD definitions, written to ``heldout_metrics.json``.

Progress: :class:`~medgan_desktop.core.progress.PairEvent` per prepared pair, a stage
report for the split and the training start, the loop's step events, then the evaluation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_desktop.core.atomic import atomic_write_text
from medgan_desktop.core.dicom.index import IndexError_, StudyIndex
from medgan_desktop.core.dicom.reader import DicomReadError
from medgan_desktop.core.dicom.series import load_series_from_index
from medgan_desktop.core.gan.methods.base import GanMethod, MethodConfig, Task, get_method
from medgan_desktop.core.gan.options import OptionError
from medgan_desktop.core.gan.recommend import ALIAS, translation_recipe
from medgan_desktop.core.imaging.slices import volume_slices
from medgan_desktop.core.imaging.tasks import DEFAULT_TASK, TranslationTask, get_task, slice_view
from medgan_desktop.core.jobs.base import JobError, training_errors
from medgan_desktop.core.jobs.translation_eval import evaluate_heldout
from medgan_desktop.core.models.fit import applicability_of_training
from medgan_desktop.core.models.refs import load_ref
from medgan_desktop.core.models.registry import ModelError
from medgan_desktop.core.models.runs import ModelLoadError, load_run
from medgan_desktop.core.progress import CancelToken, PairEvent, Progress, ProgressCallback, Stage, no_progress, stage
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.devices import select_device
from medgan_desktop.core.training.loop import RunSummary, train
from medgan_desktop.core.training.pairs import (
    PairedDataError,
    PairedVolume,
    degraded_pair,
    is_image_source,
    load_degraded,
    load_image_pair,
    load_pair,
    pair_volumes,
    patient_split,
    slab_split,
)
from medgan_desktop.core.training.slice_data import PairedSliceDataset, UnpairedSliceDataset
from medgan_desktop.core.types import JsonObject

HELDOUT_METRICS = "heldout_metrics.json"
#: Methods trained on unpaired MR and CT slices.
UNPAIRED_METHODS = ("cyclegan", "unit")
#: run.json ``data`` key holding the spec, for resuming.
SPEC_KEY = "translation_spec"


@dataclass(frozen=True)
class PairSpec:
    """One source/target pair of a patient (MR/CT for the default task).

    Args:
        mr: the source: series folder, volume file, or image(s); a SeriesInstanceUID when
            ``from_index`` (the MR for MR -> CT; the CT for CT -> MR; for a self-supervised
            task, denoising or super-resolution, the one real image pairs are made from).
        ct: the target of the same patient, in the same form ("" for a self-supervised task).
        patient: patient key for the split ("" : the MR's PatientID, else its file name).
        from_index: ``mr`` and ``ct`` are series of the study index (``TranslationTrainSpec.index_db``).
    """

    mr: str
    ct: str
    patient: str = ""
    from_index: bool = False


@dataclass(frozen=True)
class TranslationTrainSpec:
    """Everything a translation training run needs.

    Args:
        method: a translation method (pix2pix, unet_l1, cyclegan, unit, distilled), or
            ``"recommended"`` (the measured recipe of :mod:`medgan_desktop.core.gan.recommend`:
            its method, options and settings, which the fields given here override).
        pairs: the MR/CT pairs.
        out: the run folder to create (or, with ``resume``, to continue).
        register: register each CT onto its MR (rigid, Mattes MI) before training.
        affine: with ``register``, an affine stage after the rigid one (kept when it helps).
        size: network image size.
        context: 2.5D neighbours each side (input channels ``2c + 1``).
        base_filters: generator width.
        steps: training steps (the most, when a budget is set).
        batch: batch size.
        lr: learning rate of G and D.
        holdout: held-out fraction (a slab of one pair, or patients of several); 0 trains
            on everything and skips the held-out evaluation.
        flip: random left-right flips (paired methods).
        teacher: teacher run folder or model id (``distilled``).
        device: auto | cpu | cuda | mps.
        threads: CPU threads of torch and ITK (0: all cores but one).
        seed: seeds the split, initialisation and data order.
        extra: method options (the method's ``Options``; unknown keys are refused).
        evaluate: score the held-out part after training.
        index_db: the study index database for pairs ``from_index``.
        cpu_seconds: stop when training has used this much CPU time (0: no limit).
        budget_minutes: stop after this many wall-clock minutes (0: no limit).
        resume: continue the run in ``out`` (the stored spec is used; ``steps`` and the
            budgets given here apply).
        task: the image-to-image task (:data:`~medgan_desktop.core.imaging.tasks.TASKS`:
            mr_to_ct, ct_to_mr, t1_to_t2, ct_denoise, ct_superres).
        heldout_patients: hold out exactly these patients (a patient split chosen by the
            user, e.g. for a fixed benchmark fold); empty: ``holdout`` and ``seed`` decide.
        slice_qc: 2D image pairs with ``register``: leave out of training and held-out
            scoring the slices whose final MI is below this share of the pair's median
            (:func:`~medgan_desktop.core.training.pairs.slice_qc`; 0 keeps all). Every
            slice's values and verdict are printed and saved in ``registration_qc.csv``.
    """

    method: str
    pairs: tuple[PairSpec, ...]
    out: str
    register: bool = False
    affine: bool = False
    size: int = 128
    context: int = 0
    base_filters: int = 32
    steps: int = 2000
    batch: int = 8
    lr: float = 2e-4
    holdout: float = 0.25
    flip: bool = False
    teacher: str = ""
    device: str = "auto"
    threads: int = 0
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    evaluate: bool = True
    index_db: str = ""
    cpu_seconds: float = 0.0
    budget_minutes: float = 0.0
    resume: bool = False
    task: str = DEFAULT_TASK
    heldout_patients: tuple[str, ...] = ()
    slice_qc: float = 0.0

    def to_dict(self) -> JsonObject:
        d = dataclasses.asdict(self)
        d["pairs"] = [dataclasses.asdict(p) for p in self.pairs]
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TranslationTrainSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["pairs"] = tuple(PairSpec(**p) for p in kw.get("pairs", ()))
        kw["extra"] = dict(kw.get("extra") or {})
        kw["heldout_patients"] = tuple(kw.get("heldout_patients") or ())
        return cls(**kw)


def resolved_spec(spec: TranslationTrainSpec) -> TranslationTrainSpec:
    """``spec`` with ``method="recommended"`` replaced by the recipe (its fields win where
    they differ from the defaults)."""
    if spec.method.strip().lower() != ALIAS:
        return spec
    recipe = translation_recipe()
    defaults = TranslationTrainSpec(method="", pairs=(), out="")
    changes: dict[str, Any] = {"method": recipe.method}
    for key, value in recipe.settings.items():
        if getattr(spec, key) == getattr(defaults, key):
            changes[key] = value
    changes["extra"] = {**recipe.options, **dict(spec.extra)}
    return dataclasses.replace(spec, **changes)


def validate(spec: TranslationTrainSpec) -> type[GanMethod]:
    """Check the settings; return the method class.

    Raises:
        JobError: an unknown or non-translation method, unknown method options, a run
            folder that already holds a run, out-of-range numbers, a missing teacher.
    """
    try:
        cls = get_method(spec.method)
    except KeyError as exc:
        raise JobError(f"{exc.args[0]}, or {ALIAS!r}") from None
    if cls.task != Task.TRANSLATION:
        raise JobError(f"{cls.name} is a {cls.task} method, not a translation method "
                       "(train it with medgan train)")
    try:
        task = get_task(spec.task)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    if not spec.pairs:
        raise JobError("no MR/CT pairs given" if task.key == DEFAULT_TASK else
                       f"no {task.source_modality} images given for {task.title}")
    if task.self_supervised and any(p.ct for p in spec.pairs):
        raise JobError(f"{task.title} makes its pairs from one real {task.target_modality} image each: "
                       "give the images alone (--series), not pairs")
    if not task.self_supervised and not all(p.ct for p in spec.pairs):
        raise JobError(f"{task.title} needs pairs: a {task.source_modality} and a {task.target_modality} "
                       "of each patient")
    if (Path(spec.out) / "run.json").exists() and not spec.resume:
        raise JobError(f"{spec.out} already holds a run: resume it or choose another folder")
    checks = (
        (spec.size >= 16, f"size must be at least 16 (got {spec.size})"),
        (spec.context >= 0, f"context must be 0 or more (got {spec.context})"),
        (spec.base_filters >= 1, f"base filters must be at least 1 (got {spec.base_filters})"),
        (spec.steps >= 1, f"steps must be at least 1 (got {spec.steps})"),
        (spec.batch >= 1, f"batch must be at least 1 (got {spec.batch})"),
        (spec.lr > 0, f"the learning rate must be positive (got {spec.lr})"),
        (0.0 <= spec.holdout < 1.0, f"holdout must be in [0, 1) (got {spec.holdout})"),
        (spec.threads >= 0, f"threads must be 0 or more (got {spec.threads})"),
        (spec.cpu_seconds >= 0 and spec.budget_minutes >= 0, "budgets must be 0 or more"),
    )
    for ok, msg in checks:
        if not ok:
            raise JobError(msg)
    try:
        cls.Options.from_extra(spec.extra, strict=True)
    except OptionError as exc:
        raise JobError(f"{cls.name}: {exc}") from None
    if cls.frozen_inputs and not spec.teacher:
        raise JobError(f"the {cls.name} method needs a teacher (run folder or model id)")
    try:
        select_device("cuda" if spec.device.lower() == "gpu" else spec.device)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    if any(p.from_index for p in spec.pairs) and not spec.index_db:
        raise JobError("pairs from the study index need the index database")
    return cls


@dataclass(frozen=True)
class PairInfo:
    """What was prepared for one pair (shown by the CLI and the GUI, stored in run.json)."""

    patient: str
    mr: str
    ct: str
    slices: int
    registration: JsonObject | None = None

    def to_dict(self) -> JsonObject:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TranslationTrainResult:
    """What :func:`run_train_translation` did.

    Args:
        run_dir: the run folder.
        summary: the training loop's summary.
        n_slices: training slices (MR slices for the unpaired methods).
        pairs: the prepared pairs.
        split: how the data were split (``kind`` slab / patient / none).
        heldout: the held-out metrics (also in ``heldout_metrics.json``); None when not
            evaluated (holdout 0, evaluation off, or the run was stopped early).
        method: the method trained (the recipe's for ``recommended``).
    """

    run_dir: Path
    summary: RunSummary
    n_slices: int
    pairs: tuple[PairInfo, ...]
    split: JsonObject
    heldout: JsonObject | None = None
    method: str = ""


def registration_text(quality: Mapping[str, Any] | None) -> str:
    """``"MI 0.123 -> 0.456 (rigid+affine)"`` for a registration quality dict."""
    if not quality:
        return "not registered (resampled onto the MR grid)"
    stages = "+".join(str(s) for s in quality.get("stages", ()))
    text = f"MI {float(quality['initial_mi']):.3f} -> {float(quality['final_mi']):.3f}"
    text = f"{text} ({stages})" if stages else text
    per_slice = quality.get("per_slice") or []
    if per_slice and float(quality.get("qc_ratio") or 0.0) > 0.0:
        out = [f"{q['file']} {float(q['final_mi']):.2f}" for q in per_slice if not q.get("kept", True)]
        text += (f"; registration QC kept {quality['kept']} of {len(per_slice)} slices"
                 + (f", left out: {', '.join(out)}" if out else ""))
    return text


#: Per-slice registration values and QC verdicts of a run's 2D pairs (in the run folder).
REGISTRATION_QC = "registration_qc.csv"


def write_registration_qc(run_dir: Path, pairs: Sequence[PairedVolume]) -> Path | None:
    """Every registered slice's MI before/after and whether it was kept, as CSV (atomically)."""
    rows = [(p.patient, q) for p in pairs if p.registration for q in p.registration.get("per_slice") or []]
    if not rows:
        return None
    lines = ["patient,file,initial_mi,final_mi,stages,kept"]
    for patient, q in rows:
        lines.append(f"{patient},{q['file']},{float(q['initial_mi']):.4f},{float(q['final_mi']):.4f},"
                     f"{'+'.join(q.get('stages', ()))},{'yes' if q.get('kept', True) else 'no'}")
    path = run_dir / REGISTRATION_QC
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# -- steps ------------------------------------------------------------------------------------
def prepare_pairs(spec: TranslationTrainSpec, progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> list[PairedVolume]:
    """Read every pair of ``spec`` and bring its CT onto the MR grid.

    Raises:
        PairedDataError: a pair cannot be read or used.
        Cancelled: cancelled between pairs.
    """
    out: list[PairedVolume] = []
    n = len(spec.pairs)
    index = None
    try:
        for i, ps in enumerate(spec.pairs):
            if cancel is not None:
                cancel.check()
            what = "registering" if spec.register else "reading"
            stage(progress, Stage.PREPARE, f"{what} pair {i + 1}/{n}")
            if ps.from_index and index is None:
                try:
                    index = StudyIndex(Path(spec.index_db))  # this thread's own connection
                except IndexError_ as exc:
                    raise PairedDataError(f"cannot open the study index: {exc}") from exc
            try:
                pair = _load_one(spec, ps, index, cancel)
            except PairedDataError as exc:
                raise PairedDataError(f"pair {i + 1} ({ps.mr}, {ps.ct}): {exc}") from exc
            except (ValueError, OSError, RuntimeError, DicomReadError) as exc:
                raise PairedDataError(
                    f"cannot prepare the MR/CT pair {i + 1} ({ps.mr}, {ps.ct}): {exc}"
                ) from exc
            out.append(pair)
            info = _pair_info(ps, pair)
            reg = registration_text(pair.registration)
            kept = len(pair.slices) if pair.slices is not None else info.slices
            progress(Progress(
                i + 1, n,
                f"pair {i + 1}/{n} (patient {pair.patient}, {info.slices} slices): {reg}",
                PairEvent(pair.patient, info.slices, reg, kept),
            ))
    finally:
        if index is not None:
            index.close()
    return out


def _load_one(
    spec: TranslationTrainSpec, ps: PairSpec, index: StudyIndex | None, cancel: CancelToken | None
) -> PairedVolume:
    task = get_task(spec.task)
    if task.self_supervised:
        if ps.from_index:
            assert index is not None
            vol = load_series_from_index(index, ps.mr, cancel=cancel)
            return degraded_pair(vol, task, ps.patient, spec.seed)
        return load_degraded(Path(ps.mr), task, ps.patient, spec.seed)
    if not ps.from_index:
        images = (is_image_source(ps.mr), is_image_source(ps.ct))
        if all(images):
            return load_image_pair(
                Path(ps.mr), Path(ps.ct), register=spec.register, affine=spec.affine,
                max_side=max(64, spec.size), patient=ps.patient, cancel=cancel, task=task,
                qc_ratio=spec.slice_qc if spec.register else 0.0,
            )
        if any(images):
            raise PairedDataError(
                "one side of the pair is a 2D image (folder) and the other is not: give two "
                "image files/folders, or two series/volumes"
            )
        return load_pair(Path(ps.mr), Path(ps.ct), register=spec.register, patient=ps.patient,
                         affine=spec.affine, cancel=cancel, task=task)
    assert index is not None
    mr = load_series_from_index(index, ps.mr, cancel=cancel)
    ct = load_series_from_index(index, ps.ct, cancel=cancel)
    rec = index.series(ps.mr)
    patient = ps.patient or mr.source.patient_id or (rec.patient_id if rec else "") or ps.mr
    return pair_volumes(mr, ct, register=spec.register, affine=spec.affine, patient=patient,
                        cancel=cancel, task=task)


def _pair_info(ps: PairSpec, pair: PairedVolume) -> PairInfo:
    def where(p: str) -> str:
        return p if ps.from_index else str(Path(p).resolve())

    return PairInfo(
        patient=pair.patient,
        mr=where(ps.mr),
        ct=where(ps.ct) if ps.ct else "",
        slices=int(pair.source.shape[0]),
        registration=pair.registration,
    )


def _n_slices(p: PairedVolume, axis: str) -> int:
    return int(p.source.shape[1] if axis == "coronal" else p.source.shape[0])


def split_pairs(
    pairs: Sequence[PairedVolume], holdout: float, context: int, seed: int, axis: str = "axial",
    heldout_patients: Sequence[str] = (),
) -> tuple[list[PairedVolume], list[tuple[PairedVolume, list[int]]], JsonObject]:
    """Training pairs, held-out ``(pair, slices)`` and a description of the split.

    One pair: a contiguous held-out slab at the end, ``context + 1`` slices away from the
    training part. Several: a patient split (all pairs of a patient on one side).

    Raises:
        PairedDataError: too few slices for the slab, or fewer than two patients.
    """
    if heldout_patients:
        known = {p.patient for p in pairs}
        missing = [p for p in heldout_patients if p not in known]
        if missing or set(heldout_patients) >= known:
            raise PairedDataError(
                f"held-out patient(s) {', '.join(missing)} are not among the pairs ({', '.join(sorted(known))})"
                if missing else "every patient would be held out: keep at least one for training")
        te = sorted(set(heldout_patients))
        tr = sorted(known - set(te))
        return ([p for p in pairs if p.patient in tr],
                [(p, _usable(p, axis)) for p in pairs if p.patient in te],
                {"kind": "patient", "train_patients": tr, "test_patients": te, "chosen": True})
    if holdout <= 0.0:
        return list(pairs), [], {"kind": "none"}
    if len(pairs) == 1:
        p = pairs[0]
        try:
            train_idx, test_idx = slab_split(_n_slices(p, axis), holdout, gap=context + 1)
        except PairedDataError as exc:
            raise PairedDataError(
                f"{exc}: one pair needs more slices for a held-out slab (a 2D image pair has one "
                "slice; give a folder of slices or several pairs), or use holdout 0"
            ) from exc
        usable = set(_usable(p, axis))
        train_idx = [k for k in train_idx if k in usable]
        test_idx = [k for k in test_idx if k in usable]
        if not train_idx or not test_idx:
            raise PairedDataError("too few slices passed the registration quality control for a held-out slab")
        train_pairs = [
            PairedVolume(p.source, p.target, p.patient, tuple(train_idx), p.registration)
        ]
        split = {
            "kind": "slab",
            "axis": axis,
            "train_slices": [train_idx[0], train_idx[-1]],
            "test_slices": [test_idx[0], test_idx[-1]],
        }
        return train_pairs, [(p, test_idx)], split
    patients = [p.patient for p in pairs]
    if len(set(patients)) < 2:
        raise PairedDataError(
            f"all {len(pairs)} pairs belong to patient {patients[0]!r}: a held-out split by "
            "patient needs two patients (give one pair for a slab split, or use holdout 0)"
        )
    tr, te = patient_split(patients, holdout, seed)
    train_pairs = [p for p in pairs if p.patient in tr]
    test_pairs = [(p, _usable(p, axis)) for p in pairs if p.patient in te]
    return train_pairs, test_pairs, {"kind": "patient", "train_patients": tr, "test_patients": te}


def _usable(p: PairedVolume, axis: str) -> list[int]:
    """The pair's slices that may be used (those that passed the registration QC)."""
    return list(p.slices) if p.slices is not None else list(range(_n_slices(p, axis)))


def split_text(split: Mapping[str, Any], holdout: float) -> str:
    """The held-out part in words (printed before training starts)."""
    kind = split.get("kind")
    if kind == "none":
        return "no held-out part (holdout 0): training on everything, no held-out evaluation"
    if kind == "slab":
        a, b = split["test_slices"]
        plane = "coronal slices" if split.get("axis") == "coronal" else "slices"
        return (f"held out: {plane} {a}-{b} of the one pair ({holdout:.0%}), scored after training; "
                "training on the others")
    share = "as chosen" if split.get("chosen") else f"{holdout:.0%} of the patients"
    return (f"held out: patient(s) {', '.join(split['test_patients'])} ({share}), scored after training; "
            f"training on {', '.join(split['train_patients'])}")


def _in_slicing_order(p: PairedVolume, axis: str) -> PairedVolume:
    """The pair with its slicing axis first (coronal tasks: j), ``slices`` along it."""
    if axis == "axial":
        return p
    return PairedVolume(replace(p.source, array=slice_view(np.asarray(p.source.array), axis)),
                        replace(p.target, array=slice_view(np.asarray(p.target.array), axis)),
                        p.patient, p.slices, p.registration)


def build_dataset(
    method: str,
    train_pairs: Sequence[PairedVolume],
    size: int,
    context: int,
    flip: bool,
    description: JsonObject,
    task: TranslationTask | None = None,
) -> PairedSliceDataset | UnpairedSliceDataset:
    """The paired or unpaired slice dataset ``method`` trains on."""
    task = task or get_task(DEFAULT_TASK)
    train_pairs = [_in_slicing_order(p, task.slice_axis) for p in train_pairs]
    if method in UNPAIRED_METHODS:
        srcs = [
            p.source if p.slices is None else volume_slices(p.source, p.slices) for p in train_pairs
        ]
        tgts = [
            p.target if p.slices is None else volume_slices(p.target, p.slices) for p in train_pairs
        ]
        regs = [p.registration for p in train_pairs if p.registration]
        return UnpairedSliceDataset(
            srcs, tgts, size, context, description={"registration": regs, **description}, task=task
        )
    return PairedSliceDataset(train_pairs, size, context, flip=flip, description=description, task=task)


def _teacher_network(spec: TranslationTrainSpec, mcfg: MethodConfig, device: torch.device) -> tuple[nn.Module, str]:
    """Load the distillation teacher and check that it fits the student."""
    try:
        teacher, resolved = load_ref(spec.teacher, None, device)
    except (ModelError, ModelLoadError) as exc:
        raise JobError(f"cannot use the teacher {spec.teacher!r}: {exc}") from exc
    pre = teacher.info.preprocessing
    if teacher.info.task != "translation":
        raise JobError(f"the teacher {resolved.model_id} is not a translation model")
    if pre.size != mcfg.size or pre.channels != mcfg.channels:
        raise JobError(f"the teacher works at {pre.size}px/{pre.channels}ch, the student at "
                       f"{mcfg.size}px/{mcfg.channels}ch: they must match")
    if teacher.method.config.in_channels != mcfg.in_channels:
        raise JobError(f"the teacher takes {teacher.method.config.in_channels} input channels, "
                       f"the student {mcfg.in_channels}: use the same 2.5D context")
    return teacher.method.inference_network(), str(resolved.folder)


def _stored_spec(spec: TranslationTrainSpec) -> TranslationTrainSpec:
    """For ``resume``: the spec the run was started with, with this call's steps and budgets."""
    try:
        info = load_run(Path(spec.out))
    except ModelLoadError as exc:
        raise JobError(f"cannot resume {spec.out}: {exc}") from exc
    stored = info.data.get(SPEC_KEY)
    if not isinstance(stored, Mapping):
        raise JobError(f"{spec.out} was trained by a version that did not record its settings: "
                       "it cannot be resumed; start a new run")
    old = TranslationTrainSpec.from_dict(stored)
    return dataclasses.replace(old, steps=spec.steps, cpu_seconds=spec.cpu_seconds,
                               budget_minutes=spec.budget_minutes, device=spec.device,
                               threads=spec.threads, resume=True, out=spec.out)


def run_train_translation(
    spec: TranslationTrainSpec,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> TranslationTrainResult:
    """Prepare the pairs, split, train and evaluate the held-out part (see the module docs).

    Raises:
        JobError: bad settings, unusable pairs, a failed training (out of memory: exit code 3).
        Cancelled: cancelled while preparing the data (a cancel during training stops
            the loop with a checkpoint and returns a result with ``summary.cancelled``).
    """
    if spec.resume:
        spec = _stored_spec(spec)
    spec = resolved_spec(spec)
    cls = validate(spec)
    task = get_task(spec.task)
    if task.self_supervised and "residual" in cls.Options.names() and "residual" not in spec.extra:
        # within one modality the network learns the correction (it starts as the identity)
        spec = dataclasses.replace(spec, extra={**dict(spec.extra), "residual": True})
    out = Path(spec.out)
    try:
        pairs = prepare_pairs(spec, progress, cancel)
        infos = tuple(_pair_info(ps, p) for ps, p in zip(spec.pairs, pairs, strict=True))
        train_pairs, test_pairs, split = split_pairs(pairs, spec.holdout, spec.context, spec.seed,
                                                     task.slice_axis, spec.heldout_patients)
        stage(progress, Stage.PREPARE, f"{task.describe()}; {split_text(split, spec.holdout)}")
        app = applicability_of_training([p.source for p in train_pairs])
        if task.source_contrast and not app.weightings:
            app = replace(app, weightings=(task.source_contrast,))
        desc = {
            "pairs": [[i.mr, i.ct] for i in infos],
            "pair_details": [i.to_dict() for i in infos],
            "split": split,
            "task": task.key,
            "applicability": app.to_dict(),
            SPEC_KEY: spec.to_dict(),
        }
        dataset = build_dataset(cls.name, train_pairs, spec.size, spec.context, spec.flip, desc, task)
    except PairedDataError as exc:
        raise JobError(str(exc)) from exc
    mcfg = MethodConfig(
        size=spec.size,
        in_channels=2 * spec.context + 1,
        channels=1,
        base_filters=spec.base_filters,
        lr_g=spec.lr,
        lr_d=spec.lr,
        extra=dict(spec.extra),
    )
    device = "cuda" if spec.device.lower() == "gpu" else spec.device
    frozen: dict[str, Any] = {}
    if cls.frozen_inputs:
        net, folder = _teacher_network(spec, mcfg, select_device(device))
        frozen["teacher"] = net
        mcfg = dataclasses.replace(mcfg, extra={**mcfg.extra, "teacher": folder})
    first = spec.pairs[0]
    if first.from_index:
        data = DataConfig(kind="index", series_uids=tuple(p.mr for p in spec.pairs),
                          size=spec.size, modality=task.source_modality)
    else:
        data = DataConfig(path=infos[0].mr, kind="volumes", size=spec.size, modality=task.source_modality)
    tcfg = TrainConfig(
        steps=spec.steps,
        batch_size=spec.batch,
        checkpoint_every=max(1, spec.steps // 4),
        sample_every=0,
        log_every=max(1, min(50, spec.steps // 20)),
        seed=spec.seed,
        device=device,
        threads=spec.threads,
        keep_checkpoints=1,
        cpu_seconds=spec.cpu_seconds,
        budget_minutes=spec.budget_minutes,
        data=data,
    )
    n = len(dataset)
    budget = (f", at most {spec.cpu_seconds:g} CPU-s" if spec.cpu_seconds else "") + (
        f", at most {spec.budget_minutes:g} min" if spec.budget_minutes else "")
    stage(progress, Stage.TRAIN,
          f"training {cls.name} on {n} slices for up to {spec.steps} steps{budget} -> {out}")
    with training_errors():
        summary = train(cls.name, mcfg, tcfg, dataset, out, progress=progress, cancel=cancel,
                        resume=spec.resume, frozen_networks=frozen)
    if out.is_dir():
        write_registration_qc(out, pairs)
    heldout: JsonObject | None = None
    if spec.evaluate and test_pairs and not summary.cancelled:
        heldout = evaluate_heldout(out, test_pairs, task, spec.device, progress, cancel)
        atomic_write_text(out / HELDOUT_METRICS, json.dumps(heldout, indent=2) + "\n")
    return TranslationTrainResult(
        run_dir=out, summary=summary, n_slices=n, pairs=infos, split=split, heldout=heldout,
        method=cls.name,
    )


def index_pair_specs(db: Path | str | None, patients: Sequence[str] = (), task: str = DEFAULT_TASK
                     ) -> tuple[str, tuple[PairSpec, ...]]:
    """The study index's pairs for ``task`` (of ``patients`` when given) as pair specs:
    the MR and CT of each patient (either way round), or for a self-supervised task each
    real CT series.

    Returns:
        ``(index database path, pairs)``.

    Raises:
        JobError: no index, no patient with what the task needs, an unknown patient.
    """
    from medgan_desktop.core.config import AppPaths
    from medgan_desktop.core.training.pairs import index_pairs

    t = get_task(task)
    if not t.self_supervised and t.source_modality == t.target_modality:
        raise JobError(f"{t.title}: the study index does not pair MR contrasts; give the pairs with --pair")
    path = Path(db) if db is not None else AppPaths.default().index_db
    if not path.is_file():
        raise JobError(f"no study index at {path}: import the series first (medgan import)")
    try:
        with StudyIndex(path) as index:
            if t.self_supervised:
                found = [(r.patient_id or r.study_uid, r.series_uid, "") for r in index.all_series()
                         if str(r.modality).upper() == t.target_modality and not r.synthetic]
            else:
                found = [(pid, mr, ct) if t.source_modality == "MR" else (pid, ct, mr)
                         for pid, mr, ct in index_pairs(index)]
    except IndexError_ as exc:
        raise JobError(str(exc)) from exc
    if not found:
        need = f"a real {t.target_modality} series" if t.self_supervised else "both an MR and a CT series"
        raise JobError(f"no patient in the study index {path} has {need}")
    if patients:
        known = sorted({pid for pid, _, _ in found})
        missing = [p for p in patients if p not in known]
        if missing:
            raise JobError(
                f"nothing for patient(s) {', '.join(missing)} in the study index ({t.title}); "
                f"patients with data: {', '.join(known)}"
            )
        found = [f for f in found if f[0] in patients]
    return str(path.resolve()), tuple(
        PairSpec(src, tgt, patient=pid, from_index=True) for pid, src, tgt in found
    )
