"""Worker base: a QObject moved onto a QThread that runs one core function.

The core function receives ``progress`` and ``cancel`` keyword arguments (see
:mod:`medgan_desktop.core.progress`). Reports become the ``progress`` signal,
the result becomes ``finished`` and an exception becomes ``failed`` with its
traceback (also written to the log). Cancellation is cooperative.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress

log = logging.getLogger(__name__)


SIGNALS = ("progress", "finished", "failed", "cancelled", "done")


class _Runner(QObject):
    """Lives on the worker thread and runs the function; its signals feed :class:`Worker`."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 token: CancelToken, name: str, min_interval: float) -> None:
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._token, self._name = token, name
        self._min_interval = min_interval
        self._last_emit = 0.0
        self.error: BaseException | None = None

    def _report(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.total > 0 and p.done >= p.total
        if final or now - self._last_emit >= self._min_interval:
            self._last_emit = now
            self.progress.emit(p)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(*self._args, progress=self._report, cancel=self._token,
                              **self._kwargs)
        except Cancelled:
            log.info("%s cancelled", self._name)
            self.cancelled.emit()
        except MemoryError as exc:
            self.error = exc
            tb = traceback.format_exc()
            log.error("%s ran out of memory\n%s", self._name, tb)
            self.failed.emit(f"{self._name}: out of memory. Try a smaller batch or volume.", tb)
        except (JobError, WriteError) as exc:  # one sentence for the user, no traceback
            self.error = exc
            tb = traceback.format_exc()
            log.warning("%s: %s", self._name, exc)
            self.failed.emit(exc.strerror if isinstance(exc, WriteError) and exc.strerror else str(exc), tb)
        except Exception as exc:  # reported to the GUI and the log, never swallowed
            self.error = exc
            tb = traceback.format_exc()
            log.error("%s failed: %s\n%s", self._name, exc, tb)
            self.failed.emit(f"{self._name} failed: {exc}", tb)
        else:
            self.finished.emit(result)
        finally:
            self.done.emit()


class Worker(QObject):
    """Runs ``fn(*args, progress=..., cancel=..., **kwargs)`` in a QThread.

    The Worker itself stays in the GUI thread and re-emits what the function
    reports, so every slot connected to it (lambdas included) runs in the GUI
    thread. Create and start workers from the GUI thread.

    Signals:
        progress(object): a :class:`Progress` (throttled to ``min_interval`` seconds,
            the last report always delivered).
        finished(object): the function's return value.
        failed(str, str): a message for the user and the traceback.
        cancelled(): the function stopped because cancel was requested.
        done(): emitted last in every case; the thread quits after it.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    done = Signal()

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "",
        min_interval: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.name = name or getattr(fn, "__name__", "work")
        self.token = CancelToken()
        self._runner = _Runner(fn, args, kwargs, self.token, self.name, min_interval)
        self.qthread: QThread | None = None

    def connect_slots(self, **slots: Callable[..., Any]) -> Worker:
        """Connect slots by signal name (``progress=``, ``finished=``, ``failed=``,
        ``cancelled=``, ``done=``), as napari's ``create_worker(connect=...)``; returns
        the worker."""
        for name, slot in slots.items():
            if name not in SIGNALS:
                raise TypeError(f"a Worker has no signal {name!r} (one of {', '.join(SIGNALS)})")
            getattr(self, name).connect(slot)
        return self

    def _relay(self, runner: _Runner) -> None:
        for name in SIGNALS:
            getattr(runner, name).connect(getattr(self, name))

    def run(self) -> None:
        """Run the function synchronously in the calling thread (scripts and tests)."""
        self._relay(self._runner)
        self._runner.run()

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def error(self) -> BaseException | None:
        """The exception the function raised (after ``failed``), else None."""
        return self._runner.error

    def start(self) -> QThread:
        """Move the runner onto a new QThread and start it; the thread quits when done."""
        thread = QThread()
        thread.setObjectName(f"worker:{self.name}")
        runner = self._runner
        runner.moveToThread(thread)
        # signal-to-signal connections are queued to this (GUI-thread) object
        self._relay(runner)
        # quit() directly from the worker thread (it is thread-safe): queued to the GUI
        # thread it would never run while the GUI thread blocks in WorkerPool.stop_all()'s
        # wait(), which then timed out at close and destroyed a running QThread
        runner.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.started.connect(runner.run)
        self.qthread = thread
        thread.start()
        return thread

    def is_running(self) -> bool:
        return self.qthread is not None and self.qthread.isRunning()


class WorkerPool:
    """Keeps references to live workers and stops them all at shutdown."""

    def __init__(self) -> None:
        self._workers: list[Worker] = []

    def submit(self, worker: Worker) -> Worker:
        self._workers = [w for w in self._workers if w.is_running()]
        self._workers.append(worker)
        worker.start()
        return worker

    def running(self) -> list[Worker]:
        return [w for w in self._workers if w.is_running()]

    def stop_all(self, timeout_ms: int = 10000) -> bool:
        """Cancel every worker and wait for its thread; True when all stopped."""
        ok = True
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            if w.qthread is not None and not w.qthread.wait(timeout_ms):
                ok = False
        return ok
