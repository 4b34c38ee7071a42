"""Classifier two-sample test (C2ST): can a small CNN tell two image sets apart?

A convolutional classifier is trained from scratch, in ``k`` stratified folds, to tell
set A (real images) from set B (synthetic ones); each image is scored by the classifier
that did not see it. An accuracy of 0.5 means the sets cannot be told apart; 1.0 means
every image is told apart. The test needs no pretrained weights, which makes it the
strictest of the common distribution checks (Lopez-Paz and Oquab, "Revisiting Classifier
Two-Sample Tests", ICLR 2017).

The report carries the out-of-fold accuracy (mean and spread over the folds), the AUC of
the out-of-fold scores, and a one-sided binomial p-value against chance. Its *null* is the
same test between two sets of real images (training images against held-out ones, or two
random halves of the real set): a generator cannot be expected to score below that floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.stats import binomtest
from torch import nn

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import JsonObject

#: The classifier's input size (images are resized to this square).
DEFAULT_SIZE = 64
DEFAULT_FOLDS = 5
DEFAULT_EPOCHS = 15


class C2stError(ValueError):
    """Too few images for the test."""


@dataclass(frozen=True)
class C2stReport:
    """The outcome of one classifier two-sample test.

    Attributes:
        accuracy: out-of-fold accuracy (0.5: indistinguishable).
        accuracy_std: its spread over the folds.
        auc: AUC of the out-of-fold scores (0.5: indistinguishable).
        p_value: one-sided binomial p-value of ``accuracy`` against chance.
        n_per_set: images per set (the larger set is subsampled to the smaller).
        folds, epochs, size: the test's settings.
        set_a, set_b: what was compared (for the report).
    """

    accuracy: float
    accuracy_std: float
    auc: float
    p_value: float
    n_per_set: int
    folds: int
    epochs: int
    size: int
    set_a: str = "real"
    set_b: str = "synthetic"

    def to_dict(self) -> JsonObject:
        return asdict(self)

    def describe(self) -> str:
        """One sentence for logs and the CLI."""
        return (f"C2ST {self.set_a} vs {self.set_b}: accuracy {self.accuracy:.3f} ± {self.accuracy_std:.3f}, "
                f"AUC {self.auc:.3f}, p = {self.p_value:.2g} ({self.n_per_set} per set, {self.folds} folds)")


def _classifier(size: int) -> nn.Module:
    layers: list[nn.Module] = []
    ch_in, ch = 1, 16
    side = size
    while side > 4 and ch <= 128:
        layers += [nn.Conv2d(ch_in, ch, 3, stride=2, padding=1), nn.GroupNorm(4, ch), nn.LeakyReLU(0.2)]
        ch_in, ch, side = ch, min(ch * 2, 128), side // 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(ch_in, 1)]
    return nn.Sequential(*layers)


def auc_score(scores: NDArray[np.float64], labels: NDArray[np.int64]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def _resize(images: NDArray[np.float32], size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    if t.shape[-1] != size or t.shape[-2] != size:
        t = nn.functional.interpolate(t, size=(size, size), mode="area")
    return t * 2.0 - 1.0


def c2st(
    a: NDArray[np.float32],
    b: NDArray[np.float32],
    folds: int = DEFAULT_FOLDS,
    epochs: int = DEFAULT_EPOCHS,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    set_a: str = "real",
    set_b: str = "synthetic",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> C2stReport:
    """Classifier two-sample test between two grey image stacks ``(N, H, W)`` in [0, 1].

    The larger set is subsampled (seeded) to the smaller one's size, so chance is 0.5.

    Raises:
        C2stError: fewer than ``2 * folds`` images in a set.
    """
    if folds < 2:
        raise C2stError("the test needs at least two folds")
    n = min(len(a), len(b))
    if n < 2 * folds:
        raise C2stError(f"the classifier two-sample test needs at least {2 * folds} images per set "
                        f"({len(a)} {set_a}, {len(b)} {set_b})")
    rng = np.random.default_rng(seed)
    ia = rng.permutation(len(a))[:n]
    ib = rng.permutation(len(b))[:n]
    x = torch.cat([_resize(a[ia], size), _resize(b[ib], size)])
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    # stratified folds: each fold holds the same share of both sets
    fold_of = np.empty(2 * n, dtype=np.int64)
    fold_of[:n] = rng.permutation(np.arange(n) % folds)
    fold_of[n:] = rng.permutation(np.arange(n) % folds)
    scores = np.zeros(2 * n, dtype=np.float64)
    fold_acc: list[float] = []
    total = folds * epochs
    gen = torch.Generator().manual_seed(seed)
    for k in range(folds):
        torch.manual_seed(seed * 1000 + k)
        test = torch.from_numpy(fold_of == k)
        xtr, ytr = x[~test], y[~test]
        model = _classifier(size)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        loss_fn = nn.BCEWithLogitsLoss()
        batch = 64
        for epoch in range(epochs):
            if cancel is not None:
                cancel.check()
            model.train()
            perm = torch.randperm(len(xtr), generator=gen)
            for s in range(0, len(perm), batch):
                idx = perm[s:s + batch]
                if len(idx) < 2:
                    continue
                xb = xtr[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5  # the same flips for both sets
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb).squeeze(1), ytr[idx])
                loss.backward()
                opt.step()
            progress(Progress(k * epochs + epoch + 1, total, f"classifier fold {k + 1}/{folds}"))
        model.eval()
        with torch.no_grad():
            s_test = torch.cat([model(x[test][i:i + 256]).squeeze(1) for i in range(0, int(test.sum()), 256)])
        scores[test.numpy()] = s_test.double().numpy()
        yk = y[test].numpy()
        fold_acc.append(float(np.mean((s_test.numpy() > 0) == (yk > 0.5))))
    labels = y.numpy().astype(np.int64)
    correct = int(np.sum((scores > 0) == (labels == 1)))
    p = float(binomtest(correct, 2 * n, 0.5, alternative="greater").pvalue)
    return C2stReport(
        accuracy=correct / (2 * n), accuracy_std=float(np.std(fold_acc)), auc=auc_score(scores, labels),
        p_value=p, n_per_set=n, folds=folds, epochs=epochs, size=size, set_a=set_a, set_b=set_b,
    )


def real_vs_real(
    real: NDArray[np.float32],
    other_real: NDArray[np.float32] | None = None,
    other_name: str = "training",
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> C2stReport:
    """The test's floor: real images against other real images (``other_real``, e.g. the
    training images), or two random halves of ``real`` when there is no second set."""
    if other_real is not None and len(other_real) >= 2:
        return c2st(other_real, real, size=size, seed=seed, set_a=f"real ({other_name})",
                    set_b="real (held out)", progress=progress, cancel=cancel)
    perm = np.random.default_rng(seed + 1).permutation(len(real))
    half = len(real) // 2
    return c2st(real[perm[:half]], real[perm[half:2 * half]], size=size, seed=seed,
                set_a="real (half A)", set_b="real (half B)", progress=progress, cancel=cancel)
