"""Downstream utility: does synthetic data help a classifier trained on real data?

A tiny CNN (32² grey input, ~20 k parameters) is trained on real labelled images with
and without the synthetic ones added, several times with different seeds, and scored
on a held-out *real* test set. The report gives accuracy and ROC AUC for both
conditions, the per-seed change, and Student-t confidence intervals over seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from medgan_desktop.core.metrics.features import torch_threads
from medgan_desktop.core.metrics.images import load_images
from medgan_desktop.core.metrics.stats import mean_ci, roc_auc
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import FloatArray, IntArray, JsonObject

SIZE = 32


class TinyClassifier(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * (SIZE // 4) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.c2(F.relu(self.c1(2.0 * x - 1.0))))
        logits: torch.Tensor = self.fc(torch.flatten(h, 1))
        return logits


def load_labelled(folder: Path | str, limit_per_class: int | None = None) -> tuple[NDArray[np.float32], NDArray[np.int64], list[str]]:
    """Images (N, 32, 32) and labels from ``folder/<class>/...`` (classes sorted by name)."""
    root = Path(folder)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise ValueError(f"{root} needs one sub-folder per class (at least two)")
    xs: list[NDArray[np.float32]] = []
    ys: list[int] = []
    for c, name in enumerate(classes):
        s = load_images(root / name, size=SIZE, limit=limit_per_class)
        xs.append(np.stack(s.images))
        ys.extend([c] * len(s))
    return np.concatenate(xs), np.asarray(ys, dtype=np.int64), classes


def _fit_predict(
    x: FloatArray, y: IntArray, xt: FloatArray, n_classes: int, seed: int, steps: int,
    batch: int = 32,
) -> NDArray[np.float64]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = TinyClassifier(n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xtr = torch.from_numpy(np.asarray(x, np.float32))[:, None]
    ytr = torch.from_numpy(np.asarray(y, np.int64))
    for _ in range(steps):
        idx = torch.randint(0, len(xtr), (min(batch, len(xtr)),), generator=gen)
        loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.inference_mode():
        p = torch.softmax(net(torch.from_numpy(np.asarray(xt, np.float32))[:, None]), 1)
    return p.double().numpy()


def _auc(prob: NDArray[np.float64], y: IntArray, n_classes: int) -> float:
    if n_classes == 2:
        return roc_auc(prob[:, 1], y == 1)
    vals = [roc_auc(prob[:, c], y == c) for c in range(n_classes)]
    return float(np.nanmean(vals))


@dataclass
class UtilityReport:
    """Per-seed and summarised accuracy/AUC with and without synthetic data."""

    seeds: list[int]
    real_accuracy: list[float]
    real_auc: list[float]
    mixed_accuracy: list[float]
    mixed_auc: list[float]
    n_train_real: int
    n_train_synthetic: int
    n_test: int
    summary: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return asdict(self)


def utility_study(
    train_x: FloatArray,
    train_y: IntArray,
    synth_x: FloatArray,
    synth_y: IntArray,
    test_x: FloatArray,
    test_y: IntArray,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    steps: int = 300,
    threads: int | None = 1,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> UtilityReport:
    """Train on real vs real+synthetic, score on the real test set, for each seed.

    Images are ``(N, 32, 32)`` grey in [0, 1] (see :func:`load_labelled`); labels are
    class indices shared by all three sets. ``threads`` torch threads are used (one is
    fastest for this tiny network).
    """
    n_classes = int(max(train_y.max(), test_y.max(), synth_y.max() if len(synth_y) else 0)) + 1
    mixed_x = np.concatenate([train_x, synth_x]) if len(synth_x) else train_x
    mixed_y = np.concatenate([train_y, synth_y]) if len(synth_y) else train_y
    ra: list[float] = []
    rauc: list[float] = []
    ma: list[float] = []
    mauc: list[float] = []
    total = 2 * len(seeds)
    for n, seed in enumerate(seeds):
        for cond, (x, y) in enumerate(((train_x, train_y), (mixed_x, mixed_y))):
            if cancel is not None:
                cancel.check()
            with torch_threads(threads):
                prob = _fit_predict(x, y, test_x, n_classes, seed, steps)
            acc = float((prob.argmax(1) == test_y).mean())
            auc = _auc(prob, test_y, n_classes)
            (ra if cond == 0 else ma).append(acc)
            (rauc if cond == 0 else mauc).append(auc)
            progress(Progress(2 * n + cond + 1, total, f"seed {seed}: {'real' if cond == 0 else 'real+synthetic'}"))
    d_acc = np.asarray(ma) - np.asarray(ra)
    d_auc = np.asarray(mauc) - np.asarray(rauc)
    summary = {
        "real_accuracy": list(mean_ci(ra)),
        "mixed_accuracy": list(mean_ci(ma)),
        "delta_accuracy": list(mean_ci(d_acc)),
        "real_auc": list(mean_ci(rauc)),
        "mixed_auc": list(mean_ci(mauc)),
        "delta_auc": list(mean_ci(d_auc)),
    }
    return UtilityReport(list(seeds), ra, rauc, ma, mauc, len(train_x), len(synth_x), len(test_x),
                         summary)
