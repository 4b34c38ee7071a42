"""Live loss curves of a training run (both Train tabs), from step events or metrics.jsonl."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg

from medgan_desktop.core.progress import StepEvent

_COLOURS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#636363", "#d6616b", "#8c6d31")


class LossPlot(pg.PlotWidget):  # type: ignore[misc]  # pyqtgraph is untyped
    """Curves of the losses named in ``keys`` (all when None), redrawn at most 4 times a second.

    Args:
        keys: the losses to draw.
        log_y: logarithmic y axis (pix2pix's 100 x L1 would flatten the other curves).
    """

    def __init__(self, keys: tuple[str, ...] | None = None, log_y: bool = False,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.keys = keys
        self.log_y = log_y
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss (log scale)" if log_y else "loss")
        if log_y:
            self.setLogMode(x=False, y=True)
        self.addLegend()
        self.setMinimumHeight(180)
        self.setMaximumHeight(270)
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self._items: dict[str, Any] = {}
        self._last = 0.0

    def clear_curves(self) -> None:
        self.curves = {}
        for item in self._items.values():
            self.removeItem(item)
        self._items = {}

    def add(self, ev: StepEvent) -> None:
        """Record one step; redraw when due (always at the last step)."""
        for k, v in ev.losses.items():
            self.curves.setdefault(str(k), []).append((ev.step, float(v)))
        now = time.monotonic()
        if now - self._last > 0.25 or ev.step >= ev.total:
            self._last = now
            self.redraw()

    def load_metrics(self, path: Path) -> None:
        """The curves of a run's ``metrics.jsonl`` (a resumed or selected run)."""
        if not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            for k, v in (rec.get("losses") or {}).items():
                self.curves.setdefault(k, []).append((int(rec["step"]), float(v)))
        self.redraw()

    def redraw(self) -> None:
        for i, (k, pts) in enumerate(sorted(self.curves.items())):
            if self.keys is not None and k not in self.keys:
                continue
            xs = np.fromiter((s for s, _ in pts), dtype=np.float64)
            ys = np.fromiter((v for _, v in pts), dtype=np.float64)
            if self.log_y:
                ys = np.maximum(ys, 1e-6)
            item = self._items.get(k)
            if item is None:
                item = self.plot(name=k, pen=pg.mkPen(_COLOURS[i % len(_COLOURS)], width=1.5))
                self._items[k] = item
            item.setData(xs, ys)
