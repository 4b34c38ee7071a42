"""Progress reporting and cooperative cancellation for long core functions.

Core functions never emit Qt signals: they take a ``progress`` callback and a
``cancel`` token. The Qt worker is the only place where these become signals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a long operation when its cancel token was set."""


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Args:
        done: units of work finished.
        total: units of work in all (0 when unknown).
        message: a short human-readable status line.
        data: optional structured payload (losses, a preview image path, ...).
    """

    done: int
    total: int
    message: str = ""
    data: dict[str, object] | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores reports."""


class CancelToken:
    """A thread-safe flag checked between units of work, plus an optional pause."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        """Block while paused; raise :class:`Cancelled` if cancellation was requested."""
        self._running.wait()
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")
