"""Drive the real application on a real X display and record what the X server shows.

Run by ``tests/qt/test_real_display.py`` as ``python tests/qt/display_driver.py OUT SCENARIO
DATA`` inside its own Xvfb (DISPLAY set, Qt's xcb platform, Mesa GL): keys and mouse go
through the X server with ``xdotool``, and screen shots are grabbed from the root window
with ImageMagick's ``import`` (what a user sees, not ``QWidget.grab()``). The driver writes
``OUT/report.json`` (geometry of panes, docks and tree columns at each step) and
``OUT/<step>.png``; the test asserts on both.

Scenarios: ``full`` walks 2D, MPR, 3D (rotate, MIP), Compare with the SYNTHETIC banner,
Fusion and back, and Ctrl+1..6; ``layout`` only opens a series and records the layout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSettings, QTimer
from PySide6.QtWidgets import QApplication, QWidget

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from medgan_desktop.core.config import Settings  # noqa: E402
from medgan_desktop.qt.context import AppContext  # noqa: E402
from medgan_desktop.qt.main_window import PANELS, MainWindow  # noqa: E402
from medgan_desktop.qt.theme import apply_theme  # noqa: E402


class Driver:
    def __init__(self, out: Path, data: Path) -> None:
        self.out = out
        self.data = data
        self.report: dict[str, Any] = {"steps": {}, "errors": []}
        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        self.report["platform"] = self.app.platformName()
        settings = Settings.default()
        settings.paths.ensure()
        apply_theme(self.app, "dark", settings.paths.resources_dir)
        self.context = AppContext(settings)
        qs = QSettings(str(out / "settings.ini"), QSettings.Format.IniFormat)
        self.window = MainWindow(self.context, qs)

    # -- plumbing -------------------------------------------------------------------------
    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def wait(self, cond: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.app.processEvents()
            if cond():
                return
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def idle(self, timeout: float = 120.0) -> None:
        self.wait(lambda: not self.context.workers.running(), timeout, "background work")
        self.pump(0.3)

    def xdo(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], check=True, timeout=20)
        self.pump(0.6)

    def key(self, keys: str) -> None:
        self.focus()
        self.xdo("key", "--clearmodifiers", keys)

    def focus(self) -> None:
        self.xdo("windowfocus", "--sync", str(int(self.window.winId())))

    def click(self, widget: QWidget, button: int = 1) -> None:
        c = widget.mapToGlobal(QPoint(widget.width() // 2, widget.height() // 2))
        self.xdo("mousemove", "--sync", str(c.x()), str(c.y()))
        self.xdo("click", str(button))

    def drag(self, widget: QWidget, dx: int, dy: int) -> None:
        c = widget.mapToGlobal(QPoint(widget.width() // 2, widget.height() // 2))
        self.xdo("mousemove", "--sync", str(c.x()), str(c.y()))
        self.xdo("mousedown", "1")
        for n in range(1, 11):
            self.xdo("mousemove", "--sync", str(c.x() + dx * n // 10), str(c.y() + dy * n // 10))
        self.xdo("mouseup", "1")

    def shot(self, step: str) -> None:
        self.pump(0.8)
        path = self.out / f"{step}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=60)
        self.report["steps"][step] = self.state()

    @staticmethod
    def rect(widget: QWidget | None) -> list[int] | None:
        if widget is None or not widget.isVisible():
            return None
        p = widget.mapToGlobal(QPoint(0, 0))
        return [p.x(), p.y(), widget.width(), widget.height()]

    # -- what is on the screen -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        w = self.window
        viewer = w.viewer
        docks = {k: {"rect": self.rect(d), "visible": d.isVisible(),
                     "on_top": d.isVisible() and not d.visibleRegion().isEmpty(),
                     "min_width": d.minimumSizeHint().width()}
                 for k, d in w.docks.items()}
        for k, d in w.docks.items():
            area = d.widget()
            panel = w.panels[k]
            docks[k]["panel_width"] = panel.width()
            docks[k]["viewport_width"] = area.viewport().width() if hasattr(area, "viewport") else 0
            docks[k]["panel_min_width"] = panel.minimumSizeHint().width()
            docks[k]["focus_inside"] = bool(self.app.focusWidget() is not None
                                            and (panel is self.app.focusWidget()
                                                 or panel.isAncestorOf(self.app.focusWidget())))
        mode = viewer.mode()
        panes: dict[str, Any] = {"viewer": self.rect(viewer.tabs.currentWidget())}
        if mode == "2D":
            panes["image"] = self.rect(viewer.slice_view.graphics)
        elif mode == "MPR":
            panes["mpr"] = {a.value: self.rect(v.graphics) for a, v in viewer.mpr_view.views.items()}
            panes["mpr_fitted"] = {a.value: self._fitted(v) for a, v in viewer.mpr_view.views.items()}
        elif mode == "3D" and viewer.volume_view is not None:
            panes["image"] = self.rect(viewer.volume_view.display)
            panes["error"] = viewer.volume_view.error
        elif mode == "Compare":
            cv = viewer.compare_view
            panes["compare"] = [self.rect(v.graphics) for v in cv.views]
            panes["compare_mode"] = str(cv.mode())
            panes["banners"] = [v.synthetic_banner_visible() for v in cv.views]
            panes["image"] = self.rect(cv.current_widget())
        tree = w.panels["browser"].tree  # type: ignore[attr-defined]
        header = tree.header()
        sections = [header.sectionSize(c) for c in range(tree.columnCount())]
        wanted = [tree.sizeHintForColumn(c) for c in range(tree.columnCount())]
        return {
            "mode": mode,
            "window": self.rect(w),
            "screen": [w.screen().availableGeometry().width(), w.screen().availableGeometry().height()],
            "docks": docks,
            "panes": panes,
            "tree": {"sections": sections, "wanted": wanted,
                     "viewport": tree.viewport().width(),
                     "h_scroll_max": tree.horizontalScrollBar().maximum(),
                     "names": [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]},
        }

    @staticmethod
    def _fitted(view: Any) -> bool:
        m = view.mapping()
        if m is None:
            return False
        (x0, x1), (y0, y1) = view.vb.viewRange()
        w, h = m.n_cols * m.col_spacing, m.n_rows * m.row_spacing
        inside = x0 <= 1e-3 * w and x1 >= w * (1 - 1e-3) and y0 <= 1e-3 * h and y1 >= h * (1 - 1e-3)
        fills = max(w / (x1 - x0), h / (y1 - y0)) > 0.9
        return bool(inside and fills)

    # -- scenarios ------------------------------------------------------------------------------
    def open_series(self) -> None:
        w = self.window
        w.show()
        self.wait(lambda: w.isVisible() and w.windowHandle() is not None and w.windowHandle().isExposed(),
                  30, "the window to show")
        self.pump(0.5)
        w.open_path(self.data / "mridir_phantom" / "MR_T2_DICOM")
        self.wait(lambda: w.viewer.current_volume() is not None, 180, "the MR series to open")
        self.idle()

    def layout(self) -> None:
        self.open_series()
        self.key("F6")
        self.shot("layout_mpr")

    def full(self) -> None:
        from medgan_desktop.core.io import open_volume

        self.open_series()
        w = self.window
        viewer = w.viewer
        self.key("F5")
        self.shot("2d")
        self.key("F6")
        self.shot("mpr")
        self.key("F8")
        self.wait(lambda: viewer.volume_view is not None, 30, "the 3D view")
        self.pump(4.0)
        self.shot("3d")
        self.drag(viewer.volume_view.display, 120, 40)
        self.pump(2.0)
        self.shot("3d_rotated")
        viewer.volume_view.preset_combo.setCurrentText("MIP")
        self.pump(3.0)
        self.shot("3d_mip")
        viewer.volume_view.crop_hi.setValue(50)  # keep half the volume along the first axis
        self.pump(3.0)
        self.shot("3d_crop")

        mr = viewer.current_volume()
        ct = open_volume(self.data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz")
        synth = dataclasses.replace(ct, synthetic=True, modality="CT", description="synthetic CT")
        viewer.show_comparison([mr, synth, ct], ["MR", "synthetic CT", "CT"])
        self.idle()
        self.key("F7")
        self.shot("compare")
        before = {k: d.width() for k, d in w.docks.items() if d.isVisible()}
        self.click(viewer.compare_view.mode_buttons[_mode("FUSION")])
        self.shot("fusion")
        during = {k: d.width() for k, d in w.docks.items() if d.isVisible()}
        self.click(viewer.compare_view.mode_buttons[_mode("SIDE_BY_SIDE")])
        self.shot("side_by_side_again")
        after = {k: d.width() for k, d in w.docks.items() if d.isVisible()}
        self.report["dock_widths"] = {"before": before, "fusion": during, "after": after}

        for n, spec in enumerate(PANELS, start=1):
            self.key(f"ctrl+{n}")
            self.shot(f"panel_{spec.key}")

    def run(self, scenario: str) -> int:
        code = 0
        try:
            getattr(self, scenario)()
        except Exception as exc:  # reported to the test, which fails with it
            import traceback

            self.report["errors"].append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            code = 1
        finally:
            (self.out / "report.json").write_text(json.dumps(self.report, indent=1))
            self.context.workers.stop_all()
            QTimer.singleShot(0, self.app.quit)
        return code


def _mode(name: str) -> Any:
    from medgan_desktop.qt.viewers.compare import CompareMode

    return CompareMode[name]


def main() -> int:
    out, scenario, data = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("QT_QPA_PLATFORM"):
        print("the display driver needs a real display, not QT_QPA_PLATFORM", file=sys.stderr)
        return 2
    return Driver(out, data).run(scenario)


if __name__ == "__main__":
    sys.exit(main())
