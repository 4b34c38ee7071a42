"""``medgan translate`` and ``medgan translate-train``: image translation from the command line.

    medgan translate --input SERIES_DIR|VOLUME|PNG(S) --out OUT [--model ID|RUN_DIR] \
        [--format dicom|nifti|png] [--force] [--tta] [--device cpu] [--threads N]
    medgan translate-train --method recommended --pair MR CT [--pair MR CT ...] \
        [--register [--affine]] [--cpu-seconds 1500 | --budget-minutes 25] --out RUN_DIR
    medgan translate-train --method pix2pix --from-index [--patient ID ...] [--db INDEX] ...
    medgan translate-train --resume RUN_DIR --steps 4000

Both commands only parse arguments into a spec and print the result: the work is
:func:`medgan_desktop.core.jobs.translate.run_translate` and
:func:`medgan_desktop.core.jobs.train_translation.run_train_translation`, the same
functions the Translate panel and the Train panel run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError
from medgan_desktop.cli.output import printer

#: ``medgan translate-train --method recommended`` (``core.gan.recommend.ALIAS``; kept
#: literal so building the parser does not import torch).
_ALIAS = "recommended"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "translate",
        help="translate a series or images with a translation model (e.g. MR -> synthetic CT)",
        description="Translate an input with a translation model and write the result. The input "
        "is a DICOM series folder or file, a NIfTI/MHA volume, or 2D images (a PNG/JPEG file or "
        "a folder of slices, for models trained on 2D images). Without --model the best-fitting "
        "model is chosen and the reason printed; a model that does not fit the input (modality, "
        "MR weighting, body part, field of view) is refused with exit code 2 unless --force. "
        "Outputs: dicom (an anonymised synthetic series in a new folder; never for 2D images "
        "without patient geometry), nifti (a .nii.gz in HU with a .json provenance sidecar), "
        "png (one 8-bit PNG per slice, same size and grey scale as the training CT).",
    )
    t.add_argument("--input", required=True,
                   help="DICOM series folder/file, NIfTI/MHA volume, or PNG/JPEG file or folder")
    t.add_argument("--out", required=True,
                   help="output: a new folder (dicom, png), a .nii.gz file (nifti) or a .png file")
    t.add_argument("--model", default="",
                   help="model id or run folder (default: the best fit for the input)")
    t.add_argument("--format", choices=("nifti", "dicom", "png"), default=None,
                   help="nifti, dicom or png (default: from --out's name: .nii.gz nifti, .png png; "
                   "else png for 2D images, nifti otherwise)")
    t.add_argument("--force", action="store_true",
                   help="translate even when the model does not fit the input (said in the output)")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda (or gpu), mps or auto")
    t.add_argument("--batch", type=int, default=8, help="slices per network call (default 8)")
    t.add_argument("--tta", action="store_true", help="average with the flipped prediction")
    t.add_argument("--uncertainty", action="store_true",
                   help="also compute a per-voxel uncertainty map (standard deviation over four predictions "
                   "under mirroring and small source noise; 4x the time), summarised and written beside "
                   "the output as <name>_uncertainty (NIfTI, a derived synthetic DICOM series, or PNGs)")
    t.add_argument("--threads", type=int, default=0,
                   help="CPU threads of torch and ITK (default 0: all cores but one)")
    t.set_defaults(func=cmd_translate)

    r = sub.add_parser(
        "translate-train",
        help="train a translation model (e.g. MR -> CT) on MR/CT pairs",
        description="Train a translation method into a run folder, holding out a slab (one "
        "pair) or whole patients (several) for honest metrics; which part is held out is "
        f"printed before training. --method {_ALIAS} trains the measured recipe. A budget "
        "(--cpu-seconds, --budget-minutes) stops training when spent.",
    )
    r.add_argument("--task", default="mr_to_ct", metavar="TASK",
                   help="the image-to-image task: mr_to_ct (default), ct_to_mr, t1_to_t2 (registered "
                        "pairs, --pair SOURCE TARGET), ct_denoise (simulated low dose) or ct_superres "
                        "(3x through-plane), which make their pairs from real CT given with --series")
    r.add_argument("--series", action="append", default=[], type=Path, metavar="PATH",
                   help="for ct_denoise / ct_superres: a real CT (series folder or volume file), one "
                        "per patient; repeatable")
    r.add_argument("--method", default=None,
                   help=f"{_ALIAS!r} (the measured recipe), pix2pix, unet_l1, cyclegan, unit or "
                   "distilled")
    r.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("SOURCE", "TARGET"),
        default=[],
        help="source and target of one patient (MR and CT for mr_to_ct): series folders or volume "
        "files, or 2D images (PNG/JPEG files or folders of slices matched by file name); repeatable",
    )
    r.add_argument("--from-index", action="store_true",
                   help="pair the MR and CT series of each patient in the study index")
    r.add_argument("--patient", action="append", default=[], metavar="ID",
                   help="with --from-index: only this PatientID (repeatable)")
    r.add_argument("--db", type=Path, default=None, help="study index database (default: user data)")
    r.add_argument("--register", action="store_true",
                   help="register each CT onto its MR first (rigid 3D; similarity per slice for 2D images)")
    r.add_argument("--affine", action="store_true", help="with --register: an affine stage after the rigid one")
    r.add_argument("--size", type=int, default=128, help="network image size (default 128)")
    r.add_argument("--context", type=int, default=0, help="2.5D neighbours each side (default 0)")
    r.add_argument("--base-filters", type=int, default=32, help="generator width (default 32)")
    r.add_argument("--steps", type=int, default=2000,
                   help="training steps (default 2000; the most, with a budget)")
    r.add_argument("--cpu-seconds", type=float, default=0.0,
                   help="stop when training has used this much CPU time, all threads (default: no limit)")
    r.add_argument("--budget-minutes", type=float, default=0.0,
                   help="stop after this many wall-clock minutes of training (default: no limit)")
    r.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    r.add_argument("--lr", type=float, default=2e-4, help="learning rate of G and D (default 2e-4)")
    r.add_argument("--holdout", type=float, default=0.25,
                   help="held-out fraction (default 0.25): a slab of one pair or whole patients of "
                   "several, printed at the start; 0 trains on everything")
    r.add_argument("--heldout-patient", action="append", default=[], metavar="ID",
                   help="hold out exactly this patient (repeatable; instead of a seeded --holdout share)")
    r.add_argument("--flip", action="store_true", help="random left-right flips")
    r.add_argument("--slice-qc", type=float, default=0.0, metavar="RATIO",
                   help="2D image pairs: leave out of training and held-out scoring the slices whose "
                   "registration ends below RATIO x the pair's median MI (e.g. 0.7; default 0 keeps all); "
                   "each left-out slice is printed, all are saved in the run's registration_qc.csv")
    r.add_argument("--teacher", help="teacher run folder or model id (method distilled)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    r.add_argument("--threads", type=int, default=0,
                   help="CPU threads of torch and ITK (default 0: all cores but one)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", help="run folder to create")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this translation run (its settings; --steps and budgets apply)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option (e.g. lambda_l1=100, depth=6); unknown keys are refused")
    r.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    r.set_defaults(func=cmd_translate_train)


def _is_images(path: Path) -> bool:
    if path.is_file():
        return path.name.lower().endswith(_IMAGE_SUFFIXES)
    if path.is_dir():
        files = [f for f in path.iterdir() if f.is_file() and not f.name.startswith(".")]
        return bool(files) and all(f.name.lower().endswith(_IMAGE_SUFFIXES) for f in files)
    return False


def _default_format(out: Path, source: Path) -> str:
    """The output format when --format is not given: from --out's name, else from the input."""
    name = out.name.lower()
    if name.endswith((".nii.gz", ".nii")):
        return "nifti"
    if name.endswith(".png"):
        return "png"
    return "png" if _is_images(source) else "nifti"


def cmd_translate(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.translate import OutputFormat, TranslateSpec, run_translate

    fmt = args.format or _default_format(Path(args.out), Path(args.input))
    spec = TranslateSpec(
        source=str(args.input), model=args.model, out=str(args.out), format=OutputFormat(fmt),
        force=args.force, tta=args.tta, batch=args.batch, device=args.device,
        threads=args.threads, uncertainty=args.uncertainty,
    )
    res = run_translate(spec, progress=printer("translate"))
    fits = "" if res.fit.ok else " (forced: the model does not fit the input)"
    print(f"translated {res.source.shape[0]} slices in {res.seconds:.1f}s with {res.model} "
          f"{res.model_version}{fits}; wrote {len(res.written)} file(s) to {args.out}")
    if res.uncertainty is not None:
        from medgan_desktop.core.jobs.translate import uncertainty_sentence

        print(uncertainty_sentence(res.uncertainty_summary))
    return 0


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_translate_train(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.train_translation import PairSpec, TranslationTrainSpec, run_train_translation

    extra: dict[str, Any] = {}
    for item in args.set:
        key, sep, val = item.partition("=")
        if not sep:
            raise CliError(f"--set expects KEY=VALUE, got {item!r}")
        extra[key.strip()] = _parse_value(val)
    if args.resume:
        spec = TranslationTrainSpec(method="", pairs=(PairSpec("", ""),), out=str(args.resume),
                                    steps=args.steps, cpu_seconds=args.cpu_seconds,
                                    budget_minutes=args.budget_minutes, device=args.device,
                                    threads=args.threads, resume=True)
    else:
        if not args.method:
            raise CliError(f"--method is required ({_ALIAS!r} for the measured recipe), or --resume")
        if not args.out:
            raise CliError("--out RUN_DIR is required")
        if args.affine and not args.register:
            raise CliError("--affine refines a registration: add --register")
        if args.patient and not args.from_index:
            raise CliError("--patient selects patients of the study index: add --from-index")
        if sum(map(bool, (args.from_index, args.pair, args.series))) > 1:
            raise CliError("give one of --pair, --series or --from-index")
        index_db = ""
        if args.from_index:
            index_db, pairs = _index_pair_specs(args.db, args.patient, args.task)
        elif args.pair:
            pairs = tuple(PairSpec(str(mr), str(ct)) for mr, ct in args.pair)
        elif args.series:
            pairs = tuple(PairSpec(str(p), "") for p in args.series)
        else:
            raise CliError("give the pairs with --pair SOURCE TARGET (repeatable), real CT with --series "
                           "(ct_denoise, ct_superres), or --from-index")
        spec = TranslationTrainSpec(
            method=args.method, pairs=pairs, out=str(args.out), register=args.register,
            affine=args.affine, size=args.size, context=args.context,
            base_filters=args.base_filters, steps=args.steps, batch=args.batch, lr=args.lr,
            holdout=args.holdout, flip=args.flip, teacher=args.teacher or "",
            device=args.device, threads=args.threads, seed=args.seed, extra=extra,
            evaluate=not args.no_eval, index_db=index_db, cpu_seconds=args.cpu_seconds,
            budget_minutes=args.budget_minutes, task=args.task,
            heldout_patients=tuple(args.heldout_patient), slice_qc=args.slice_qc,
        )
    result = run_train_translation(spec, progress=printer("translate-train", every_s=10.0))
    s = result.summary
    stop = {"total": "", "user": " (stopped)", "cpu_budget": " (CPU budget spent)",
            "time_budget": " (time budget spent)"}[str(s.stopped_by)]
    print(f"done: {s.step} steps of {result.method} in {s.seconds:.0f}s ({s.cpu_seconds:.0f} CPU-s)"
          f"{stop}; run folder {result.run_dir}")
    metrics = result.heldout
    if metrics is not None:
        units = "HU" if "HU" in str(metrics.get("definition", "HU")).split(";")[0] else "(MR display units)"
        print(f"held-out: MAE {metrics['mae']:.1f} {units}  PSNR {metrics['psnr']:.2f} dB  "
              f"SSIM {metrics['ssim']:.3f}")
        for name, ref in dict(metrics.get("references") or {}).items():
            print(f"  reference, {name}: MAE {ref['mae']:.1f}  PSNR {ref['psnr']:.2f} dB  SSIM {ref['ssim']:.3f}")
    return 0


def _index_pair_specs(db: Path | None, patients: list[str], task: str = "mr_to_ct") -> tuple[str, tuple[Any, ...]]:
    """The study index's pairs for ``task`` (of ``patients`` when given) as pair specs."""
    from medgan_desktop.core.jobs.train_translation import index_pair_specs

    return index_pair_specs(db, patients, task)
