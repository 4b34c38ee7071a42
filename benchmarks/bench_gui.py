"""GUI responsiveness: event-loop latency while training runs and while scrolling.

A 5 ms QTimer records how late each tick arrives. The reference is the same
measurement on an idle event loop in the same run; the scenarios are (a) a real
DCGAN training run in a Worker thread (the production path: core loop ->
progress callback -> Qt signal), and (b) scrolling a 512² volume in the slice
viewer at full speed. Target: p99 latency under 50 ms.

    python benchmarks/bench_gui.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _latency(app: Any, seconds: float, during: Any = None) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QTimer

    ticks: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]
    interval_ms = 5

    def on_tick() -> None:
        now = clock.nsecsElapsed()
        ticks.append((now - last[0]) / 1e6 - interval_ms)
        last[0] = now
        if during is not None:
            during()

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(on_tick)
    timer.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    lat = np.maximum(np.asarray(ticks[1:] or [0.0]), 0.0)
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "ticks": len(lat),
    }


def _training_worker(run_dir: Path, steps: int) -> Any:
    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.data import build_dataset
    from medgan_desktop.core.training.loop import train
    from medgan_desktop.qt.workers.base import Worker

    data = DataConfig(path=str(SHARED / "chest_xray" / "train"), size=32, max_images=128,
                      label_from_subfolders=False)
    cfg = TrainConfig(steps=steps, batch_size=16, checkpoint_every=10_000, sample_every=0,
                      log_every=10, device="cpu", threads=1, data=data)
    dataset = build_dataset(data, seed=0)
    return Worker(train, "dcgan", MethodConfig(size=32, base_filters=32), cfg, dataset,
                  run_dir, name="bench training", min_interval=0.0)


def run(quick: bool = False) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from medgan_desktop.core.volume import Volume
    from medgan_desktop.qt.viewers.slice_view import SliceView

    if not (SHARED / "chest_xray" / "train").is_dir():
        raise FileNotFoundError(f"benchmark data missing: {SHARED}")
    app = QApplication.instance() or QApplication([])
    seconds = 4.0 if quick else 10.0
    out: dict[str, Any] = {"target_p99_ms": 50.0}
    out["idle_reference"] = _latency(app, seconds)

    with tempfile.TemporaryDirectory() as tmp:
        worker = _training_worker(Path(tmp) / "run", steps=100_000)
        progress_events = [0]
        worker.progress.connect(lambda _p: progress_events.__setitem__(0, progress_events[0] + 1))
        worker.start()
        try:
            res = _latency(app, seconds)
        finally:
            worker.cancel()
            assert worker.qthread is not None
            worker.qthread.wait(60_000)
            app.processEvents()
        res["progress_signals"] = progress_events[0]
        out["while_training"] = res

    rng = np.random.default_rng(0)
    nk = 40 if quick else 120
    vol = Volume(array=(rng.normal(0, 300, size=(nk, 512, 512))).astype(np.float32),
                 spacing=(0.5, 0.5, 2.0), modality="CT", units="HU", description="bench")
    view = SliceView()
    view.resize(800, 800)
    view.show()
    view.set_volume(vol)
    k = [0]

    def scroll() -> None:
        k[0] = (k[0] + 1) % nk
        view.set_slice(k[0])

    out["while_scrolling"] = _latency(app, seconds, during=scroll)
    out["while_scrolling"]["slices_shown"] = k[0]
    for key in ("while_training", "while_scrolling"):
        out[key]["p99_vs_idle"] = out[key]["p99_ms"] / max(out["idle_reference"]["p99_ms"], 0.1)
        out[key]["meets_target"] = out[key]["p99_ms"] < 50.0
    view.close()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO))
    result = run(quick=a.quick)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text)
