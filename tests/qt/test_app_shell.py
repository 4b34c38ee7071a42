"""The application shell: workers, signals under load, main window, smoke and screenshot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.main_window import PANELS, MainWindow
from medgan_desktop.qt.workers.base import Worker

REPO = Path(__file__).resolve().parents[2]


def _emit_many(n: int, progress: ProgressCallback, cancel: CancelToken) -> int:
    for i in range(n):
        cancel.check()
        progress(Progress(i + 1, n, "step"))
    return n


def test_worker_survives_50k_progress_emits(qtbot) -> None:  # type: ignore[no-untyped-def]
    # PySide6 6.12.0 aborts after ~11k emits on Python 3.11: emit every report.
    worker = Worker(_emit_many, 50_000, min_interval=0.0)
    received: list[int] = []
    worker.progress.connect(lambda p: received.append(p.done))
    with qtbot.waitSignal(worker.finished, timeout=120_000) as blocker:
        worker.start()
    qtbot.waitUntil(lambda: not worker.qthread.isRunning(), timeout=10_000)
    assert blocker.args == [50_000]
    qtbot.waitUntil(lambda: len(received) == 50_000, timeout=60_000)
    assert received[-1] == 50_000


def _wait_for_cancel(progress: ProgressCallback, cancel: CancelToken) -> None:
    while True:
        cancel.check()
        progress(Progress(0, 0))


def test_worker_cancel_and_failure_are_reported(qtbot) -> None:  # type: ignore[no-untyped-def]
    worker = Worker(_wait_for_cancel)
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        worker.start()
        worker.cancel()
    qtbot.waitUntil(lambda: not worker.qthread.isRunning(), timeout=10_000)

    def boom(progress: ProgressCallback, cancel: CancelToken) -> None:
        raise ValueError("bad input file")

    failing = Worker(boom, name="import")
    with qtbot.waitSignal(failing.failed, timeout=10_000) as blocker:
        failing.start()
    qtbot.waitUntil(lambda: not failing.qthread.isRunning(), timeout=10_000)
    message, tb = blocker.args
    assert "bad input file" in message and "ValueError" in tb


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    monkeypatch.setenv("MEDGAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    ctx = AppContext(Settings.default())
    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(ctx, qs)
    qtbot.addWidget(win)
    yield win
    ctx.workers.stop_all()


def test_main_window_has_every_panel_and_menu(window: MainWindow) -> None:
    assert set(window.docks) == {s.key for s in PANELS}
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "View", "Help"]
    file_actions = [a.text().replace("&", "") for a in window.menuBar().actions()[0].menu().actions()]
    assert any("Open folder" in t for t in file_actions)
    assert any("sample study" in t for t in file_actions)
    assert any("Quit" in t for t in file_actions)
    assert not window.failures, window.failures
    assert "medgan desktop" in window.about_text()


def test_recent_folders_persist(window: MainWindow, tmp_path: Path) -> None:
    window._add_recent(tmp_path)
    assert window._recent()[0] == str(tmp_path)
    window.qsettings.sync()
    assert str(tmp_path) in Path(window.qsettings.fileName()).read_text()


def _run_main(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**__import__("os").environ, "MEDGAN_DATA_DIR": str(tmp_path / "data")}
    env.pop("DISPLAY", None)
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )


def test_smoke_builds_every_panel(tmp_path: Path) -> None:
    proc = _run_main("--smoke", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "[smoke] ok" in proc.stdout


def test_screenshot_renders_the_window(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    out = tmp_path / "window.png"
    proc = _run_main("--screenshot", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    img = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    assert img.shape[0] > 400 and img.shape[1] > 600
    assert img.std() > 5  # not a blank image


def test_a_cold_start_shows_the_window_first_and_builds_the_panels_behind_it(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from medgan_desktop.qt.main_window import PendingPanel
    from medgan_desktop.qt.panels.evaluate import EvaluatePanel

    ctx = AppContext(Settings.default())
    win = MainWindow(ctx, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), lazy_panels=True)
    qtbot.addWidget(win)
    assert not isinstance(win.panels["browser"], PendingPanel)  # the browser is there at once
    assert all(isinstance(win.panels[s.key], PendingPanel) for s in PANELS if s.key != "browser")
    win.show()
    win.raise_panel("evaluate")  # asked for: built now, with the focus in it
    assert isinstance(win.panels["evaluate"], EvaluatePanel)
    assert win.docks["evaluate"].widget().widget() is win.panels["evaluate"]
    win.start_loading_panels()
    qtbot.waitUntil(lambda: not any(isinstance(p, PendingPanel) for p in win.panels.values()), timeout=60_000)
    assert not win.failures
    ctx.workers.stop_all()


def test_panels_can_always_be_brought_back_and_the_bindings_are_listed(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from medgan_desktop.qt.help_page import BINDINGS, BindingsDialog, bindings_html

    ini = str(tmp_path / "s.ini")
    ctx = AppContext(Settings.default())
    win = MainWindow(ctx, QSettings(ini, QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    go = {a.text(): a for a in win.findChildren(type(win.menuBar().actions()[0]))}
    for n, spec in enumerate(PANELS, start=1):  # Ctrl+n raises a panel; it never hides one
        act = go[f"Go to {spec.title}"]
        assert act.shortcut().toString() == f"Ctrl+{n}"
        act.trigger()
        assert win.docks[spec.key].isVisible()
        act.trigger()
        assert win.docks[spec.key].isVisible()
    win.docks["train"].toggleViewAction().trigger()  # hidden from the View menu ...
    assert not win.docks["train"].isVisible()
    win.close()  # ... and still hidden after a restart
    win2 = MainWindow(ctx, QSettings(ini, QSettings.Format.IniFormat))
    qtbot.addWidget(win2)
    win2.show()
    assert not win2.docks["train"].isVisible()
    win2.reset_layout()  # View > Reset layout shows every panel again
    assert all(d.isVisible() for d in win2.docks.values())
    from html import escape

    html = bindings_html()
    for _group, rows in BINDINGS:
        for keys, what in rows:
            assert escape(keys) in html and escape(what) in html
    for needed in ("Right-drag", "window (left-right) and level (up-down)", "Ctrl+1", "F8"):
        assert needed in html
    dlg = BindingsDialog(win2)
    assert "Mouse and keyboard" in dlg.text.toPlainText()
    ctx.workers.stop_all()
