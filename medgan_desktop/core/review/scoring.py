"""Scoring a reader study: can experts tell synthetic images from real ones?

"Positive" means *synthetic*: sensitivity is the fraction of synthetic images called
synthetic, specificity the fraction of real images called real. The ROC AUC uses a
suspicion score built from each answer and its confidence (``+c`` for "synthetic",
``−c`` for "real", so a confident "real" is the least suspicious), computed with the
Mann–Whitney statistic. An AUC near 0.5 means the readers could not tell.
Agreement between readers on the same items: Cohen's kappa (pairs) and Fleiss'
kappa (all readers, items every reader answered).
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medgan_desktop.core.atomic import atomic_output_file
from medgan_desktop.core.metrics.stats import roc_auc
from medgan_desktop.core.review.session import Rating, Truth
from medgan_desktop.core.types import IntArray, JsonObject


@dataclass(frozen=True)
class ReaderScore:
    reader: str
    n: int
    accuracy: float
    sensitivity: float  # synthetic called synthetic
    specificity: float  # real called real
    auc: float
    mean_quality_real: float
    mean_quality_synthetic: float


def suspicion(r: Rating) -> float:
    """Signed confidence that the image is synthetic."""
    return float(r.confidence if r.answer == Truth.SYNTHETIC else -r.confidence)


def _nanmean(v: Sequence[float]) -> float:
    return float(np.mean(v)) if len(v) else float("nan")


def score_ratings(ratings: Sequence[Rating], reader: str = "all") -> ReaderScore:
    """Accuracy, sensitivity, specificity, AUC and mean quality of a set of answers."""
    n = len(ratings)
    if n == 0:
        nan = float("nan")
        return ReaderScore(reader, 0, nan, nan, nan, nan, nan, nan)
    syn = [r for r in ratings if r.truth == Truth.SYNTHETIC]
    real = [r for r in ratings if r.truth == Truth.REAL]
    correct = sum(r.answer == r.truth for r in ratings)
    sens = _nanmean([float(r.answer == Truth.SYNTHETIC) for r in syn])
    spec = _nanmean([float(r.answer == Truth.REAL) for r in real])
    auc = roc_auc([suspicion(r) for r in ratings], [r.truth == Truth.SYNTHETIC for r in ratings])
    q_real = _nanmean([float(r.quality) for r in real if r.quality is not None])
    q_syn = _nanmean([float(r.quality) for r in syn if r.quality is not None])
    return ReaderScore(reader, n, correct / n, sens, spec, auc, q_real, q_syn)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters' labels on the same items (1 = perfect agreement)."""
    if len(a) != len(b) or not a:
        raise ValueError("Cohen's kappa needs two equally long, non-empty label lists")
    cats = sorted(set(a) | set(b), key=str)
    po = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    pe = sum((list(a).count(c) / len(a)) * (list(b).count(c) / len(b)) for c in cats)
    if pe == 1.0:
        return 1.0 if po == 1.0 else float("nan")
    return (po - pe) / (1.0 - pe)


def fleiss_kappa(counts: IntArray | Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa from an ``(items, categories)`` table of rating counts.

    Every item must have the same number of raters (at least two).
    """
    m = np.asarray(counts, dtype=np.float64)
    n_raters = m.sum(axis=1)
    if m.ndim != 2 or len(m) == 0 or not np.allclose(n_raters, n_raters[0]) or n_raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters per item")
    n = n_raters[0]
    p_j = m.sum(axis=0) / m.sum()
    p_i = ((m * m).sum(axis=1) - n) / (n * (n - 1))
    p_bar, pe = float(p_i.mean()), float((p_j**2).sum())
    if pe == 1.0:
        return 1.0 if p_bar == 1.0 else float("nan")
    return (p_bar - pe) / (1.0 - pe)


@dataclass
class StudyResults:
    """Scores per reader and pooled, agreement, and a per-image summary."""

    readers: list[ReaderScore]
    pooled: ReaderScore
    cohen: dict[str, float]  # "readerA|readerB" -> kappa
    fleiss: float | None
    per_image: list[JsonObject]

    def to_dict(self) -> JsonObject:
        return {
            "readers": [asdict(r) for r in self.readers],
            "pooled": asdict(self.pooled),
            "cohen_kappa": self.cohen,
            "fleiss_kappa": self.fleiss,
            "per_image": self.per_image,
        }


def score_session(ratings: Sequence[Rating], truths: dict[str, tuple[Truth, str]] | None = None) -> StudyResults:
    """Full results of a session from its ratings (``ReviewStore.ratings``)."""
    by_reader: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_reader[r.reader].append(r)
    readers = [score_ratings(v, k) for k, v in sorted(by_reader.items())]
    answers = {k: {r.item_id: r.answer for r in v} for k, v in by_reader.items()}
    cohen: dict[str, float] = {}
    for a, b in itertools.combinations(sorted(answers), 2):
        common = sorted(set(answers[a]) & set(answers[b]))
        if common:
            cohen[f"{a}|{b}"] = cohen_kappa([answers[a][i] for i in common],
                                            [answers[b][i] for i in common])
    fleiss: float | None = None
    if len(answers) >= 2:
        common_all = set.intersection(*(set(v) for v in answers.values()))
        if common_all:
            table = [[sum(answers[rd][i] == c for rd in answers) for c in (Truth.REAL, Truth.SYNTHETIC)]
                     for i in sorted(common_all)]
            fleiss = fleiss_kappa(table)
    by_item: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_item[r.item_id].append(r)
    items = dict(truths or {})
    for r in ratings:
        items.setdefault(r.item_id, (r.truth, r.source))
    per_image = []
    for item_id, (truth, source) in sorted(items.items()):
        rs = by_item.get(item_id, [])
        qs = [r.quality for r in rs if r.quality is not None]
        per_image.append({
            "item_id": item_id,
            "truth": str(truth),
            "source": source,
            "n_ratings": len(rs),
            "called_synthetic": _nanmean([float(r.answer == Truth.SYNTHETIC) for r in rs]),
            "accuracy": _nanmean([float(r.answer == r.truth) for r in rs]),
            "mean_suspicion": _nanmean([suspicion(r) for r in rs]),
            "mean_quality": _nanmean([float(q) for q in qs]),
        })
    return StudyResults(readers, score_ratings(ratings), cohen, fleiss, per_image)


def write_ratings_csv(ratings: Sequence[Rating], path: Path | str) -> Path:
    """One row per answer, with the truth."""
    out = Path(path)
    with atomic_output_file(out, "the ratings table") as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "reader", "truth", "answer", "correct", "confidence", "quality",
                    "comment", "source", "answered_at"])
        for r in ratings:
            w.writerow([r.item_id, r.reader, r.truth, r.answer, int(r.answer == r.truth),
                        r.confidence, "" if r.quality is None else r.quality, r.comment,
                        r.source, r.answered_at])
    return out


def write_summary_csv(results: StudyResults, path: Path | str) -> Path:
    """Per-image summary rows followed by nothing else (one table, easy to load)."""
    out = Path(path)
    cols = ["item_id", "truth", "source", "n_ratings", "called_synthetic", "accuracy",
            "mean_suspicion", "mean_quality"]
    with atomic_output_file(out, "the per-image table") as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for row in results.per_image:
            w.writerow(row)
    return out
