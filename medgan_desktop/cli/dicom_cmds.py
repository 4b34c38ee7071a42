"""``medgan import`` and ``medgan ls``: the study index from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError


def register(subparsers: Any) -> None:
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


def _open_index(db: Path | None) -> Any:
    from medgan_desktop.core.config import AppPaths
    from medgan_desktop.core.dicom.index import IndexError_, StudyIndex

    path = db if db is not None else AppPaths.default().index_db
    try:
        return StudyIndex(path)
    except IndexError_ as exc:
        raise CliError(str(exc)) from exc


def cmd_import(args: argparse.Namespace) -> int:
    from medgan_desktop.core.dicom.index import IndexError_
    from medgan_desktop.core.progress import Progress

    for p in args.paths:
        if not p.exists():
            raise CliError(f"no such file or folder: {p}")
    index = _open_index(args.db)
    interactive = not args.json and sys.stderr.isatty()

    def progress(p: Progress) -> None:
        if interactive and p.total:
            print(f"\r{p.message}", end="", file=sys.stderr, flush=True)

    try:
        report = index.import_paths(list(args.paths), progress=progress)
    except (FileNotFoundError, PermissionError) as exc:
        raise CliError(str(exc)) from exc
    except IndexError_ as exc:
        raise CliError(str(exc)) from exc
    finally:
        index.close()
    if interactive:
        print(file=sys.stderr)
    if args.json:
        print(report.to_json())
    else:
        print(
            f"added {report.patients} patients, {report.studies} studies, {report.series} "
            f"series, {report.instances} instances; skipped {report.skipped}; "
            f"{report.errors} errors ({report.seconds:.1f} s)"
        )
        for prob in report.problems[:50]:
            print(f"  problem: {prob.path}: {prob.reason}")
        if len(report.problems) > 50:
            print(f"  ... and {len(report.problems) - 50} more")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    index = _open_index(args.db)
    try:
        tree = index.tree()
    finally:
        index.close()
    if args.json:
        out = [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "studies": [
                    {
                        "study_uid": s.study_uid,
                        "date": s.date,
                        "description": s.description,
                        "series": [
                            {
                                "series_uid": r.series_uid,
                                "modality": r.modality,
                                "date": r.date,
                                "description": r.description,
                                "number": r.number,
                                "instances": r.instance_count,
                            }
                            for r in s.series
                        ],
                    }
                    for s in p.studies
                ],
            }
            for p in tree
        ]
        print(json.dumps(out, indent=1))
        return 0
    if not tree:
        print("the index is empty: run `medgan import FOLDER` first")
    for p in tree:
        print(p.label)
        for s in p.studies:
            print(f"  {s.date or '--------'}  {s.description or '(no description)'}  {s.study_uid}")
            for r in s.series:
                num = "" if r.number is None else f"#{r.number} "
                print(
                    f"    {r.modality:<3} {num}{r.description or '(no description)'}  "
                    f"{r.instance_count} images  {r.series_uid}"
                )
    return 0
