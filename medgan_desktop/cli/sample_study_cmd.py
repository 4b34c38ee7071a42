"""``medgan sample-study [--out DIR]``: build the sample study and print its folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from medgan_desktop.cli import CliError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "sample-study",
        help="build the sample study (head MR + head CT of patient SAMPLE^STUDY)",
        description="Build the sample study from Debian's mricron-data and "
        "invesalius-examples (or copy the pre-built one shipped with the app) and print "
        "its folder. A complete study is reused.",
    )
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="build into DIR instead of the data directory's sample_study/")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the folder")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medgan_desktop.core.config import AppPaths
    from medgan_desktop.core.jobs.sample_study import SampleStudyUnavailable, build_sample_study, ensure_sample_study
    from medgan_desktop.core.progress import Progress

    def report(p: Progress) -> None:
        if not args.quiet and p.message:
            print(f"[{p.done}/{p.total}] {p.message}", flush=True)

    try:
        if args.out is not None:
            folder = build_sample_study(args.out, progress=report)
        else:
            folder = ensure_sample_study(AppPaths.default().ensure(), progress=report)
    except (SampleStudyUnavailable, FileExistsError) as exc:
        raise CliError(str(exc)) from exc
    print(folder)
    return 0
