"""``medgan evaluate`` (unpaired sets, paired volumes, utility) and ``medgan review``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError
from medgan_desktop.cli.output import printer, quiet
from medgan_desktop.core.progress import ProgressCallback


def _progress(args: argparse.Namespace) -> ProgressCallback:
    return quiet if getattr(args, "json", False) else printer("evaluate")


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def register(sub: Any) -> None:
    ev: argparse.ArgumentParser = sub.add_parser(
        "evaluate", help="evaluate synthetic images (unpaired sets or paired volumes)",
        description="Unpaired: --real DIR --fake DIR. Paired: --pred X --ref Y. "
        "Utility: --utility --train DIR --fake DIR --test DIR (class sub-folders). "
        "Train the shipped extractor: --train-extractor DATA --out DIR.")
    ev.add_argument("--real", type=Path, help="folder of real images")
    ev.add_argument("--fake", type=Path, help="folder of synthetic images")
    ev.add_argument("--memorization", action="store_true", help="flag near-copies of training images")
    ev.add_argument("--train", type=Path,
                    help="training images (memorisation / utility; the C2ST null compares them with --real)")
    ev.add_argument("--c2st", action="store_true",
                    help="classifier two-sample test: a small CNN trained from scratch in 5 folds to tell "
                    "--real from --fake (accuracy 0.5 = indistinguishable), with AUC, a binomial p-value "
                    "and the real-vs-real null (--train vs --real, else two halves of --real)")
    ev.add_argument("--c2st-size", type=int, default=64, help="C2ST image size (default 64)")
    ev.add_argument("--test", type=Path, help="held-out real test images (utility)")
    ev.add_argument("--utility", action="store_true", help="downstream classifier utility study")
    ev.add_argument("--seeds", type=int, default=5, help="utility: number of seeds")
    ev.add_argument("--extractor", default="shipped",
                    help="'shipped' or a path to local InceptionV3 FID weights (.pth/.safetensors)")
    ev.add_argument("--limit", type=int, help="use at most N images per folder")
    ev.add_argument("--percentile", type=float, default=1.0, help="near-copy threshold percentile")
    ev.add_argument("--pred", type=Path, help="synthetic volume (file or DICOM series folder)")
    ev.add_argument("--ref", type=Path, help="reference volume")
    ev.add_argument("--mask", type=Path, help="body mask volume (default: thresholded reference)")
    ev.add_argument("--sources", type=Path, nargs=2, metavar=("A", "B"),
                    help="paired: the two source images when --pred is a fusion of them; adds "
                    "the SCD fusion metric (not defined for an MR->sCT translation)")
    ev.add_argument("--window", choices=("uniform", "gaussian"), default="uniform",
                    help="SSIM window (SynthRAD uses uniform)")
    ev.add_argument("--json", action="store_true", help="print JSON to stdout")
    ev.add_argument("--html", type=Path, help="write an HTML report with figures")
    ev.add_argument("--train-extractor", type=Path, metavar="DATA",
                    help="train the shipped feature extractor on DATA/{NORMAL,PNEUMONIA}")
    ev.add_argument("--out", type=Path, help="output folder for --train-extractor")
    ev.add_argument("--epochs", type=int, default=15)
    ev.set_defaults(func=_evaluate)

    rv: argparse.ArgumentParser = sub.add_parser("review", help="blinded reader studies")
    rv.add_argument("--db", type=Path, help="review database (default <data dir>/review.sqlite)")
    rsub = rv.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    c = rsub.add_parser("create", help="create a session from real and synthetic pools")
    c.add_argument("--name", required=True, help="session name (unique)")
    c.add_argument("--real", type=Path, nargs="+", required=True)
    c.add_argument("--fake", type=Path, nargs="+", required=True)
    c.add_argument("--seed", type=int)
    c.add_argument("--scale", choices=("5", "100"), default="5", help="confidence 1-5 or 0-100")
    c.add_argument("--limit", type=int, help="at most N images per pool")
    c.add_argument("--display-size", type=int, default=0, metavar="PX",
                   help="show every item with its shorter side at PX pixels "
                        "(default: the smaller pool's median size)")
    c.add_argument("--no-equalise", action="store_true",
                   help="show items as read instead of through one pipeline (same size, "
                        "interpolation, bit depth); the report then says so")
    c.add_argument("--no-series", action="store_true",
                   help="every file is one 2D item, also the slices of a DICOM series")
    c.set_defaults(func=_review_create)
    ls = rsub.add_parser("list", help="list sessions")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_review_list)
    ex = rsub.add_parser("export", help="export a session to one zip file")
    ex.add_argument("session", help="session id or unique name")
    ex.add_argument("out", type=Path)
    ex.add_argument("--no-answers", action="store_true", help="leave the answers out")
    ex.set_defaults(func=_review_export)
    im = rsub.add_parser("import", help="import (and merge) a session file")
    im.add_argument("file", type=Path)
    im.set_defaults(func=_review_import)
    rs = rsub.add_parser("results", help="accuracy, sensitivity/specificity, AUC, kappa")
    rs.add_argument("session", help="session id or unique name")
    rs.add_argument("--json", action="store_true")
    rs.add_argument("--csv", type=Path, help="write every answer as CSV")
    rs.add_argument("--summary-csv", type=Path, help="write the per-image summary as CSV")
    rs.set_defaults(func=_review_results)


def _evaluate(args: argparse.Namespace) -> int:
    if args.train_extractor is not None:
        return _train_extractor(args)
    if args.utility:
        return _utility(args)
    if args.pred is not None or args.ref is not None:
        return _paired(args)
    if args.real is not None and args.fake is not None:
        return _unpaired(args)
    raise CliError("give --real and --fake (unpaired), --pred and --ref (paired), "
                   "--utility, or --train-extractor")


def _unpaired(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.evaluate import UnpairedSpec, run_unpaired

    res = run_unpaired(UnpairedSpec(
        real=args.real, fake=args.fake, extractor=str(args.extractor),
        memorization=args.memorization, train=args.train, limit=args.limit or 0,
        percentile=args.percentile, html=str(args.html or ""), c2st=args.c2st,
        c2st_size=args.c2st_size), progress=_progress(args))
    d = _json_safe(res.to_dict())
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        for k in ("extractor", "n_real", "n_fake", "fd", "kid", "kid_std", "precision", "recall",
                  "density", "coverage", "inception_score"):
            if d.get(k) is not None:
                print(f"{k:16s} {d[k]}")
        for e in d.get("memorization", []):
            if e["flagged"]:
                print(f"NEAR-COPY  {e['fake']}  ~  {e['nearest_real']}  (d={e['distance']:.4g})")
        summary = d.get("memorization_summary")
        if summary is not None:
            print(f"{'near-copies':16s} {summary['n_flagged']} flagged "
                  f"(reference: {summary['reference']})")
            if summary.get("reference_note"):
                print(f"note: {summary['reference_note']}", file=sys.stderr)
        for rep in (res.c2st, res.c2st_null):
            if rep is not None:
                print(rep.describe())
    return 0


def _paired(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.evaluate import PairedSpec, run_paired

    if args.pred is None or args.ref is None:
        raise CliError("paired evaluation needs both --pred and --ref")
    rep = run_paired(PairedSpec(
        pred=args.pred, ref=args.ref, mask=args.mask, window=args.window,
        sources=tuple(args.sources) if args.sources else None, html=str(args.html or "")),
        progress=_progress(args))
    d = rep.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        for k in ("mae", "me", "psnr", "ssim", "ms_ssim", "mask_voxels"):
            print(f"{k:12s} {d[k]}")
        print(f"{'sf_pred':12s} {d['spatial_frequency_pred']}")
        print(f"{'sf_ref':12s} {d['spatial_frequency_ref']}")
        if d["scd"] is not None:
            print(f"{'scd':12s} {d['scd']}")
        for t, v in d["per_tissue"].items():
            print(f"{t:12s} MAE {v['mae']:.2f} ME {v['me']:.2f} PSNR {v['psnr']:.2f}")
    return 0


def _utility(args: argparse.Namespace) -> int:
    import math as _m

    from medgan_desktop.core.jobs.evaluate import UtilitySpec, run_utility

    if args.train is None or args.fake is None or args.test is None:
        raise CliError("--utility needs --train, --fake and --test folders with class sub-folders")
    rep, classes = run_utility(UtilitySpec(args.train, args.fake, args.test, seeds=args.seeds,
                                           limit=args.limit or 0, html=str(args.html or "")),
                               progress=_progress(args))
    d = _json_safe(rep.to_dict())
    d["classes"] = classes
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        for k, (m, lo, hi) in rep.summary.items():
            print(f"{k:16s} {m:.4f}  95% CI [{lo:.4f}, {hi:.4f}]" if _m.isfinite(lo)
                  else f"{k:16s} {m:.4f}")
    return 0


def _train_extractor(args: argparse.Namespace) -> int:
    from medgan_desktop.core.metrics.train_extractor import train

    if args.out is None:
        raise CliError("--train-extractor needs --out DIR")
    cmd = f"medgan evaluate --train-extractor {args.train_extractor} --out {args.out} --epochs {args.epochs}"
    try:
        run = train(args.train_extractor, args.out, epochs=args.epochs, progress=printer("evaluate"),
                    command=cmd)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(run["held_out"]))
    return 0


def _db(args: argparse.Namespace) -> str:
    return str(args.db) if args.db is not None else ""


def _review_create(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.review import CreateSpec, run_create

    scale = (1, 5) if args.scale == "5" else (0, 100)
    info = run_create(CreateSpec(_db(args), args.name, tuple(args.real), tuple(args.fake),
                                 seed=args.seed, scale=scale, limit=args.limit or 0,
                                 series=not args.no_series, equalise=not args.no_equalise,
                                 display_size=args.display_size),
                      progress=printer("review", plain=False))
    print(info.id)
    print(f"{info.n_items} images ({info.n_real} real, {info.n_synthetic} synthetic)", file=sys.stderr)
    for line in info.fairness.lines() if info.fairness else []:
        print(line, file=sys.stderr)
    return 0


def _session_dict(info: object) -> dict[str, object]:
    d = dict(vars(info))
    fair = d.get("fairness")
    d["fairness"] = fair.to_dict() if fair is not None else None
    return d


def _review_list(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.review import sessions

    infos = sessions(_db(args))
    if args.json:
        print(json.dumps([_session_dict(i) for i in infos], indent=2))
    else:
        for i in infos:
            print(f"{i.id}  {i.name:24s} {i.n_items:4d} images  readers: {', '.join(i.readers) or '-'}")
    return 0


def _review_export(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.review import run_export

    print(run_export(_db(args), args.session, args.out, include_answers=not args.no_answers))
    return 0


def _review_import(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.review import run_import

    print(run_import(_db(args), args.file))
    return 0


def _review_results(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.review import run_results

    scored = run_results(_db(args), args.session, args.csv, args.summary_csv)
    res = scored.results
    fair = scored.session.fairness
    if args.json:
        doc = _json_safe(res.to_dict())
        doc["fairness"] = fair.to_dict() if fair else None
        print(json.dumps(doc, indent=2))
    else:
        for line in fair.lines() if fair else ["How items were shown was not recorded (an older session)."]:
            print(line)
        for r in [*res.readers, res.pooled]:
            print(f"{r.reader:16s} n={r.n:4d} acc={r.accuracy:.3f} sens={r.sensitivity:.3f} "
                  f"spec={r.specificity:.3f} AUC={r.auc:.3f}")
        for k, v in res.cohen.items():
            print(f"Cohen kappa {k}: {v:.3f}")
        if res.fleiss is not None:
            print(f"Fleiss kappa: {res.fleiss:.3f}")
    return 0
