"""Measure synthetic images: ``medgan evaluate`` and the Evaluate panel.

* unpaired (:class:`UnpairedSpec`): real vs synthetic image folders, in the features of the
  shipped extractor (or local InceptionV3 FID weights): FD/FID, KID, precision/recall,
  density/coverage, spatial frequency, and optionally memorisation and the classifier
  two-sample test (C2ST) with its real-vs-real null;
* paired (:class:`PairedSpec`): a synthetic volume against its reference (SynthRAD MAE,
  PSNR, SSIM, MS-SSIM, per tissue; SCD for fusions);
* utility (:class:`UtilitySpec`): does adding synthetic images help a small classifier;
* every mode can write an HTML report (atomically).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.metrics.evaluate import UnpairedResult, evaluate_paths, evaluate_sets
from medgan_desktop.core.metrics.features import FeatureExtractor, load_extractor
from medgan_desktop.core.metrics.paired import PairedReport
from medgan_desktop.core.metrics.report import paired_html, unpaired_html, utility_html, write_html
from medgan_desktop.core.metrics.utility import UtilityReport, load_labelled, utility_study
from medgan_desktop.core.models.registry import ModelError
from medgan_desktop.core.progress import CancelToken, ProgressCallback, no_progress

_R = TypeVar("_R")


@dataclass(frozen=True)
class UnpairedSpec:
    """Real vs synthetic image folders.

    Args:
        real: real images (held out from training, for an honest comparison).
        fake: synthetic images.
        extractor: ``"shipped"`` or a path to local InceptionV3 FID weights.
        memorization: flag synthetic images that are near-copies of training images.
        train: the model's training images (memorisation reference).
        limit: at most this many images per folder (0: all).
        percentile: the near-copy threshold percentile.
        html: write an HTML report here ("" none).
        c2st: also run the classifier two-sample test and its real-vs-real null.
        c2st_size: the test's image size.
    """

    real: Path
    fake: Path
    extractor: str = "shipped"
    memorization: bool = False
    train: Path | None = None
    limit: int = 0
    percentile: float = 1.0
    html: str = ""
    c2st: bool = False
    c2st_size: int = 64


@dataclass(frozen=True)
class PairedSpec:
    """A synthetic volume against its reference (files or DICOM series folders)."""

    pred: Path
    ref: Path
    mask: Path | None = None
    window: str = "uniform"
    sources: tuple[Path, Path] | None = None
    html: str = ""


@dataclass(frozen=True)
class UtilitySpec:
    """Training, synthetic and test folders with one sub-folder per class."""

    train: Path
    fake: Path
    test: Path
    seeds: int = 5
    limit: int = 0
    html: str = ""


def _exists(*paths: Path | None) -> None:
    for p in paths:
        if p is not None and not Path(p).exists():
            raise JobError(f"no such file or folder: {p}")


def extractor_for(spec: str) -> FeatureExtractor:
    """The feature extractor a spec names (shipped, checked against its sha256; or local
    InceptionV3 weights, never downloaded).

    Raises:
        JobError: missing or unreadable weights.
    """
    try:
        return load_extractor(spec)
    except (FileNotFoundError, ValueError, ModelError) as exc:
        raise JobError(str(exc)) from exc


def _reported(html: str, render: Callable[[_R], str], evaluate: Callable[[], _R]) -> _R:
    """The result of ``evaluate()`` (a ``ValueError`` is a :class:`JobError`), written as an
    HTML report to ``html`` when one is asked for."""
    try:
        result = evaluate()
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    if html:
        write_html(render(result), html)
    return result


def run_unpaired(spec: UnpairedSpec, progress: ProgressCallback = no_progress,
                 cancel: CancelToken | None = None) -> UnpairedResult:
    """Compare the two folders (see :class:`UnpairedSpec`)."""
    _exists(spec.real, spec.fake, spec.train)
    ext = extractor_for(spec.extractor)
    return _reported(spec.html, unpaired_html, lambda: evaluate_sets(
        spec.real, spec.fake, ext, memorization=spec.memorization, train=spec.train,
        limit=spec.limit or None, percentile=spec.percentile, progress=progress, cancel=cancel,
        two_sample=spec.c2st, two_sample_size=spec.c2st_size))


def run_paired(spec: PairedSpec, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> PairedReport:
    """Score the synthetic volume against the reference (see :class:`PairedSpec`)."""
    _exists(spec.pred, spec.ref, spec.mask, *(spec.sources or ()))
    return _reported(spec.html, paired_html, lambda: evaluate_paths(
        spec.pred, spec.ref, spec.mask, window=spec.window, progress=progress, cancel=cancel,
        sources=list(spec.sources) if spec.sources else None))


def run_utility(spec: UtilitySpec, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> tuple[UtilityReport, list[str]]:
    """Train the small classifier on real, and on real + synthetic; test on real."""
    _exists(spec.train, spec.fake, spec.test)
    limit = spec.limit or None
    try:
        xtr, ytr, classes = load_labelled(spec.train, limit)
        xs, ys, c2 = load_labelled(spec.fake, limit)
        xt, yt, c3 = load_labelled(spec.test, limit)
    except (ValueError, FileNotFoundError) as exc:
        raise JobError(str(exc)) from exc
    if not classes == c2 == c3:
        raise JobError(f"the class folders differ: {classes} / {c2} / {c3}")
    rep = utility_study(xtr, ytr, xs, ys, xt, yt, seeds=tuple(range(spec.seeds)),
                        progress=progress, cancel=cancel)
    if spec.html:
        write_html(utility_html(rep), spec.html)
    return rep, classes
