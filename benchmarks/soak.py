"""Soak: continuous training with progress signals while the viewer scrolls; memory and latency over time.

A real DCGAN training run (chest X-rays, 32 px, checkpoints every 200 steps) runs in a
:class:`~medgan_desktop.qt.workers.base.Worker` emitting a progress signal per step, while
a :class:`~medgan_desktop.qt.viewers.slice_view.SliceView` scrolls a 256² volume from a
QTimer. Every ``--sample`` seconds it records the resident set size (``/proc/self/statm``),
the Python heap (``tracemalloc`` current), live threads, training steps, and the event-loop
latency (how late a 10 ms QTimer tick arrives) over the interval. After the warm-up it
reports RSS growth, the heap's slope (least squares, bytes/s) and latency p50/p99.

    python benchmarks/soak.py --minutes 30 [--json soak.json]     # the long run
    python benchmarks/soak.py --minutes 1 --warmup 10             # a quick look

``tests/qt/test_soak.py`` runs the same :func:`soak` for ~30 s with loose bounds (RSS
growth < 50 MB, small heap slope, p99 < 200 ms, no leaked threads); the 50 ms p99 target
is measured by ``benchmarks/bench_gui.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process from ``/proc/self/statm``."""
    with Path("/proc/self/statm").open(encoding="ascii") as fh:
        return int(fh.read().split()[1]) * _PAGE


def _slope(ts: list[float], ys: list[float]) -> float:
    if len(ts) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(ts), np.asarray(ys, dtype=np.float64), 1)[0])


def _hist_pct(hist: Any, q: float) -> float:
    """Percentile ``q`` in ms of a 0.5 ms-bin lateness histogram."""
    n = int(hist.sum())
    if n == 0:
        return 0.0
    return float(np.searchsorted(np.cumsum(hist), q / 100 * n) / 2)


def _pump(ms: int) -> None:
    """Run the Qt event loop for ``ms`` milliseconds (no sleeping)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def soak(
    seconds: float,
    warmup: float = 5.0,
    sample: float = 1.0,
    run_dir: Path | None = None,
    on_sample: Callable[[dict[str, float]], None] | None = None,
    data_dir: Path | None = None,
    scroll_viewer: bool = True,
    trace: bool = True,
) -> dict[str, Any]:
    """Train, scroll and measure for ``warmup + seconds``; needs a QApplication.

    Args:
        seconds: measured time after the warm-up.
        warmup: time before the first counted sample (allocator/caches settle).
        sample: seconds between samples.
        run_dir: training run folder (a temp folder when None).
        on_sample: called with each sample (for printing).
        data_dir: the real image folder (``../shared/data/chest_xray/train`` by default).
        scroll_viewer: scroll the slice view (off: training alone, to isolate a growth).
        trace: measure the Python heap with tracemalloc (off: RSS without its overhead).

    Returns:
        ``samples`` (all, with ``t``), ``rss_growth_mb`` and ``heap_slope_kb_s`` over the
        post-warm-up samples, latency ``p50_ms``/``p99_ms``/``max_ms`` after the warm-up,
        ``steps``, ``progress_signals``, ``threads_before``/``threads_after``.
    """
    from PySide6.QtCore import QElapsedTimer, QTimer

    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.progress import Progress
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.data import build_dataset
    from medgan_desktop.core.training.loop import train
    from medgan_desktop.core.volume import Volume
    from medgan_desktop.qt.viewers.slice_view import SliceView
    from medgan_desktop.qt.workers.base import Worker

    images = data_dir or SHARED / "chest_xray" / "train"
    if not images.is_dir():
        raise FileNotFoundError(f"soak data missing: {images}")
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="medgan-soak-")
        run_dir = Path(tmp.name) / "run"
    threads_before = threading.active_count()
    # import what the training thread will import before tracing (imports are not leaks)
    import medgan_desktop.core.inference.sample  # noqa: F401
    from medgan_desktop.core.gan.methods.base import get_method

    get_method("dcgan")
    if trace:
        tracemalloc.start()
    data = DataConfig(path=str(images), size=32, max_images=64)
    cfg = TrainConfig(steps=10**9, batch_size=8, checkpoint_every=200, keep_checkpoints=2,
                      sample_every=0, log_every=20, device="cpu", threads=1, data=data)
    worker = Worker(train, "dcgan", MethodConfig(size=32, base_filters=8, latent_dim=32), cfg,
                    build_dataset(data, seed=0), run_dir, name="soak training", min_interval=0.0)
    state: dict[str, Any] = {"signals": 0, "step": 0, "failed": None, "done": False}

    def on_progress(p: Progress) -> None:
        state["signals"] += 1
        state["step"] = p.done

    worker.progress.connect(on_progress)
    worker.failed.connect(lambda msg, _tb: state.__setitem__("failed", msg))
    worker.done.connect(lambda: state.__setitem__("done", True))

    rng = np.random.default_rng(0)
    nk = 48
    vol = Volume(rng.normal(0, 300, size=(nk, 256, 256)).astype(np.float32),
                 spacing=(0.8, 0.8, 2.0), modality="CT", units="HU", description="soak")
    view = SliceView()
    view.resize(512, 512)
    view.show()
    view.set_volume(vol)
    k = [0]

    def scroll() -> None:
        if scroll_viewer:
            k[0] += 1
            view.set_slice(k[0] % nk)

    clock = QElapsedTimer()
    clock.start()
    # lateness in 0.5 ms bins up to 5 s: fixed memory however long the soak runs
    hist_all = np.zeros(10_001, np.int64)  # after the warm-up
    hist_recent = np.zeros(10_001, np.int64)  # since the last sample
    measuring = [False]
    last = [clock.nsecsElapsed()]
    tick_ms = 10

    def tick() -> None:
        now = clock.nsecsElapsed()
        b = min(int(max(0.0, (now - last[0]) / 1e6 - tick_ms) * 2), 10_000)
        last[0] = now
        hist_recent[b] += 1
        if measuring[0]:
            hist_all[b] += 1

    samples: list[dict[str, float]] = []

    def take_sample() -> None:
        t = clock.nsecsElapsed() / 1e9
        s = {
            "t": round(t, 2),
            "steps": float(state["step"]),
            "progress_signals": float(state["signals"]),
            "rss_mb": rss_bytes() / 2**20,
            "heap_mb": tracemalloc.get_traced_memory()[0] / 2**20 if trace else 0.0,
            "tracemalloc_mb": tracemalloc.get_tracemalloc_memory() / 2**20 if trace else 0.0,
            "blocks": float(sys.getallocatedblocks()),
            "threads": float(threading.active_count()),
            "p99_ms": _hist_pct(hist_recent, 99),
            "slices_shown": float(k[0]),
        }
        hist_recent[:] = 0
        samples.append(s)
        if on_sample is not None:
            on_sample(s)

    timers = []
    for interval, slot in ((20, scroll), (tick_ms, tick), (int(sample * 1000), take_sample)):
        timer = QTimer()
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        timers.append(timer)
    worker.start()
    for timer in timers:
        timer.start()
    try:
        # the clock of the measurement starts once training runs (start-up is not a leak)
        while state["step"] < 10 and state["failed"] is None and not state["done"]:
            if clock.nsecsElapsed() / 1e9 > 300:
                raise RuntimeError("training did not start within 300 s")
            _pump(100)
        t_start = clock.nsecsElapsed() / 1e9
        warmup += t_start
        end = warmup + seconds
        while clock.nsecsElapsed() / 1e9 < warmup and state["failed"] is None and not state["done"]:
            _pump(100)
        measuring[0] = True
        while clock.nsecsElapsed() / 1e9 < end and state["failed"] is None and not state["done"]:
            _pump(200)
    finally:
        for timer in timers:
            timer.stop()
        worker.cancel()
        while not state["done"]:
            _pump(50)
        assert worker.qthread is not None
        worker.qthread.wait(10_000)
        _pump(50)
        view.close()
        view.deleteLater()
        _pump(50)
        if trace:
            tracemalloc.stop()
        if tmp is not None:
            tmp.cleanup()
    if state["failed"]:
        raise RuntimeError(f"training failed during the soak: {state['failed']}")
    post = [s for s in samples if s["t"] >= warmup]
    head, tail = post[:3], post[-3:]
    return {
        "seconds": seconds,
        "startup_s": t_start,
        "warmup": warmup - t_start,
        "samples": samples,
        "rss_growth_mb": (np.mean([s["rss_mb"] for s in tail]) - np.mean([s["rss_mb"] for s in head]))
        if post else 0.0,
        "heap_growth_mb": (np.mean([s["heap_mb"] for s in tail]) - np.mean([s["heap_mb"] for s in head]))
        if post else 0.0,
        "heap_slope_kb_s": _slope([s["t"] for s in post], [s["heap_mb"] * 1024 for s in post]),
        "rss_slope_mb_min": _slope([s["t"] for s in post], [s["rss_mb"] for s in post]) * 60,
        "p50_ms": _hist_pct(hist_all, 50),
        "p99_ms": _hist_pct(hist_all, 99),
        "max_ms": float(np.flatnonzero(hist_all).max() / 2) if hist_all.any() else 0.0,
        "ticks": int(hist_all.sum()),
        "steps": int(state["step"]),
        "progress_signals": int(state["signals"]),
        "slices_shown": k[0],
        "threads_before": threads_before,
        "threads_after": threading.active_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Soak: training + viewer scrolling, memory/latency over time")
    ap.add_argument("--minutes", type=float, default=30.0, help="measured minutes (default 30)")
    ap.add_argument("--warmup", type=float, default=30.0, help="warm-up seconds (default 30)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--json", type=Path, help="write the result here")
    a = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(REPO))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"{'t s':>8} {'steps':>8} {'signals':>8} {'RSS MB':>8} {'heap MB':>8} {'thr':>4} {'p99 ms':>7}")

    def show(s: dict[str, float]) -> None:
        print(f"{s['t']:8.1f} {s['steps']:8.0f} {s['progress_signals']:8.0f} {s['rss_mb']:8.1f} "
              f"{s['heap_mb']:8.2f} {s['threads']:4.0f} {s['p99_ms']:7.1f}", flush=True)

    res = soak(a.minutes * 60, warmup=a.warmup, sample=a.sample, on_sample=show)
    summary = {k: v for k, v in res.items() if k != "samples"}
    print(json.dumps(summary, indent=2, default=float))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=float))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
