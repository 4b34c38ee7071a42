"""Translation training as one job: MR/CT pairs in, a trained run folder and held-out metrics out.

``medgan translate-train`` and the Train panel's translation tab both describe
what to do with a :class:`TranslationJobSpec` and call :func:`run_translation_job`,
which

1. reads each MR/CT pair and brings the CT onto the MR grid (optionally registering
   it, rigid then affine),
2. splits the data: one pair -> a held-out slab at the end of the volume (with a gap
   of the 2.5D context); several pairs -> whole patients held out (never slices),
3. builds the paired (pix2pix, unet_l1, distilled) or unpaired (cyclegan, unit)
   slice dataset and trains with the shared loop, and
4. translates each held-out MR with the trained model and scores the held-out part
   against the CT with the SynthRAD definitions, written to ``heldout_metrics.json``.

Progress reports carry ``data["stage"]``: ``"prepare"`` (reading and registering),
``"pair"`` (one pair ready; ``data["pair"]`` holds its patient, slices and registration
quality), ``"train_start"``, then the loop's own reports (``data["losses"]``...), then
``"evaluate"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.training.loop import RunSummary
from medgan_desktop.core.training.paired import PairedDataError, PairedVolume

HELDOUT_METRICS = "heldout_metrics.json"
#: Methods trained on unpaired MR and CT slices.
UNPAIRED_METHODS = ("cyclegan", "unit")


class TranslationJobError(ValueError):
    """The job's settings cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class PairSpec:
    """One MR/CT pair of a patient.

    Args:
        mr: MR series folder, volume file, or image(s); a SeriesInstanceUID when ``from_index``.
        ct: the CT of the same patient, in the same form.
        patient: patient key for the split ("" : the MR's PatientID, else its file name).
        from_index: ``mr`` and ``ct`` are series of the study index (``TranslationJobSpec.index_db``).
    """

    mr: str
    ct: str
    patient: str = ""
    from_index: bool = False


@dataclass(frozen=True)
class TranslationJobSpec:
    """Everything a translation training run needs.

    Args:
        method: a translation method (pix2pix, unet_l1, cyclegan, unit, distilled).
        pairs: the MR/CT pairs.
        out: the run folder to create.
        register: register each CT onto its MR (rigid, Mattes MI) before training.
        affine: with ``register``, an affine stage after the rigid one (kept when it helps).
        size: network image size.
        context: 2.5D neighbours each side (input channels ``2c + 1``).
        base_filters: generator width.
        steps: training steps.
        batch: batch size.
        lr: learning rate of G and D.
        holdout: held-out fraction (a slab of one pair, or patients of several); 0 trains
            on everything and skips the held-out evaluation.
        flip: random left-right flips (paired methods).
        teacher: teacher run folder or model id (``distilled``).
        device: auto | cpu | cuda | mps.
        threads: torch CPU threads (0: all but one).
        seed: seeds the split, initialisation and data order.
        extra: method options (``MethodConfig.extra``).
        evaluate: score the held-out part after training.
        index_db: the study index database for pairs ``from_index``.
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

    def validate(self) -> type[Any]:
        """Check the settings; return the method class.

        Raises:
            TranslationJobError: an unknown or non-translation method, a run folder that
                already holds a run, out-of-range numbers, a missing teacher.
        """
        from medgan_desktop.core.gan.methods.base import Task, get_method

        try:
            cls = get_method(self.method)
        except KeyError as exc:
            raise TranslationJobError(str(exc.args[0])) from None
        if cls.task != Task.TRANSLATION:
            raise TranslationJobError(
                f"{cls.name} is a {cls.task} method, not a translation method"
            )
        if not self.pairs:
            raise TranslationJobError("no MR/CT pairs given")
        if (Path(self.out) / "run.json").exists():
            raise TranslationJobError(f"{self.out} already holds a run")
        checks = (
            (self.size >= 16, f"size must be at least 16 (got {self.size})"),
            (self.context >= 0, f"context must be 0 or more (got {self.context})"),
            (self.base_filters >= 1, f"base filters must be at least 1 (got {self.base_filters})"),
            (self.steps >= 1, f"steps must be at least 1 (got {self.steps})"),
            (self.batch >= 1, f"batch must be at least 1 (got {self.batch})"),
            (self.lr > 0, f"the learning rate must be positive (got {self.lr})"),
            (0.0 <= self.holdout < 1.0, f"holdout must be in [0, 1) (got {self.holdout})"),
        )
        for ok, msg in checks:
            if not ok:
                raise TranslationJobError(msg)
        if cls.name == "distilled" and not self.teacher:
            raise TranslationJobError(
                "the distilled method needs a teacher (run folder or model id)"
            )
        from medgan_desktop.core.training.devices import select_device

        try:
            select_device("cuda" if self.device.lower() == "gpu" else self.device)
        except ValueError as exc:
            raise TranslationJobError(str(exc)) from None
        if any(p.from_index for p in self.pairs) and not self.index_db:
            raise TranslationJobError("pairs from the study index need the index database")
        return cls


@dataclass(frozen=True)
class PairInfo:
    """What was prepared for one pair (shown by the CLI and the GUI, stored in run.json)."""

    patient: str
    mr: str
    ct: str
    slices: int
    registration: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "mr": self.mr,
            "ct": self.ct,
            "slices": self.slices,
            "registration": self.registration,
        }


@dataclass(frozen=True)
class TranslationJobResult:
    """What :func:`run_translation_job` did.

    Args:
        run_dir: the run folder.
        summary: the training loop's summary.
        n_slices: training slices (MR slices for the unpaired methods).
        pairs: the prepared pairs.
        split: how the data were split (``kind`` slab / patient / none).
        heldout: the held-out metrics (also in ``heldout_metrics.json``); None when not
            evaluated (holdout 0, evaluation off, or the run was stopped).
    """

    run_dir: Path
    summary: RunSummary
    n_slices: int
    pairs: tuple[PairInfo, ...]
    split: dict[str, Any]
    heldout: dict[str, Any] | None = None


def registration_text(quality: Mapping[str, Any] | None) -> str:
    """``"MI 0.123 -> 0.456 (rigid+affine)"`` for a registration quality dict."""
    if not quality:
        return "not registered (resampled onto the MR grid)"
    stages = "+".join(str(s) for s in quality.get("stages", ()))
    text = f"MI {float(quality['initial_mi']):.3f} -> {float(quality['final_mi']):.3f}"
    return f"{text} ({stages})" if stages else text


def resolve_teacher(ref: str) -> Path:
    """A teacher run folder as is, or a shipped/user model id to its verified folder."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p.resolve()
    from medgan_desktop.core.models.registry import resolve_model

    try:
        return Path(resolve_model(ref)).resolve()
    except Exception as exc:  # any registry failure is a settings error here
        raise TranslationJobError(f"cannot resolve the teacher {ref!r}: {exc}") from exc


# -- steps ------------------------------------------------------------------------------------
def prepare_pairs(
    spec: TranslationJobSpec,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[PairedVolume]:
    """Read every pair of ``spec`` and bring its CT onto the MR grid.

    Raises:
        PairedDataError: a pair cannot be read or used.
        Cancelled: cancelled between pairs.
    """
    from medgan_desktop.core.dicom.index import IndexError_
    from medgan_desktop.core.dicom.reader import DicomReadError

    out: list[PairedVolume] = []
    n = len(spec.pairs)
    index = None
    try:
        for i, ps in enumerate(spec.pairs):
            if cancel is not None:
                cancel.check()
            what = "registering" if spec.register else "reading"
            progress(Progress(i, n, f"{what} pair {i + 1}/{n}", {"stage": "prepare"}))
            if ps.from_index and index is None:
                from medgan_desktop.core.dicom.index import StudyIndex

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
            progress(
                Progress(
                    i + 1,
                    n,
                    f"pair {i + 1}/{n} (patient {pair.patient}, {info.slices} slices): "
                    f"{registration_text(pair.registration)}",
                    {"stage": "pair", "pair": info.to_dict()},
                )
            )
    finally:
        if index is not None:
            index.close()
    return out


def _load_one(
    spec: TranslationJobSpec, ps: PairSpec, index: Any, cancel: CancelToken | None
) -> PairedVolume:
    from medgan_desktop.core.training.paired import (
        is_image_source,
        load_image_pair,
        load_pair,
        pair_volumes,
    )

    if not ps.from_index:
        images = (is_image_source(ps.mr), is_image_source(ps.ct))
        if all(images):
            return load_image_pair(
                Path(ps.mr),
                Path(ps.ct),
                register=spec.register,
                affine=spec.affine,
                max_side=max(64, spec.size),
                patient=ps.patient,
                cancel=cancel,
            )
        if any(images):
            raise PairedDataError(
                "one side of the pair is a 2D image (folder) and the other is not: give two "
                "image files/folders, or two series/volumes"
            )
        return load_pair(
            Path(ps.mr),
            Path(ps.ct),
            register=spec.register,
            patient=ps.patient,
            affine=spec.affine,
            cancel=cancel,
        )
    from medgan_desktop.core.dicom.series import load_series_from_index

    mr = load_series_from_index(index, ps.mr, cancel=cancel)
    ct = load_series_from_index(index, ps.ct, cancel=cancel)
    rec = index.series(ps.mr)
    patient = ps.patient or mr.source.patient_id or (rec.patient_id if rec else "") or ps.mr
    return pair_volumes(
        mr, ct, register=spec.register, affine=spec.affine, patient=patient, cancel=cancel
    )


def _pair_info(ps: PairSpec, pair: PairedVolume) -> PairInfo:
    def where(p: str) -> str:
        return p if ps.from_index else str(Path(p).resolve())

    return PairInfo(
        patient=pair.patient,
        mr=where(ps.mr),
        ct=where(ps.ct),
        slices=int(pair.source.shape[0]),
        registration=pair.registration,
    )


def split_pairs(
    pairs: Sequence[PairedVolume], holdout: float, context: int, seed: int
) -> tuple[list[PairedVolume], list[tuple[PairedVolume, list[int]]], dict[str, Any]]:
    """Training pairs, held-out ``(pair, slices)`` and a description of the split.

    One pair: a contiguous held-out slab at the end, ``context + 1`` slices away from the
    training part. Several: a patient split (all pairs of a patient on one side).

    Raises:
        PairedDataError: too few slices for the slab, or fewer than two patients.
    """
    from medgan_desktop.core.training.paired import patient_split, slab_split

    if holdout <= 0.0:
        return list(pairs), [], {"kind": "none"}
    if len(pairs) == 1:
        p = pairs[0]
        try:
            train_idx, test_idx = slab_split(p.source.shape[0], holdout, gap=context + 1)
        except PairedDataError as exc:
            raise PairedDataError(
                f"{exc}: one pair needs more slices for a held-out slab (a 2D image pair has one "
                "slice; give a folder of slices or several pairs), or use holdout 0"
            ) from exc
        train_pairs = [
            PairedVolume(p.source, p.target, p.patient, tuple(train_idx), p.registration)
        ]
        split = {
            "kind": "slab",
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
    test_pairs = [(p, list(range(p.source.shape[0]))) for p in pairs if p.patient in te]
    return train_pairs, test_pairs, {"kind": "patient", "train_patients": tr, "test_patients": te}


def build_dataset(
    method: str,
    train_pairs: Sequence[PairedVolume],
    size: int,
    context: int,
    flip: bool,
    description: dict[str, Any],
) -> Any:
    """The paired or unpaired slice dataset ``method`` trains on."""
    from medgan_desktop.core.training.paired import (
        PairedSliceDataset,
        UnpairedSliceDataset,
        volume_slab,
    )

    if method in UNPAIRED_METHODS:
        srcs = [
            p.source if p.slices is None else volume_slab(p.source, p.slices) for p in train_pairs
        ]
        tgts = [
            p.target if p.slices is None else volume_slab(p.target, p.slices) for p in train_pairs
        ]
        regs = [p.registration for p in train_pairs if p.registration]
        return UnpairedSliceDataset(
            srcs, tgts, size, context, description={"registration": regs, **description}
        )
    return PairedSliceDataset(train_pairs, size, context, flip=flip, description=description)


def evaluate_heldout(
    run_dir: Path,
    test_pairs: Sequence[tuple[PairedVolume, list[int]]],
    device: str = "cpu",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Translate each held-out MR and score the held-out slices against the CT (SynthRAD)."""
    import numpy as np

    from medgan_desktop.core.inference.translate import translate
    from medgan_desktop.core.metrics.paired import evaluate_pair
    from medgan_desktop.core.training.devices import select_device
    from medgan_desktop.core.training.paired import ct_body_mask, volume_slab
    from medgan_desktop.core.training.run import load_model

    model = load_model(run_dir, select_device(device if device != "auto" else "cpu"))
    reports = []
    n_vox = []
    for i, (pair, slices) in enumerate(test_pairs):
        progress(
            Progress(
                i,
                len(test_pairs),
                f"evaluating held-out part {i + 1}/{len(test_pairs)}",
                {"stage": "evaluate"},
            )
        )
        syn = translate(pair.source, model, cancel=cancel)
        pred = volume_slab(syn, slices)
        ref = volume_slab(pair.target, slices)
        mask = ct_body_mask(pair.target)[slices[0] : slices[-1] + 1]
        rep = evaluate_pair(pred, ref, mask=mask)
        reports.append(rep)
        n_vox.append(rep.mask_voxels)
    w = np.asarray(n_vox, dtype=np.float64) / float(sum(n_vox))
    return {
        "mae": float(sum(wi * r.mae for wi, r in zip(w, reports, strict=True))),
        "psnr": float(sum(wi * r.psnr for wi, r in zip(w, reports, strict=True))),
        "ssim": float(sum(wi * r.ssim for wi, r in zip(w, reports, strict=True))),
        "me": float(sum(wi * r.me for wi, r in zip(w, reports, strict=True))),
        "per_case": [r.to_dict() | {"per_slice": None} for r in reports],
        "definition": "SynthRAD: MAE/ME in HU inside the CT body mask; PSNR over [-1024, 3000] HU; 3D SSIM",
    }


def run_translation_job(
    spec: TranslationJobSpec,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> TranslationJobResult:
    """Prepare the pairs, split, train and evaluate the held-out part (see the module docs).

    Raises:
        TranslationJobError: bad settings.
        PairedDataError: pairs that cannot be read, registered or split.
        DataError / TrainingError / TrainingOOMError: from the training loop.
        Cancelled: cancelled while preparing the data (a cancel during training stops
            the loop with a checkpoint and returns a result with ``summary.cancelled``).
    """
    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.loop import train

    cls = spec.validate()
    out = Path(spec.out)
    extra = dict(spec.extra)
    if cls.name == "distilled":
        extra["teacher"] = str(resolve_teacher(spec.teacher))
    pairs = prepare_pairs(spec, progress, cancel)
    infos = tuple(_pair_info(ps, p) for ps, p in zip(spec.pairs, pairs, strict=True))
    train_pairs, test_pairs, split = split_pairs(pairs, spec.holdout, spec.context, spec.seed)
    desc = {
        "pairs": [[i.mr, i.ct] for i in infos],
        "pair_details": [i.to_dict() for i in infos],
        "split": split,
    }
    dataset = build_dataset(cls.name, train_pairs, spec.size, spec.context, spec.flip, desc)
    mcfg = MethodConfig(
        size=spec.size,
        in_channels=2 * spec.context + 1,
        channels=1,
        base_filters=spec.base_filters,
        lr_g=spec.lr,
        lr_d=spec.lr,
        extra=extra,
    )
    first = spec.pairs[0]
    if first.from_index:
        data = DataConfig(
            kind="index",
            series_uids=tuple(p.mr for p in spec.pairs),
            size=spec.size,
            modality="MR",
        )
    else:
        data = DataConfig(path=infos[0].mr, kind="volumes", size=spec.size, modality="MR")
    tcfg = TrainConfig(
        steps=spec.steps,
        batch_size=spec.batch,
        checkpoint_every=max(1, spec.steps // 4),
        sample_every=0,
        log_every=max(1, min(50, spec.steps // 20)),
        seed=spec.seed,
        device="cuda" if spec.device.lower() == "gpu" else spec.device,
        threads=spec.threads,
        keep_checkpoints=1,
        data=data,
    )
    n = len(dataset)
    progress(
        Progress(
            0,
            spec.steps,
            f"training {cls.name} on {n} slices -> {out}",
            {"stage": "train_start", "n_slices": n},
        )
    )
    summary = train(cls.name, mcfg, tcfg, dataset, out, progress=progress, cancel=cancel)
    heldout: dict[str, Any] | None = None
    if spec.evaluate and test_pairs and not summary.cancelled:
        heldout = evaluate_heldout(out, test_pairs, spec.device, progress, cancel)
        (out / HELDOUT_METRICS).write_text(json.dumps(heldout, indent=2) + "\n", encoding="utf-8")
    return TranslationJobResult(
        run_dir=out, summary=summary, n_slices=n, pairs=infos, split=split, heldout=heldout
    )
