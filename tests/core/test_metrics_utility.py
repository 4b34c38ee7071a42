"""Downstream utility: helpful vs harmful 'synthetic' data moves the held-out accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgan_desktop.core.metrics.stats import mean_ci, roc_auc
from medgan_desktop.core.metrics.utility import load_labelled, utility_study


def test_roc_auc_and_ci():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi


def test_mislabelled_synthetic_data_hurts(shared_data: Path):
    x, y, classes = load_labelled(shared_data / "chest_xray" / "train", limit_per_class=120)
    assert classes == ["NORMAL", "PNEUMONIA"] and x.shape[1:] == (32, 32)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    tr, syn, te = idx[:60], idx[60:160], idx[160:]
    rep = utility_study(x[tr], y[tr], x[syn], 1 - y[syn], x[te], y[te], seeds=(0, 1), steps=150)
    s = rep.summary
    assert s["real_accuracy"][0] > 0.6  # the tiny classifier learns from real data
    assert s["delta_accuracy"][0] < 0 and s["delta_auc"][0] < 0  # wrong labels hurt
    assert len(rep.real_auc) == 2 and rep.n_train_synthetic == 100
    good = utility_study(x[tr], y[tr], x[syn], y[syn], x[te], y[te], seeds=(0, 1), steps=150)
    assert good.summary["mixed_auc"][0] > s["mixed_auc"][0] + 0.1
