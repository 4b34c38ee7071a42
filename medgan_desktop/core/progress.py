"""Progress reporting and cooperative cancellation for long core functions.

Core functions never emit Qt signals: they take a ``progress`` callback and a
``cancel`` token. The Qt worker is the only place where these become signals.

A report is a :class:`Progress` (done/total/message) that may carry one typed
*event*, so that the CLI, the GUI and the logs read the same fields:

* :class:`StepEvent`: one training step (losses, throughput, ETA, CPU time, the sample
  grid or checkpoint written at that step);
* :class:`StageEvent`: a job entered a stage (loading, registering, training, writing...);
* :class:`PairEvent`: one MR/CT pair of a translation job is ready (patient, slices,
  registration quality, slices kept by the quality control);
* :class:`NoticeEvent`: something the user must read (a geometry warning, a model that
  does not fit the input, a file skipped) — every front end prints or shows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Cancelled(Exception):
    """Raised inside a long operation when its cancel token was set."""


class Stage(StrEnum):
    """The stages a job reports (:class:`StageEvent`)."""

    LOAD = "load"
    PREPARE = "prepare"
    TRAIN = "train"
    EVALUATE = "evaluate"
    WRITE = "write"


@dataclass(frozen=True)
class StepEvent:
    """One optimisation step of a training run.

    Args:
        step: steps completed in all (a resumed run counts from its start).
        total: the configured total.
        losses: the step's losses (averaged over processes under data parallel).
        images_per_s: recent training throughput.
        eta_s: wall-clock seconds to the total at the current rate (0 when unknown).
        cpu_s: CPU seconds this session has used (all threads of the process).
        wall_s: wall-clock seconds of this session.
        sample: the sample grid written at this step ("" if none).
        checkpoint: the checkpoint written at this step ("" if none).
    """

    step: int
    total: int
    losses: Mapping[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    eta_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    sample: str = ""
    checkpoint: str = ""

    def line(self, keys: tuple[str, ...] | None = None) -> str:
        """``step 10/100  d=0.693 g=0.812  24.1 img/s  cpu 12s  eta 40s``."""
        ls = " ".join(
            f"{k}={v:.3f}" for k, v in self.losses.items() if keys is None or k in keys
        )
        return (
            f"step {self.step}/{self.total}  {ls}  {self.images_per_s:.1f} img/s  "
            f"cpu {self.cpu_s:.0f}s  eta {self.eta_s:.0f}s"
        )


@dataclass(frozen=True)
class StageEvent:
    """A job entered ``stage``; ``detail`` says what it is doing."""

    stage: Stage
    detail: str = ""


@dataclass(frozen=True)
class PairEvent:
    """One MR/CT pair of a translation job is ready.

    Args:
        patient: the patient key used for the split.
        slices: slices in the pair.
        registration: the registration quality in words ("MI 0.12 -> 0.45 (rigid)").
        kept: slices that passed the registration quality control (== slices when none ran).
    """

    patient: str
    slices: int
    registration: str
    kept: int


@dataclass(frozen=True)
class NoticeEvent:
    """A message the user must see (printed by the CLI, shown by the GUI, logged)."""

    text: str


ProgressEvent = StepEvent | StageEvent | PairEvent | NoticeEvent


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Args:
        done: units of work finished.
        total: units of work in all (0 when unknown).
        message: a short human-readable status line.
        event: what happened, typed (see the module docs), or None for a plain report.
    """

    done: int
    total: int
    message: str = ""
    event: ProgressEvent | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def step(self) -> StepEvent | None:
        """The training step this report describes, if it does."""
        return self.event if isinstance(self.event, StepEvent) else None


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores reports."""


def notice(progress: ProgressCallback, text: str) -> None:
    """Report ``text`` as a :class:`NoticeEvent` (a message every front end shows)."""
    progress(Progress(0, 0, text, NoticeEvent(text)))


def stage(progress: ProgressCallback, which: Stage, detail: str) -> None:
    """Report that a job entered the stage ``which``."""
    progress(Progress(0, 0, detail, StageEvent(which, detail)))


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
