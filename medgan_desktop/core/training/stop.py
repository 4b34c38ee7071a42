"""Stopping a training run on a termination signal, with a checkpoint first.

SIGINT (Ctrl-C) raises ``KeyboardInterrupt`` wherever Python is; the training loop catches
it and writes a checkpoint. SIGTERM is what a session logout, a service manager or a
cluster scheduler sends; by default it kills the process on the spot. While
:func:`stop_on_terminate` is active (in the main thread), SIGTERM only *requests* a stop:
the loop sees it between two steps, writes a checkpoint and raises. A second SIGTERM
while the first is pending exits at once (status 143), as a user who insists expects.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


class StopRequest(BaseException):
    """Raised by the loop when a termination signal asked it to stop (``args[0]``: the signal)."""


@dataclass
class TerminateFlag:
    """Set by the SIGTERM handler; the loop checks :attr:`requested` between steps."""

    requested: bool = False
    signal_name: str = "SIGTERM"


@contextmanager
def stop_on_terminate() -> Iterator[TerminateFlag]:
    """Turn SIGTERM into a stop request for the duration of the block.

    Outside the main thread (a GUI worker) signals cannot be handled here; the flag then
    never rises, and the GUI stops its workers through their cancel tokens instead.
    """
    flag = TerminateFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if flag.requested:
            sys.exit(128 + signum)
        flag.requested = True
        flag.signal_name = signal.Signals(signum).name

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # no signals here (embedded interpreter)
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)
