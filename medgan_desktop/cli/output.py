"""How every ``medgan`` command reports a job's progress: one printer for all of them.

Notices (warnings the user must read) are printed at once, stage changes as they come,
training steps and plain progress at most every few seconds, everything on stderr so
that stdout keeps the command's result (JSON, a session id, a path).
"""

from __future__ import annotations

import os
import sys
import time

from medgan_desktop.core.progress import NoticeEvent, PairEvent, Progress, ProgressCallback, StageEvent, StepEvent

#: Losses shown on a training line (the rest are in metrics.jsonl).
STEP_KEYS = ("d", "g", "l1", "cycle", "soft", "hard", "recon")


def is_main_process() -> bool:
    """False in the other processes of a ``torchrun`` job (only rank 0 prints)."""
    return int(os.environ.get("RANK", "0")) == 0


def printer(command: str, every_s: float = 2.0, plain: bool = True) -> ProgressCallback:
    """A progress callback printing what a user of ``medgan COMMAND`` needs to see.

    Args:
        command: the subcommand, for the ``medgan COMMAND: warning:`` prefix.
        every_s: the shortest interval between two step or progress lines.
        plain: also print plain progress messages (throttled); off for quiet commands.
    """
    last = [0.0]
    main = is_main_process()

    def report(p: Progress) -> None:
        if not main:
            return
        ev = p.event
        if isinstance(ev, NoticeEvent):
            print(f"medgan {command}: warning: {ev.text}", file=sys.stderr, flush=True)
            return
        if isinstance(ev, StageEvent | PairEvent):
            print(p.message, file=sys.stderr, flush=True)
            return
        now = time.monotonic()
        final = p.total > 0 and p.done >= p.total
        if now - last[0] < every_s and not final:
            return
        if isinstance(ev, StepEvent):
            last[0] = now
            print(ev.line(STEP_KEYS), file=sys.stderr, flush=True)
        elif plain and p.message:
            last[0] = now
            print(p.message, file=sys.stderr, flush=True)

    return report


def quiet(_: Progress) -> None:
    """A callback for ``--json`` runs: notices only, so stdout stays parseable."""
    if isinstance(_.event, NoticeEvent):
        print(f"warning: {_.event.text}", file=sys.stderr, flush=True)
