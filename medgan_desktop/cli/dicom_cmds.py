"""``medgan import`` and ``medgan ls``: the study index from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "import",
        help="index DICOM files and folders (headers only; files are never copied or changed)",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    p.add_argument("--db", type=Path, default=None, help="index database (default: user data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_import)

    q = subparsers.add_parser("ls", help="list the indexed patients, studies and series")
    q.add_argument("--db", type=Path, default=None, help="index database (default: user data)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_ls)


def _db(db: Path | None) -> Path:
    from medgan_desktop.core.config import AppPaths

    return db if db is not None else AppPaths.default().index_db


def cmd_import(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.index import ImportSpec, run_import
    from medgan_desktop.core.progress import Progress

    interactive = not args.json and sys.stderr.isatty()

    def progress(p: Progress) -> None:
        if interactive and p.total:
            print(f"\r{p.message}", end="", file=sys.stderr, flush=True)

    result = run_import(ImportSpec(tuple(args.paths), _db(args.db)), progress=progress)
    report = result.report
    if interactive:
        print(file=sys.stderr)
    if args.json:
        print(report.to_json())
    else:
        dup = f", {report.duplicates} duplicate paths of indexed images" if report.duplicates else ""
        print(
            f"added {report.patients} patients, {report.studies} studies, {report.series} "
            f"series, {report.instances} instances; skipped {report.skipped}{dup}; "
            f"{report.errors} errors ({report.seconds:.1f} s)"
        )
        for prob in report.problems[:50]:
            print(f"  problem: {prob.path}: {prob.reason}")
        if len(report.problems) > 50:
            print(f"  ... and {len(report.problems) - 50} more")
    if result.failed:
        print("medgan import: error: nothing could be imported (every file was a problem)",
              file=sys.stderr)
        return 1
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.index import index_listing

    tree = index_listing(_db(args.db))
    if args.json:
        print(json.dumps(tree, indent=1))
        return 0
    if not tree:
        print("the index is empty: run `medgan import FOLDER` first")
    for p in tree:
        name = p["patient_name"] or "(no name)"
        print(f"{name} [{p['patient_id']}]" if p["patient_id"] else name)
        for s in p["studies"]:
            print(f"  {s['date'] or '--------'}  {s['description'] or '(no description)'}  "
                  f"{s['study_uid']}")
            for r in s["series"]:
                num = "" if r["number"] is None else f"#{r['number']} "
                mark = "SYNTHETIC " if r["synthetic"] else ""
                print(f"    {r['modality']:<3} {mark}{num}{r['description'] or '(no description)'}  "
                      f"{r['instances']} images  {r['series_uid']}")
    return 0
