"""TrainPanel: preview, start -> samples/curves/checkpoints, pause, stop, resume, runs survive a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.models.runs import list_checkpoints, load_run
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.train import TrainPanel


def _pngs(root: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / ("A" if i % 2 else "B")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return root


@pytest.fixture()
def ctx(qtbot, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    c = AppContext(Settings.default())
    c.messages = messages  # type: ignore[attr-defined]
    yield c
    for w in c.workers.running():
        w.cancel()
    qtbot.waitUntil(lambda: not c.workers.running(), timeout=30_000)


def _tiny(panel: TrainPanel, data: Path, steps: int) -> None:
    panel.data_box.path_edit.setText(str(data))
    panel.size_combo.setCurrentIndex(0)  # 32 px
    panel.batch_spin.setValue(4)
    panel.steps_spin.setValue(steps)
    panel.sample_every.setValue(2)
    panel.ckpt_every.setValue(2)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))


def test_train_pause_stop_resume_and_restart(qtbot, ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _pngs(tmp_path / "data")
    panel = TrainPanel(ctx)
    qtbot.addWidget(panel)
    # the synthesis tab lists synthesis methods only; translation has its own tab
    assert panel.method_combo.findData("dcgan") >= 0 and panel.method_combo.findData("pix2pix") < 0
    assert panel.tabs.tabText(0) == "Synthesis" and panel.tabs.tabText(1) == "Translation"
    assert panel.device_combo.count() >= 2  # auto + cpu

    # no data chosen: an honest message, nothing starts
    panel.start()
    assert ctx.messages and not panel.is_training()

    _tiny(panel, data, 4)
    panel.preview()
    qtbot.waitUntil(lambda: panel.preview_label.pixmap() is not None and not panel.preview_label.pixmap().isNull(), timeout=20_000)
    assert "16 training images" in panel.status_label.text()
    assert panel.preview_caption.text() == "Preview: 16 of 16 training images after preprocessing"

    panel.start()
    assert panel.is_training() and panel.stop_btn.isEnabled() and not panel.start_btn.isEnabled()
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=60_000)
    run = panel.current_run
    assert run is not None and load_run(run).method == "dcgan"
    assert "finished at step 4/4" in panel.status_label.text()
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()
    assert panel.sample_label.pixmap() is not None and not panel.sample_label.pixmap().isNull()
    assert panel.sample_caption.text() == "Samples at step 4"
    assert panel.ckpt_list.count() == 2
    assert set(panel.plot.curves) >= {"d", "g"}

    # pause holds the run; stop writes a checkpoint
    panel.runs_list.setCurrentRow(0)
    panel.steps_spin.setValue(10_000)
    panel.resume_selected()
    assert panel.is_training()
    qtbot.waitUntil(lambda: any(s > 4 for s, _ in panel.plot.curves.get("d", [])), timeout=60_000)
    panel.toggle_pause()
    assert panel.worker is not None and panel.worker.token.paused and panel.pause_btn.text() == "Continue"
    panel.stop()
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=60_000)
    last = list_checkpoints(run)[-1][0]
    assert 4 < last < 10_000 and "stopped" in panel.status_label.text()

    # a new panel (app restart) lists the run with its progress
    panel2 = TrainPanel(ctx)
    qtbot.addWidget(panel2)
    assert panel2.runs_list.count() == 1
    assert f"step {last}/10000" in panel2.runs_list.item(0).text()
    panel2.runs_list.setCurrentRow(0)
    assert panel2.ckpt_list.count() >= 1 and panel2.plot.curves


def test_series_selection_without_index(qtbot, ctx) -> None:  # type: ignore[no-untyped-def]
    panel = TrainPanel(ctx)
    qtbot.addWidget(panel)
    panel.data_box.rb_series.setChecked(True)
    panel.start()
    assert any("select a series" in m for m in ctx.messages)
    ctx.series_selected.emit("1.2.3.4")
    assert panel.data_config().series_uids == ("1.2.3.4",)  # nothing added: the browser's selection
    panel.data_box.add_selected_series()
    ctx.series_selected.emit("5.6.7.8")
    panel.data_box.add_selected_series()
    panel.data_box.add_selected_series()  # no duplicates
    ctx.series_selected.emit("9.9")  # selecting alone does not add
    data = panel.data_config()
    assert data.kind == "index" and data.series_uids == ("1.2.3.4", "5.6.7.8")
    assert data.channels == 1 and not panel.data_box.channels_combo.isEnabled()
    panel.data_box.series_list.setCurrentRow(0)
    panel.data_box.series_list.item(0).setSelected(True)
    panel.data_box._remove_series()
    assert panel.data_config().series_uids == ("5.6.7.8",)


def test_cpu_bfloat16_choice_reaches_the_train_config(qtbot, ctx) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.core.training.config import DataConfig
    from medgan_desktop.core.training.devices import cpu_bf16_supported

    panel = TrainPanel(ctx)
    qtbot.addWidget(panel)
    assert panel.train_config(DataConfig()).cpu_bf16 is False  # off by default
    assert panel.bf16_check.isEnabled() == cpu_bf16_supported()
    panel.bf16_check.setChecked(True)
    assert panel.train_config(DataConfig()).cpu_bf16 is True
