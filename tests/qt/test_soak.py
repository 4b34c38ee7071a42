"""Soak (short): training with a progress signal per step while the slice viewer scrolls.

Runs :func:`benchmarks.soak.soak` for ~12 s after a warm-up and asserts that memory does not
grow (RSS from ``/proc/self/statm``, Python heap from ``tracemalloc``), no thread is left
behind (the autouse fixture checks QThreads) and the event loop stays responsive (p99 under
200 ms here; the 50 ms target is measured by ``benchmarks/bench_gui.py``). The long run is
``python benchmarks/soak.py --minutes 30``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak import soak

RSS_GROWTH_MB = 50.0
HEAP_SLOPE_KB_S = 40.0  # a Progress object kept per step would be ~50 KB/s here
P99_MS = 200.0


def test_soak_memory_threads_latency(qtbot, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = soak(12.0, warmup=3.0, sample=1.0, run_dir=tmp_path / "run",
               data_dir=shared_data / "chest_xray" / "train")
    summary = {k: v for k, v in res.items() if k != "samples"}
    assert res["steps"] >= 100 and res["progress_signals"] >= 100, summary
    assert res["slices_shown"] >= 100, summary  # the viewer really scrolled
    assert len([s for s in res["samples"] if s["t"] >= res["startup_s"] + 3.0]) >= 8, summary
    assert res["rss_growth_mb"] < RSS_GROWTH_MB, summary
    assert res["heap_slope_kb_s"] < HEAP_SLOPE_KB_S and res["heap_growth_mb"] < 2.0, summary
    assert res["p99_ms"] < P99_MS, summary
    assert res["threads_after"] <= res["threads_before"], summary
    assert (tmp_path / "run" / "checkpoints").is_dir()  # checkpoints were written meanwhile
