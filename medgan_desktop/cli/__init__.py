"""The ``medgan`` command line: the same core the GUI uses, for batch jobs.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser whose ``func`` default takes the parsed namespace and returns an
exit code. Add a module name to ``_COMMANDS`` to add a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from medgan_desktop import __version__
from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.progress import Cancelled

_COMMANDS: tuple[str, ...] = ("models_cmd", "bench_cmd", "dicom_cmds", "gan_cmds", "sample_study_cmd", "eval_cmds", "dicom_out_cmds", "translate_cmd")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _stdout_gone() -> int:
    """stdout was closed by the reader (``medgan models card X | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a closed pipe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medgan",
        description="medgan_desktop batch tools: import, anonymise, train, sample, "
        "translate, evaluate, review and benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"medgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # pydicom both logs and warns each problem: keep the log line, drop the duplicate.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except (CliError, JobError) as exc:
        print(f"medgan {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, JobError) else 2
    except WriteError as exc:
        print(f"medgan {args.command}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _stdout_gone()
    except (KeyboardInterrupt, Cancelled):
        print(f"medgan {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"medgan {args.command}: error: out of memory; try a smaller batch", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
