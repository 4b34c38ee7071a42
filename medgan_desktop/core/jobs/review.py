"""The blinded reader study: ``medgan review`` and the Review panel.

Sessions live in a review database (:class:`~medgan_desktop.core.review.session.ReviewStore`);
these jobs create one from real and synthetic pools, score it (per reader and pooled:
accuracy, sensitivity, specificity, AUC, Cohen/Fleiss kappa) and move sessions between
workstations as one zip file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.progress import CancelToken, ProgressCallback, no_progress
from medgan_desktop.core.review.scoring import StudyResults, score_session, write_ratings_csv, write_summary_csv
from medgan_desktop.core.review.session import ReviewError, ReviewStore, SessionInfo


@dataclass(frozen=True)
class CreateSpec:
    """A new session.

    Args:
        db: the review database ("" : the default in the data folder).
        name: a unique session name.
        real / fake: image files or folders of each pool (series folders are whole items).
        seed: the presentation-order seed (None: random).
        scale: the confidence scale, ``(1, 5)`` or ``(0, 100)``.
        limit: at most this many items per pool (0: all).
        series: a folder holding a DICOM series is one item (scrolled through), not one per slice.
        equalise: show real and synthetic items through one pipeline (same matrix size,
            interpolation, bit depth and windowing); off only to study the raw images.
        display_size: the display matrix's shorter side in px (0: automatic, the smaller
            pool's median).
    """

    db: str
    name: str
    real: tuple[Path, ...]
    fake: tuple[Path, ...]
    seed: int | None = None
    scale: tuple[int, int] = (1, 5)
    limit: int = 0
    series: bool = True
    equalise: bool = True
    display_size: int = 0


def _store(db: str) -> ReviewStore:
    try:
        return ReviewStore(db or None)
    except ReviewError as exc:
        raise JobError(str(exc)) from exc


def run_create(spec: CreateSpec, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> SessionInfo:
    """Create the session and return its description.

    Raises:
        JobError: a duplicate name, empty pools, unreadable images.
    """
    with _store(spec.db) as store:
        try:
            sid = store.create_session(spec.name, list(spec.real), list(spec.fake), seed=spec.seed,
                                       confidence_scale=spec.scale,
                                       limit_per_pool=spec.limit or None,
                                       progress=progress, cancel=cancel, series=spec.series,
                                       equalise=spec.equalise, display_size=spec.display_size)
        except ReviewError as exc:
            raise JobError(str(exc)) from exc
        return store.session(sid)


def sessions(db: str = "") -> list[SessionInfo]:
    """Every session of the review database."""
    with _store(db) as store:
        return store.sessions()


@dataclass(frozen=True)
class Results:
    """A scored session."""

    session: SessionInfo
    results: StudyResults
    written: tuple[Path, ...] = ()


def run_results(db: str, session: str, ratings_csv: Path | None = None,
                summary_csv: Path | None = None) -> Results:
    """Score a session (by id or unique name), optionally writing the CSV tables.

    Raises:
        JobError: an unknown or ambiguous session.
    """
    with _store(db) as store:
        try:
            sid = store.resolve_session(session)
            ratings = store.ratings(sid)
            truths = store.truths(sid)
            info = store.session(sid)
        except ReviewError as exc:
            raise JobError(str(exc)) from exc
    res = score_session(ratings, truths)
    written: list[Path] = []
    if ratings_csv is not None:
        written.append(write_ratings_csv(ratings, ratings_csv))
    if summary_csv is not None:
        written.append(write_summary_csv(res, summary_csv))
    return Results(info, res, tuple(written))


def run_export(db: str, session: str, out: Path, include_answers: bool = True) -> Path:
    """Write a session (images, order, answers) to one zip file."""
    with _store(db) as store:
        try:
            return store.export_session(store.resolve_session(session), out,
                                        include_answers=include_answers)
        except ReviewError as exc:
            raise JobError(str(exc)) from exc


def run_import(db: str, file: Path) -> str:
    """Import (and merge) a session file; returns the session id."""
    if not Path(file).is_file():
        raise JobError(f"no such file: {file}")
    with _store(db) as store:
        try:
            return store.import_session(file)
        except ReviewError as exc:
            raise JobError(str(exc)) from exc


def names(infos: Sequence[SessionInfo]) -> list[str]:
    return [i.name for i in infos]
