"""``medgan translate`` and ``medgan translate-train``: MR -> synthetic CT from the command line.

    medgan translate --model RUN_DIR_OR_MODEL_ID --input SERIES_DIR_OR_FILE --out OUT \
        [--format dicom|nifti] [--device cpu] [--tta]
    medgan translate-train --method pix2pix --pair MR CT [--pair MR CT ...] [--register [--affine]] \
        --size 128 --steps 3000 --out RUN_DIR [--holdout 0.25] [--context 1] [--set key=value]
    medgan translate-train --method pix2pix --from-index [--patient ID ...] [--db INDEX] ...

``translate-train`` trains any translation method (pix2pix, unet_l1, cyclegan, unit,
distilled) with the shared training loop on MR/CT pairs (series, volumes, 2D image
pairs registered per slice, or the MR and CT series of each patient in the study
index), prints each pair's registration quality, holds out a slab (one pair) or
whole patients (several pairs; named by PatientID, else file name), and writes the
held-out SynthRAD metrics to ``RUN_DIR/heldout_metrics.json``. The work itself is
:func:`medgan_desktop.core.training.translation_job.run_translation_job`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError
from medgan_desktop.cli.gan_cmds import resolve_model_ref


def register(sub: Any) -> None:
    t = sub.add_parser(
        "translate",
        help="translate an MR series/volume into a synthetic CT",
        description="Run a translation model on a volume. nifti: OUT is a .nii.gz in HU on the input "
        "grid; dicom: OUT is a new folder holding an anonymised synthetic CT series.",
    )
    t.add_argument("--model", required=True, help="run folder or shipped model id")
    t.add_argument("--input", required=True, help="DICOM series folder/file or NIfTI/MHA volume")
    t.add_argument("--out", required=True, help="output .nii.gz file (nifti) or folder (dicom)")
    t.add_argument(
        "--format", choices=("nifti", "dicom"), default="nifti", help="nifti (default) or dicom"
    )
    t.add_argument("--device", default="cpu", help="cpu (default), cuda (or gpu), mps or auto")
    t.add_argument("--batch", type=int, default=8, help="slices per network call (default 8)")
    t.add_argument("--tta", action="store_true", help="average with the flipped prediction")
    t.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: leave the default)"
    )
    t.set_defaults(func=cmd_translate)

    r = sub.add_parser(
        "translate-train",
        help="train an MR->CT translation model on MR/CT pairs",
        description="Train a translation method with the training loop into a run folder, holding "
        "out a slab (one pair) or patients (several) for honest metrics.",
    )
    r.add_argument("--method", required=True, help="pix2pix, unet_l1, cyclegan, unit or distilled")
    r.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("MR", "CT"),
        default=[],
        help="MR and CT of one patient: series folders or volume files, or 2D images "
        "(PNG/JPEG files or folders of slices matched by file name); repeatable",
    )
    r.add_argument(
        "--from-index",
        action="store_true",
        help="pair the MR and CT series of each patient in the study index",
    )
    r.add_argument(
        "--patient",
        action="append",
        default=[],
        metavar="ID",
        help="with --from-index: only this PatientID (repeatable)",
    )
    r.add_argument(
        "--db", type=Path, default=None, help="study index database (default: user data)"
    )
    r.add_argument(
        "--register",
        action="store_true",
        help="register each CT onto its MR first (rigid 3D; similarity per slice for 2D images)",
    )
    r.add_argument(
        "--affine", action="store_true", help="with --register: an affine stage after the rigid one"
    )
    r.add_argument("--size", type=int, default=128, help="network image size (default 128)")
    r.add_argument("--context", type=int, default=0, help="2.5D neighbours each side (default 0)")
    r.add_argument("--base-filters", type=int, default=32, help="generator width (default 32)")
    r.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    r.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    r.add_argument("--lr", type=float, default=2e-4, help="learning rate of G and D (default 2e-4)")
    r.add_argument(
        "--holdout",
        type=float,
        default=0.25,
        help="held-out fraction: a slab of one pair or whole patients of several (0: none)",
    )
    r.add_argument("--flip", action="store_true", help="random left-right flips")
    r.add_argument("--teacher", help="teacher run folder or model id (method distilled)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    r.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all but one)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="run folder to create")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option in MethodConfig.extra (e.g. lambda_l1=100, depth=6)",
    )
    r.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    r.set_defaults(func=cmd_translate_train)


# -- translate ------------------------------------------------------------------------------
def _read_input(path: Path) -> Any:
    from medgan_desktop.core.training.paired import PairedDataError, read_any

    if not path.exists():
        raise CliError(f"input {path} does not exist")
    try:
        return read_any(path)
    except (PairedDataError, ValueError, OSError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


def _source_headers(volume: Any) -> list[Any]:
    import pydicom

    out = []
    for f in volume.source.files:
        try:
            out.append(pydicom.dcmread(f, stop_before_pixels=True))
        except Exception:  # a header we cannot read is simply not referenced
            return []
    return out


def write_output(synthetic: Any, out: Path, fmt: str, model_id: str, source: Any) -> list[Path]:
    """Write ``synthetic`` as NIfTI (one file) or an anonymised synthetic DICOM series."""
    if fmt == "nifti":
        import SimpleITK as sitk

        if not out.name.endswith((".nii.gz", ".nii")):
            raise CliError("with --format nifti, --out must end in .nii.gz")
        out.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(synthetic.to_sitk(), str(out), True)
        return [out]
    try:
        from medgan_desktop.core.dicom.write import write_synthetic_series
    except ImportError:
        raise CliError(
            "DICOM output is not available in this build (core.dicom.write missing)"
        ) from None
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} exists and is not empty")
    return list(
        write_synthetic_series(
            synthetic,
            out,
            source_datasets=_source_headers(source),
            model_id=model_id,
            model_version="1",
        )
    )


def _printer() -> Any:
    last = [0.0]

    def report(p: Any) -> None:
        now = time.monotonic()
        if now - last[0] > 2.0 or (p.total and p.done >= p.total):
            last[0] = now
            print(f"{p.message}", file=sys.stderr, flush=True)

    return report


def _writable_target(path: Path) -> bool:
    """Whether ``path`` could be created: its nearest existing ancestor is a writable folder."""
    import os

    for parent in path.absolute().parents:
        if parent.exists():
            return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    return False


def check_output(out: Path, fmt: str) -> None:
    """Refuse an output the writer would reject, before any model is loaded or slice translated."""
    if fmt == "nifti":
        if not out.name.endswith((".nii.gz", ".nii")):
            raise CliError("with --format nifti, --out must end in .nii.gz (or .nii)")
        if out.is_dir():
            raise CliError(f"{out} is a folder; with --format nifti, --out is a .nii.gz file")
        if not out.exists() and not _writable_target(out):
            raise CliError(f"cannot create {out}: its folder is missing or not writable")
        return
    if out.exists():
        if not out.is_dir():
            raise CliError(
                f"{out} is a file; with --format dicom, --out is a new (or empty) folder"
            )
        if any(out.iterdir()):
            raise CliError(f"{out} exists and is not empty")
    elif not _writable_target(out):
        raise CliError(f"cannot create the folder {out}: its parent is missing or not writable")


def _select_device(choice: str) -> Any:
    from medgan_desktop.core.training.devices import select_device

    name = "cuda" if choice.lower() == "gpu" else choice
    try:
        return select_device(name)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _check_translation_model(ref: str, run_dir: Path) -> None:
    """A clear error for a model that is not a translation model (before loading it)."""
    from medgan_desktop.core.training.run import ModelLoadError, load_run

    try:
        info = load_run(run_dir)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    if info.task != "translation":
        raise CliError(
            f"{ref} is a {info.task} model ({info.method}), not a translation model; "
            "list the translation models with `medgan models list`"
        )


def cmd_translate(args: argparse.Namespace) -> int:
    import torch

    from medgan_desktop.core.inference.translate import check_compatible, model_id, translate
    from medgan_desktop.core.training.run import ModelLoadError, load_model

    if args.batch < 1:
        raise CliError(f"--batch must be at least 1 (got {args.batch})")
    if args.threads < 0:
        raise CliError(f"--threads must be 0 or more (got {args.threads})")
    out = Path(args.out)
    check_output(out, args.format)
    if not Path(args.input).exists():
        raise CliError(f"input {args.input} does not exist")
    device = _select_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    run_dir = resolve_model_ref(args.model)  # sha256-checked like medgan sample
    _check_translation_model(args.model, run_dir)
    try:
        model = load_model(run_dir, device)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    volume = _read_input(Path(args.input))
    try:
        for w in check_compatible(volume, model):
            print(f"medgan translate: warning: {w}", file=sys.stderr)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    t0 = time.perf_counter()
    try:
        syn = translate(
            volume,
            model,
            progress=_printer(),
            batch_size=args.batch,
            tta_flip=args.tta,
            device=device,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    seconds = time.perf_counter() - t0
    paths = write_output(syn, out, args.format, model_id(model), volume)
    print(
        f"translated {volume.shape[0]} slices in {seconds:.1f}s with {model_id(model)}; "
        f"wrote {len(paths)} file(s) to {args.out}"
    )
    return 0


# -- translate-train ------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_translate_train(args: argparse.Namespace) -> int:
    from medgan_desktop.core.training.data import DataError
    from medgan_desktop.core.training.loop import TrainingError, TrainingOOMError
    from medgan_desktop.core.training.paired import PairedDataError
    from medgan_desktop.core.training.translation_job import (
        PairSpec,
        TranslationJobError,
        TranslationJobSpec,
        run_translation_job,
    )

    extra: dict[str, Any] = {}
    for item in args.set:
        key, sep, val = item.partition("=")
        if not sep:
            raise CliError(f"--set expects KEY=VALUE, got {item!r}")
        extra[key.strip()] = _parse_value(val)
    if args.affine and not args.register:
        raise CliError("--affine refines a registration: add --register")
    if args.patient and not args.from_index:
        raise CliError("--patient selects patients of the study index: add --from-index")
    if args.from_index and args.pair:
        raise CliError("give either --pair or --from-index, not both")
    index_db = ""
    if args.from_index:
        index_db, pairs = _index_pair_specs(args.db, args.patient)
    elif args.pair:
        pairs = tuple(PairSpec(str(mr), str(ct)) for mr, ct in args.pair)
    else:
        raise CliError("give the MR/CT pairs with --pair MR CT (repeatable) or --from-index")
    spec = TranslationJobSpec(
        method=args.method,
        pairs=pairs,
        out=str(args.out),
        register=args.register,
        affine=args.affine,
        size=args.size,
        context=args.context,
        base_filters=args.base_filters,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        holdout=args.holdout,
        flip=args.flip,
        teacher=args.teacher or "",
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        extra=extra,
        evaluate=not args.no_eval,
        index_db=index_db,
    )
    try:
        result = run_translation_job(spec, progress=_job_printer())
    except TrainingOOMError as exc:
        print(f"medgan translate-train: error: {exc}", file=sys.stderr)
        return 3
    except (TranslationJobError, PairedDataError, DataError, TrainingError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    summary = result.summary
    print(f"done: {summary.step} steps in {summary.seconds:.0f}s; run folder {result.run_dir}")
    metrics = result.heldout
    if metrics is not None:
        print(
            f"held-out: MAE {metrics['mae']:.1f} HU  PSNR {metrics['psnr']:.2f} dB  SSIM {metrics['ssim']:.3f}"
        )
    return 0


def _index_pair_specs(db: Path | None, patients: list[str]) -> tuple[str, tuple[Any, ...]]:
    """The study index's MR/CT pairs (of ``patients`` when given) as pair specs."""
    from medgan_desktop.core.config import AppPaths
    from medgan_desktop.core.dicom.index import IndexError_, StudyIndex
    from medgan_desktop.core.training.paired import index_pairs
    from medgan_desktop.core.training.translation_job import PairSpec

    path = Path(db) if db is not None else AppPaths.default().index_db
    if not path.is_file():
        raise CliError(
            f"no study index at {path}: import the MR and CT series first (medgan import)"
        )
    try:
        index = StudyIndex(path)
    except IndexError_ as exc:
        raise CliError(str(exc)) from exc
    try:
        found = index_pairs(index)
    finally:
        index.close()
    if not found:
        raise CliError(f"no patient in the study index {path} has both an MR and a CT series")
    if patients:
        known = sorted({pid for pid, _, _ in found})
        missing = [p for p in patients if p not in known]
        if missing:
            raise CliError(
                f"no MR/CT pair for patient(s) {', '.join(missing)} in the study index; "
                f"patients with both: {', '.join(known)}"
            )
        found = [f for f in found if f[0] in patients]
    return str(path.resolve()), tuple(
        PairSpec(mr, ct, patient=pid, from_index=True) for pid, mr, ct in found
    )


def _job_printer() -> Any:
    """Print the data preparation reports as they come and the training steps throttled."""
    train_report = _train_printer()

    def report(p: Any) -> None:
        d = p.data or {}
        if "losses" in d:
            train_report(p)
        elif d.get("stage") in ("pair", "train_start"):
            print(p.message, file=sys.stderr, flush=True)

    return report


def _train_printer() -> Any:
    last = [0.0]

    def report(p: Any) -> None:
        now = time.monotonic()
        if now - last[0] > 10.0 or p.done >= p.total:
            last[0] = now
            d = p.data or {}
            losses = " ".join(f"{k}={v:.3f}" for k, v in dict(d.get("losses", {})).items())
            print(
                f"step {p.done}/{p.total} {losses} eta {float(d.get('eta_s', 0)):.0f}s",
                file=sys.stderr,
                flush=True,
            )

    return report


def evaluate_heldout(
    run_dir: Path, test_pairs: list[tuple[Any, list[int]]], device: str = "cpu"
) -> dict[str, Any]:
    """Translate each held-out MR and score the held-out slices against the CT (SynthRAD).

    See :func:`medgan_desktop.core.training.translation_job.evaluate_heldout`.
    """
    from medgan_desktop.core.training.translation_job import evaluate_heldout as _evaluate

    return _evaluate(run_dir, test_pairs, device)
