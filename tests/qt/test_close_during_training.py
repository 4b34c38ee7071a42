"""Closing the main window while the Train panel trains: it asks, then stops the worker cleanly.

"No" keeps the window open and the run going; "Yes" cancels the worker, waits for its
thread (within a bound, without a GUI-thread deadlock) and leaves a resumable checkpoint.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.models.runs import list_checkpoints, read_state, read_weights
from medgan_desktop.core.progress import Progress
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.main_window import MainWindow

STOP_BOUND_S = 8.0  # cancel is checked every step; a step plus a checkpoint takes well under this


@pytest.fixture()
def xray_folder(shared_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "xray"
    out.mkdir()
    for f in sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[:12]:
        shutil.copy(f, out / f.name)
    assert len(list(out.iterdir())) == 12
    return out


def test_close_asks_then_stops_training_cleanly(qtbot, tmp_path: Path, xray_folder: Path,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail(f"warning: {a[2]}"))
    ctx = AppContext(Settings.default())
    win = MainWindow(ctx, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    panel = win.panels["train"]
    panel.data_box.path_edit.setText(str(xray_folder))
    panel.size_combo.setCurrentIndex(0)  # the smallest size
    panel.batch_spin.setValue(4)
    panel.steps_spin.setValue(100_000)
    panel.ckpt_every.setValue(10_000)  # the checkpoint we find must come from the stop
    panel.sample_every.setValue(0)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.start()
    assert panel.is_training() and panel.worker is not None
    worker = panel.worker
    steps: list[int] = []
    worker.progress.connect(lambda p: steps.append(p.done) if isinstance(p, Progress) else None)
    qtbot.waitUntil(lambda: bool(steps) and steps[-1] >= 3, timeout=60_000)

    questions: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def question(*args: object, **_k: object) -> QMessageBox.StandardButton:
        questions.append(str(args[2]))
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)

    # "No": the window stays and training goes on
    assert win.close() is False
    assert len(questions) == 1 and "train" in questions[0]
    assert win.isVisible() and worker.is_running() and panel.is_training()
    seen = steps[-1]
    qtbot.waitUntil(lambda: steps[-1] >= seen + 3, timeout=30_000)
    assert list_checkpoints(panel.current_run) == []

    # "Yes": the worker is cancelled and its thread has finished when close() returns
    answer[0] = QMessageBox.StandardButton.Yes
    t0 = time.monotonic()
    closed = win.close()
    elapsed = time.monotonic() - t0
    assert closed is True and len(questions) == 2
    assert elapsed < STOP_BOUND_S, f"stopping the training worker took {elapsed:.1f}s"
    assert worker.qthread is not None and worker.qthread.isFinished()
    assert not win.isVisible() and ctx.workers.running() == []
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=10_000)  # queued done() arrives

    ckpts = list_checkpoints(panel.current_run)
    assert len(ckpts) == 1
    step, weights = ckpts[0]
    assert step >= seen + 3
    assert read_state(weights.with_name(weights.name.replace(".safetensors", ".state.pt")))["step"] == step
    assert read_weights(weights)
