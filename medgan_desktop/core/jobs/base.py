"""What every job shares: the error a user can act on, and how results say what they wrote.

A job is one function per user action (``run_*``) taking a frozen, typed spec plus
``progress`` and ``cancel`` (see :mod:`medgan_desktop.core.progress`) and returning a typed
result. Bad input is a :class:`JobError`: one sentence naming what is wrong and what to do,
which the CLI prints (exit code :attr:`JobError.exit_code`) and the GUI shows in a message
box; a failed write is a :class:`~medgan_desktop.core.atomic.WriteError` (nothing partial is
left). Warnings the user must read travel in the result *and* as
:class:`~medgan_desktop.core.progress.NoticeEvent` reports while the job runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medgan_desktop.core.progress import ProgressCallback, notice


class JobError(ValueError):
    """A job cannot run as asked; ``str(exc)`` is one sentence for the user.

    Args:
        message: what is wrong and, where possible, what to do.
        exit_code: the CLI's exit status (2: bad input or a refusal).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ModelMismatchError(JobError):
    """A model does not fit the input (modality, weighting, body part...); ``--force`` runs it."""


@contextmanager
def training_errors() -> Iterator[None]:
    """A failed training run as a :class:`JobError`: out of memory exits 3, SIGTERM 143
    (128 + 15; a checkpoint was written), bad data or a failed step 2."""
    from medgan_desktop.core.training.data import DataError  # torch: only where training runs
    from medgan_desktop.core.training.loop import TrainingError, TrainingOOMError, TrainingTerminated

    try:
        yield
    except TrainingOOMError as exc:
        raise JobError(str(exc), exit_code=3) from exc
    except TrainingTerminated as exc:
        raise JobError(str(exc), exit_code=143) from exc
    except (TrainingError, DataError) as exc:
        raise JobError(str(exc)) from exc


def warn_all(progress: ProgressCallback, warnings: Iterable[str], prefix: str = "") -> tuple[str, ...]:
    """Report each warning as a notice (once) and return them as a tuple."""
    out: list[str] = []
    for w in warnings:
        if w and w not in out:
            out.append(w)
            notice(progress, f"{prefix}{w}")
    return tuple(out)


def path_text(paths: Iterable[Path]) -> str:
    """``"3 files in /out"`` or the single file, for summaries."""
    ps = list(paths)
    if not ps:
        return "nothing"
    if len(ps) == 1:
        return str(ps[0])
    parents = {p.parent for p in ps}
    where = f" in {next(iter(parents))}" if len(parents) == 1 else ""
    return f"{len(ps)} files{where}"
