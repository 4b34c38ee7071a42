"""The synthesis-quality benchmark's split and verdict logic (the measured run is in
``benchmarks/results/synthesis_quality.md``; this only checks the bookkeeping)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _bench() -> Any:
    path = REPO / "benchmarks" / "bench_synthesis_quality.py"
    spec = importlib.util.spec_from_file_location("bench_sq", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_split_is_stratified_disjoint_and_matches_the_extractor(shared_data: Path) -> None:
    b = _bench()
    train, test = b.split_files(shared_data / "chest_xray" / "train")
    assert not {f for f, _ in train} & {f for f, _ in test}
    assert len(train) + len(test) == 5216
    # 15 % of each class held out, as the shipped extractor's run.json says
    assert sum(1 for _, c in test if c == 0) == round(1341 * 0.15)
    assert sum(1 for _, c in test if c == 1) == round(3875 * 0.15)


def _row(fd: float, kid: float) -> dict[str, Any]:
    return {"fd": fd, "kid": kid}


def test_recommendation_picks_best_unconditional_and_reports_margins() -> None:
    b = _bench()
    rows = {v: _row(100.0, 1.0) for v in b.VARIANTS}
    rows["dcgan_sd"] = _row(50.0, 0.5)
    rows["cgan_sd"] = _row(10.0, 0.1)  # conditional: needs labels, not a default for any folder
    small = {v: dict(r) for v, r in rows.items()}
    small["dcgan_sd"] = _row(80.0, 0.9)
    res: dict[str, Any] = {"configs": {"all": rows, "n500": small}}
    for c in res["configs"].values():
        b._compare(c)
    rec = b._recommend(res)
    assert rec["variant"] == "dcgan_sd"
    assert rec["margin"]["all"]["fd_vs_dcgan"] == 2.0
    assert rec["margin"]["n500"]["fd_vs_dcgan"] == 1.25
    assert rec["beats_dcgan_on_all"] is True
    small["dcgan_sd"] = _row(120.0, 1.2)
    b._compare(small)
    assert b._recommend(res)["beats_dcgan_on_all"] is False
