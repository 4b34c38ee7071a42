"""The ``medgan`` command line: the same core the GUI uses, for batch jobs.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser whose ``func`` default takes the parsed namespace and returns an
exit code. Add a module name to ``_COMMANDS`` to add a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from medgan_desktop import __version__

_COMMANDS: tuple[str, ...] = ("models_cmd", "bench_cmd", "dicom_cmds", "gan_cmds", "sample_study_cmd", "eval_cmds", "dicom_out_cmds", "translate_cmd")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


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
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except CliError as exc:
        print(f"medgan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medgan {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"medgan {args.command}: error: out of memory; try a smaller batch", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
