"""Scrolling speed of the 2D slice viewer on a 512x512 CT-like volume.

Measures slices per second for ``SliceView.set_slice`` including the Qt repaint
(``processEvents``), against a reference that only does the raw numpy windowing per
slice (the floor any viewer must pay). Target: >= 30 slices/s.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SLICES_PER_S = 30.0


def _volume(n_slices: int) -> Any:
    from medgan_desktop.core.volume import Volume

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-256:256, -256:256]
    body = (xx**2 / 200.0**2 + yy**2 / 150.0**2) < 1.0
    base = np.where(body, 40.0, -1000.0).astype(np.float32)
    arr = np.empty((n_slices, 512, 512), np.float32)
    for k in range(n_slices):
        arr[k] = base + rng.normal(0, 20, size=(512, 512)).astype(np.float32)
    return Volume(arr, spacing=(0.7, 0.7, 1.0), modality="CT", units="HU",
                  description="benchmark phantom")


def _reference(arr: np.ndarray, width: float, level: float) -> float:
    """Slices/s of plain numpy windowing (clip + scale + uint8) per slice."""
    lo = level - width / 2
    t0 = time.perf_counter()
    for k in range(arr.shape[0]):
        out = np.clip((arr[k] - lo) * (255.0 / width), 0, 255).astype(np.uint8)
        out.sum()  # touch the result
    return arr.shape[0] / (time.perf_counter() - t0)


def run(quick: bool = False) -> dict[str, Any]:
    """Time scrolling through the volume; returns slices/s, the reference and their ratio."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from medgan_desktop.qt.viewers.slice_view import SliceView

    app = QApplication.instance() or QApplication([])
    n = 40 if quick else 150
    vol = _volume(n)
    view = SliceView()
    view.resize(800, 800)
    view.set_volume(vol)
    view.show()
    app.processEvents()
    view.set_slice(0)
    app.processEvents()
    passes = 1 if quick else 2
    t0 = time.perf_counter()
    for _ in range(passes):
        for k in range(n):
            view.set_slice(k)
            view.graphics.viewport().repaint()  # force the redraw now, not coalesced
            app.processEvents()
    viewer = passes * n / (time.perf_counter() - t0)
    width, level = view.window_level()
    reference = _reference(vol.array, width, level)
    view.close()
    result = {
        "name": "viewer_scroll_512",
        "slices": passes * n,
        "viewer_slices_per_s": round(viewer, 1),
        "reference_numpy_slices_per_s": round(reference, 1),
        "ratio_viewer_vs_numpy": round(viewer / reference, 3),
        "target_slices_per_s": TARGET_SLICES_PER_S,
        "meets_target": viewer >= TARGET_SLICES_PER_S,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="40 slices, one pass")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    res = run(quick=args.quick)
    print(f"viewer scrolling: {res['viewer_slices_per_s']:.1f} slices/s "
          f"(target >= {TARGET_SLICES_PER_S:.0f}: {'met' if res['meets_target'] else 'NOT met'})")
    print(f"numpy windowing only: {res['reference_numpy_slices_per_s']:.1f} slices/s; "
          f"ratio viewer/numpy = {res['ratio_viewer_vs_numpy']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
