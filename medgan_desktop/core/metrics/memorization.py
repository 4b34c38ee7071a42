"""Memorisation and privacy: is a synthetic image a near-copy of a training image?

For every synthetic image the nearest training image is found in feature space and in
pixel space (RMS difference of 64² thumbnails in [0, 1]). The distances are compared
with the distribution of *real held-out* images' distances to the training set: a real
patient the model never saw is, by definition, not a copy, so a synthetic image closer
to a training image than (almost) any held-out real image is flagged. The threshold
is a low percentile (default the 1st) of that reference distribution, per space.

Without a held-out set, the reference is the leave-one-out nearest-neighbour distance
within the training set itself (each training image to the others).

A "held-out" set that shares images with the training set (a natural mistake: pointing
both at the same folder) would put zeros into the reference and the threshold at 0.
Held-out images that are training images (``test_in_train``, decided by the caller from
file identity, or a pixel distance <= :data:`EXACT`) are therefore left out of the
reference; when fewer than :data:`MIN_REFERENCE` remain, the leave-one-out reference is
used instead and :attr:`MemorizationReport.reference_note` says so. Distances at or below
the threshold are flagged, and a synthetic image at distance <= :data:`EXACT` from a
training image (in either space) is always flagged as an exact copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import FloatArray, JsonObject

THUMB = 64
#: Distances at or below this are identical images (exact copies).
EXACT = 1e-9
#: Fewest held-out reference images kept before falling back to leave-one-out.
MIN_REFERENCE = 10


def _nearest(
    query: FloatArray, train: FloatArray, exclude_self: bool = False, chunk: int = 256
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Index and Euclidean distance of each query row's nearest train row."""
    q = np.asarray(query, np.float64).reshape(len(query), -1)
    t = np.asarray(train, np.float64).reshape(len(train), -1)
    tn = (t * t).sum(1)
    idx = np.zeros(len(q), dtype=np.int64)
    dist = np.zeros(len(q))
    for s in range(0, len(q), chunk):
        qq = q[s:s + chunk]
        d2 = (qq * qq).sum(1)[:, None] + tn[None, :] - 2.0 * qq @ t.T
        if exclude_self:
            rows = np.arange(len(qq))
            d2[rows, rows + s] = np.inf
        j = np.argmin(d2, axis=1)
        idx[s:s + chunk] = j
        # the expanded form above cancels badly for identical rows: recompute the
        # winner's distance directly so that an exact copy is exactly 0
        diff = qq - t[j]
        dist[s:s + chunk] = np.sqrt((diff * diff).sum(1))
    return idx, dist


def _pixels(images: FloatArray) -> NDArray[np.float64]:
    """Flattened thumbnails scaled so the Euclidean distance is the RMS difference."""
    a = np.asarray(images, np.float64)
    flat: NDArray[np.float64] = a.reshape(len(a), -1) / np.sqrt(a[0].size)
    return flat


@dataclass
class MemorizationReport:
    """Nearest training image of every synthetic image, with flags.

    ``entries`` rows: ``fake``, ``nearest_real`` (feature space), ``distance``,
    ``nearest_real_pixel``, ``pixel_distance``, ``exact_copy`` (either distance <=
    :data:`EXACT`), ``flagged`` (an exact copy, or either space at or below its
    threshold), plus the indices ``fake_index``/``real_index``/``real_index_pixel``.
    ``reference_note`` explains held-out images left out of the reference (they were
    training images) and a fall-back to leave-one-out.
    """

    entries: list[JsonObject]
    feature_threshold: float
    pixel_threshold: float
    percentile: float
    reference: str  # "held-out real" or "train leave-one-out"
    reference_feature_distances: list[float] = field(default_factory=list)
    reference_pixel_distances: list[float] = field(default_factory=list)
    reference_note: str = ""
    n_reference_excluded: int = 0

    @property
    def flagged(self) -> list[JsonObject]:
        return [e for e in self.entries if e["flagged"]]

    def to_dict(self) -> JsonObject:
        return {
            "entries": self.entries,
            "n_flagged": len(self.flagged),
            "feature_threshold": self.feature_threshold,
            "pixel_threshold": self.pixel_threshold,
            "percentile": self.percentile,
            "reference": self.reference,
            "reference_note": self.reference_note,
            "n_reference_excluded": self.n_reference_excluded,
            "reference_feature_distances": self.reference_feature_distances,
            "reference_pixel_distances": self.reference_pixel_distances,
        }


def find_near_copies(
    fake_features: FloatArray,
    train_features: FloatArray,
    fake_images: FloatArray,
    train_images: FloatArray,
    test_features: FloatArray | None = None,
    test_images: FloatArray | None = None,
    fake_names: list[str] | None = None,
    train_names: list[str] | None = None,
    percentile: float = 1.0,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    test_in_train: Sequence[bool] | NDArray[np.bool_] | None = None,
) -> MemorizationReport:
    """Nearest training image per synthetic image and near-copy flags.

    Args:
        fake_features: ``(F, D)`` features of the synthetic images.
        train_features: ``(T, D)`` features of the training images.
        fake_images: ``(F, H, W)`` synthetic images in [0, 1] (same size as the others).
        train_images: ``(T, H, W)`` training images in [0, 1].
        test_features: ``(R, D)`` features of real held-out images (None: leave-one-out).
        test_images: ``(R, H, W)`` real held-out images.
        fake_names: labels for the synthetic images (file names).
        train_names: labels for the training images.
        percentile: threshold percentile of the reference distances.
        progress: progress callback.
        cancel: cancel token.
        test_in_train: per held-out image, True when it is also a training image (same
            file or same content); such images are left out of the reference. Held-out
            images pixel-identical to a training image are left out as well.
    """
    if len(train_features) < 2:
        raise ValueError("memorisation needs at least two training images")
    progress(Progress(0, 3, "reference distances"))
    tp = _pixels(train_images)
    note = ""
    n_excluded = 0
    use_loo = True
    if test_features is not None and test_images is not None and len(test_features) > 0:
        _, ref_f = _nearest(test_features, train_features)
        _, ref_p = _nearest(_pixels(test_images), tp)
        overlap = ref_p <= EXACT
        if test_in_train is not None:
            flags = np.asarray(test_in_train, dtype=bool)
            if flags.shape != overlap.shape:
                raise ValueError("test_in_train needs one flag per held-out image")
            overlap |= flags
        n_excluded = int(overlap.sum())
        n_left = len(overlap) - n_excluded
        if n_excluded == 0:
            use_loo = False
        elif n_left >= MIN_REFERENCE:
            ref_f, ref_p = ref_f[~overlap], ref_p[~overlap]
            use_loo = False
            note = (f"{n_excluded} of {len(overlap)} held-out real images are training images "
                    f"and were left out of the reference")
        else:
            note = (f"the held-out real set overlaps the training set ({n_excluded} of "
                    f"{len(overlap)} images are training images); too few remain "
                    f"({n_left} < {MIN_REFERENCE}), so the threshold comes from leave-one-out "
                    f"distances within the training set")
    if use_loo:
        _, ref_f = _nearest(train_features, train_features, exclude_self=True)
        _, ref_p = _nearest(tp, tp, exclude_self=True)
        reference = "train leave-one-out"
    else:
        reference = "held-out real"
    if cancel is not None:
        cancel.check()
    thr_f = float(np.percentile(ref_f, percentile))
    thr_p = float(np.percentile(ref_p, percentile))
    progress(Progress(1, 3, "nearest neighbours (features)"))
    jf, df = _nearest(fake_features, train_features)
    if cancel is not None:
        cancel.check()
    progress(Progress(2, 3, "nearest neighbours (pixels)"))
    jp, dp = _nearest(_pixels(fake_images), tp)
    fnames = fake_names or [str(i) for i in range(len(df))]
    tnames = train_names or [str(i) for i in range(len(train_features))]
    entries = []
    for i in range(len(df)):
        exact = bool(df[i] <= EXACT or dp[i] <= EXACT)
        entries.append({
            "fake": fnames[i],
            "nearest_real": tnames[int(jf[i])],
            "distance": float(df[i]),
            "nearest_real_pixel": tnames[int(jp[i])],
            "pixel_distance": float(dp[i]),
            "exact_copy": exact,
            "flagged": bool(exact or df[i] <= thr_f or dp[i] <= thr_p),
            "fake_index": i,
            "real_index": int(jf[i]),
            "real_index_pixel": int(jp[i]),
        })
    progress(Progress(3, 3, "done"))
    return MemorizationReport(entries, thr_f, thr_p, percentile, reference,
                              ref_f.tolist(), ref_p.tolist(), note, n_excluded)
