"""One-call evaluations shared by ``medgan evaluate`` and the Evaluate panel.

* :func:`evaluate_sets`: unpaired real vs synthetic image folders (FD/FID, KID,
  precision/recall, density/coverage, Inception Score, SF, memorisation).
* :func:`evaluate_paths`: paired prediction vs reference volumes (SynthRAD metrics).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.metrics.c2st import DEFAULT_SIZE, C2stReport, c2st, real_vs_real
from medgan_desktop.core.metrics.distribution import DistributionReport, compare_features, inception_score
from medgan_desktop.core.metrics.features import FeatureExtractor, InceptionV3Extractor, load_extractor
from medgan_desktop.core.metrics.fusion import scd_scaled, spatial_frequency
from medgan_desktop.core.metrics.images import ImageSet, load_images
from medgan_desktop.core.metrics.memorization import THUMB, MemorizationReport, find_near_copies
from medgan_desktop.core.metrics.paired import PairedReport, SsimWindow, evaluate_pair
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import JsonObject
from medgan_desktop.core.volume import Volume


def _sub(progress: ProgressCallback, stage: int, n_stages: int, label: str) -> ProgressCallback:
    """Map a sub-task's progress into one overall bar (``n_stages`` equal parts)."""

    def cb(p: Progress) -> None:
        frac = p.fraction
        progress(Progress(int(1000 * (stage + frac)), 1000 * n_stages, f"{label}: {p.message}"))

    return cb


@dataclass
class UnpairedResult:
    """Everything :func:`evaluate_sets` measured (``images`` kept for galleries)."""

    distribution: DistributionReport
    memorization: MemorizationReport | None
    spatial_frequency_real: float
    spatial_frequency_fake: float
    real_files: list[str]
    fake_files: list[str]
    train_files: list[str] = field(default_factory=list)
    real_thumbs: NDArray[np.float32] | None = None
    fake_thumbs: NDArray[np.float32] | None = None
    train_thumbs: NDArray[np.float32] | None = None
    real_features: NDArray[np.float64] | None = None
    fake_features: NDArray[np.float64] | None = None
    c2st: C2stReport | None = None
    c2st_null: C2stReport | None = None

    def to_dict(self) -> JsonObject:
        """The CLI's JSON: metric keys at the top level, ``memorization`` as a list."""
        d: JsonObject = self.distribution.to_dict()
        d["spatial_frequency_real"] = self.spatial_frequency_real
        d["spatial_frequency_fake"] = self.spatial_frequency_fake
        if self.c2st is not None:
            d["c2st"] = self.c2st.to_dict()
        if self.c2st_null is not None:
            d["c2st_null"] = self.c2st_null.to_dict()
        if self.memorization is not None:
            m = self.memorization
            d["memorization"] = [
                {k: e[k] for k in ("fake", "nearest_real", "distance", "flagged",
                                   "nearest_real_pixel", "pixel_distance")}
                for e in m.entries
            ]
            d["memorization_summary"] = {
                "n_flagged": len(m.flagged),
                "feature_threshold": m.feature_threshold,
                "pixel_threshold": m.pixel_threshold,
                "percentile": m.percentile,
                "reference": m.reference,
                "reference_note": m.reference_note,
                "n_reference_excluded": m.n_reference_excluded,
                "n_exact_copies": sum(bool(e.get("exact_copy")) for e in m.entries),
            }
        return d


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_in(files: Sequence[Path], pool: Sequence[Path]) -> list[bool]:
    """For each of ``files``: is it also in ``pool`` (same resolved path or same bytes)?"""
    paths = {p.resolve() for p in pool}
    digests: set[str] | None = None
    out = []
    for f in files:
        if f.resolve() in paths:
            out.append(True)
            continue
        if digests is None:
            digests = {_file_digest(p) for p in pool}
        out.append(_file_digest(f) in digests)
    return out


def _mean_sf(images: ImageSet) -> float:
    return float(np.mean([spatial_frequency(im) for im in images.images])) if len(images) else 0.0


def evaluate_sets(
    real: Path | str,
    fake: Path | str,
    extractor: FeatureExtractor | str | Path = "shipped",
    memorization: bool = False,
    train: Path | str | None = None,
    limit: int | None = None,
    percentile: float = 1.0,
    kid_subsets: int = 100,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    two_sample: bool = False,
    two_sample_size: int = DEFAULT_SIZE,
) -> UnpairedResult:
    """Compare a folder of real images with a folder of synthetic ones.

    Args:
        real: real images (held-out when ``train`` is given).
        fake: synthetic images.
        extractor: a :class:`FeatureExtractor`, ``"shipped"`` or a path to InceptionV3 weights.
        memorization: also search each synthetic image's nearest training image.
        train: the model's training images (memorisation); without it the real set is
            used as the training set and the threshold comes from leave-one-out distances.
            Real images that are also training images (same file or same bytes) are left
            out of the threshold's reference (see :func:`find_near_copies`).
        limit: read at most this many images per folder.
        percentile: near-copy threshold percentile of the reference distances.
        kid_subsets: number of KID subsets.
        two_sample: also run the classifier two-sample test (C2ST, real vs synthetic at
            ``two_sample_size``²) and its real-vs-real null (training images vs the real
            set when ``train`` is given, else two halves of the real set).
        progress: progress callback.
        cancel: cancel token.
    """
    ext = extractor if not isinstance(extractor, str | Path) else load_extractor(extractor)
    size = 299 if isinstance(ext, InceptionV3Extractor) else 128
    n_stages = 5 + int(memorization) + 2 * int(two_sample)
    real_set = load_images(real, size=size, limit=limit,
                           progress=_sub(progress, 0, n_stages, "real images"), cancel=cancel)
    fake_set = load_images(fake, size=size, limit=limit,
                           progress=_sub(progress, 1, n_stages, "synthetic images"), cancel=cancel)
    if len(real_set) < 2 or len(fake_set) < 2:
        raise ValueError("each set needs at least two images")
    fr = ext.extract(list(real_set.images), progress=_sub(progress, 2, n_stages, "features"),
                     cancel=cancel)
    ff = ext.extract(list(fake_set.images), progress=_sub(progress, 3, n_stages, "features"),
                     cancel=cancel)
    rep = compare_features(fr, ff, extractor=ext.name, kid_subsets=kid_subsets,
                           progress=_sub(progress, 4, n_stages, "metrics"), cancel=cancel)
    if isinstance(ext, InceptionV3Extractor):
        rep.inception_score, rep.inception_score_std = inception_score(ext.logits(list(fake_set.images)))
    mem: MemorizationReport | None = None
    train_files: list[str] = []
    train_thumbs = None
    real_thumbs = real_set.stack(THUMB)
    fake_thumbs = fake_set.stack(THUMB)
    if memorization:
        if train is not None:
            train_set = load_images(train, size=size, limit=limit, cancel=cancel)
            ft = ext.extract(list(train_set.images), cancel=cancel)
            train_thumbs = train_set.stack(THUMB)
            train_files = [str(f) for f in train_set.files]
            mem = find_near_copies(ff, ft, fake_thumbs, train_thumbs, fr, real_thumbs,
                                   [str(f) for f in fake_set.files], train_files, percentile,
                                   progress=_sub(progress, 5, n_stages, "memorisation"),
                                   cancel=cancel,
                                   test_in_train=files_in(real_set.files, train_set.files))
        else:
            train_files = [str(f) for f in real_set.files]
            train_thumbs = real_thumbs
            mem = find_near_copies(ff, fr, fake_thumbs, real_thumbs, None, None,
                                   [str(f) for f in fake_set.files], train_files, percentile,
                                   progress=_sub(progress, 5, n_stages, "memorisation"),
                                   cancel=cancel)
    two: C2stReport | None = None
    null: C2stReport | None = None
    if two_sample:
        stage = 5 + int(memorization)
        real_c = real_set.stack(two_sample_size)
        two = c2st(real_c, fake_set.stack(two_sample_size), size=two_sample_size,
                   progress=_sub(progress, stage, n_stages, "classifier two-sample test"), cancel=cancel)
        other = None
        if train is not None:
            tset = load_images(train, size=size, limit=limit, cancel=cancel)
            other = tset.stack(two_sample_size)
        null = real_vs_real(real_c, other, size=two_sample_size,
                            progress=_sub(progress, stage + 1, n_stages, "real-vs-real null"), cancel=cancel)
    progress(Progress(n_stages, n_stages, "done"))
    return UnpairedResult(rep, mem, _mean_sf(real_set), _mean_sf(fake_set),
                          [str(f) for f in real_set.files], [str(f) for f in fake_set.files],
                          train_files, real_thumbs, fake_thumbs, train_thumbs, fr, ff, two, null)


def open_volume(path: Path | str) -> Volume:
    """The first volume at ``path`` (DICOM series, NIfTI/MHA, image) via ``core.io``."""
    p = Path(path)
    try:
        from medgan_desktop.core.io import open_path
    except ImportError:  # pragma: no cover - core.io is part of the product
        import SimpleITK as sitk

        return Volume.from_sitk(sitk.ReadImage(str(p)))
    vols = open_path(p)
    if not vols:
        raise ValueError(f"nothing to open at {p}")
    return vols[0]


def evaluate_paths(
    pred: Path | str,
    ref: Path | str,
    mask: Path | str | None = None,
    window: SsimWindow | str = SsimWindow.UNIFORM,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    sources: Sequence[Path | str] | None = None,
) -> PairedReport:
    """Paired SynthRAD metrics for files/series on disk (see :func:`evaluate_pair`).

    ``sources``: the two source images when ``pred`` is a *fusion* of them (same grid as
    ``pred``); the report then carries the SCD fusion metric (see
    :mod:`medgan_desktop.core.metrics.fusion`: not defined for an MR→sCT translation).
    """
    if sources is not None and len(sources) not in (0, 2):
        raise ValueError("SCD needs exactly two fusion source images")
    p, r = open_volume(pred), open_volume(ref)
    m = open_volume(mask) if mask is not None else None
    if m is not None and m.shape != r.shape:
        raise ValueError(f"mask shape {m.shape} differs from the reference {r.shape}")
    scd_value: float | None = None
    if sources:
        s1, s2 = (open_volume(s) for s in sources)
        if not (s1.shape == s2.shape == p.shape):
            raise ValueError(f"the fusion sources {s1.shape}, {s2.shape} must have the shape of "
                             f"the fused image {p.shape}")
        scd_value = scd_scaled(p.array, s1.array, s2.array)
    rep = evaluate_pair(p, r, m, window=window, progress=progress, cancel=cancel)
    if scd_value is not None and sources:
        rep.scd = scd_value
        rep.scd_sources = [str(s) for s in sources]
    return rep
