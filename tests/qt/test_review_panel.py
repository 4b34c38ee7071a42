"""ReviewPanel: blinded reading by keyboard, pause/resume, results, CSV and session exchange."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.review.session import ReviewStore, Truth
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.review import ReviewPanel


@pytest.fixture()
def pools(tmp_path: Path, shared_data: Path):
    src = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[:8]
    real, fake = tmp_path / "real_pool", tmp_path / "fake_pool"
    real.mkdir()
    fake.mkdir()
    for i, f in enumerate(src):
        img = Image.open(f).convert("L").resize((48, 48))
        if i < 4:
            img.save(real / f"patient_secret_{i}.png")
        else:
            a = np.clip(np.asarray(img, float) + np.random.default_rng(i).normal(0, 30, (48, 48)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(fake / f"gan_secret_{i}.png")
    return real, fake


def _make_panel(qtbot, messages):
    w = ReviewPanel(AppContext(Settings.default()))
    qtbot.addWidget(w)
    w.messages = messages
    return w


@pytest.fixture()
def panel(qtbot, monkeypatch, pools):
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    w = _make_panel(qtbot, messages)
    w.new_session({"name": "cxr", "real": pools[0], "synthetic": pools[1], "seed": 11,
                   "confidence_scale": (1, 5)})
    qtbot.waitUntil(lambda: not w.is_busy() and w.session_combo.count() == 1, timeout=20000)
    yield w
    w.context.workers.stop_all()


def _visible_text(w) -> str:
    corners = ("top_left", "top_right", "bottom_left", "bottom_right")
    return " ".join([lbl.text() for lbl in w.findChildren(QLabel)]
                    + [line for c in corners for line in w.view.corner_text(c)])


def test_keyboard_reader_is_blinded_and_perfect(panel, qtbot, tmp_path):
    assert panel.session_id is not None
    panel.start_reading()  # no name yet: told so
    assert panel.item is None and panel.messages
    panel.reader_edit.setText("dr_keys")
    panel.start_reading()
    assert panel.item is not None and panel.view.volume() is not None
    assert panel.view.volume().shape == (1, 48, 48)
    assert not panel.view.synthetic_banner_visible()
    truths = panel.store.truths(panel.session_id)
    n = 0
    while panel.item is not None:
        text = _visible_text(panel)
        assert "secret" not in text and "real_pool" not in text and "fake_pool" not in text
        truth = truths[panel.item.item_id][0]
        assert not panel.submit_btn.isEnabled()
        qtbot.keyClick(panel.view, Qt.Key.Key_R if truth == Truth.REAL else Qt.Key.Key_S)
        qtbot.keyClick(panel.view, Qt.Key.Key_5)  # confidence
        qtbot.keyClick(panel.view, Qt.Key.Key_4)  # quality
        assert (panel.confidence, panel.quality) == (5, 4) and panel.submit_btn.isEnabled()
        qtbot.keyClick(panel.view, Qt.Key.Key_Return)
        n += 1
    assert n == 8 and "Finished" in panel.read_label.text()
    panel.tabs.setCurrentIndex(1)
    assert panel.readers_table.item(0, 2).text() == "1.000"  # accuracy
    assert panel.readers_table.item(0, 5).text() == "1.000"  # AUC
    assert panel.images_table.rowCount() == 8
    files = panel.export_csv(tmp_path / "ratings.csv")
    rows = list(csv.DictReader(files[0].open()))
    assert len(rows) == 8 and all(r["correct"] == "1" and r["quality"] == "4" for r in rows)


def test_comment_typing_does_not_answer(panel, qtbot):
    panel.reader_edit.setText("dr_comment")
    panel.start_reading()
    qtbot.keyClicks(panel.comment_edit, "RS 12 looks odd")
    assert panel.answer_value is None and panel.confidence is None
    panel.syn_btn.click()
    panel.conf_buttons[2].click()
    assert panel.submit()
    r = panel.store.ratings(panel.session_id)[0]
    assert r.comment == "RS 12 looks odd" and r.answer == Truth.SYNTHETIC and r.confidence == 3


def test_pause_resume_across_restart_and_exchange(panel, qtbot, tmp_path):
    panel.reader_edit.setText("dr_pause")
    panel.start_reading()
    for _ in range(3):
        panel.set_answer(Truth.REAL)
        panel.set_confidence(2)
        assert panel.submit()
    panel.pause_btn.click()
    assert panel.pause_btn.text() == "Resume" and not panel.real_btn.isEnabled()
    assert not panel.handle_key(Qt.Key.Key_R)  # paused: keys do nothing
    sid = panel.session_id
    panel.close()
    again = _make_panel(qtbot, [])  # the app restarted
    assert again.session_id == sid
    again.reader_edit.setText("dr_pause")
    again.start_reading()
    assert again.read_progress.value() == 3 and again.item is not None
    out = again.export_session(tmp_path / "s.zip")
    other = ReviewStore(tmp_path / "elsewhere.sqlite")
    assert other.import_session(out) == sid
    assert len(other.ratings(sid)) == 3
    other.close()
    again.close()


def test_percent_confidence_scale(qtbot, monkeypatch, pools):
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    w = _make_panel(qtbot, [])
    w.new_session({"name": "pct", "real": pools[0], "synthetic": pools[1], "seed": 1,
                   "confidence_scale": (0, 100)})
    qtbot.waitUntil(lambda: not w.is_busy() and w.session_combo.count() == 1, timeout=20000)
    w.reader_edit.setText("dr_pct")
    w.start_reading()
    assert not w.conf_spin.isHidden() and w.conf_buttons[0].isHidden()
    w.conf_spin.setValue(87)
    qtbot.keyClick(w.view, Qt.Key.Key_S)
    qtbot.keyClick(w.view, Qt.Key.Key_2)  # digits rate quality on a 0-100 scale
    qtbot.keyClick(w.view, Qt.Key.Key_Enter)
    r = w.store.ratings(w.session_id)[0]
    assert (r.answer, r.confidence, r.quality) == (Truth.SYNTHETIC, 87, 2)
    w.close()


def test_duplicate_session_name_is_refused(panel, pools):
    from medgan_desktop.qt.panels.review import NewSessionDialog, unique_name

    panel.new_session({"name": "cxr", "real": pools[0], "synthetic": pools[1], "seed": 1})
    assert "already exists" in panel.messages[-1]
    assert not panel.is_busy() and panel.session_combo.count() == 1
    assert unique_name("cxr", {"cxr", "cxr 2"}) == "cxr 3" and unique_name("a", {"b"}) == "a"
    dlg = NewSessionDialog(panel, {"Reader study"})
    assert dlg.values()["name"] == "Reader study 2"


def test_the_study_shows_every_item_alike_and_says_so(qtbot, monkeypatch, tmp_path: Path, shared_data: Path) -> None:
    """64 px synthetic films beside 224 px real ones are shown at one size, without
    orientation letters, and the reader count and the fairness report are up to date."""
    src = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[:12]
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for i, f in enumerate(src):
        img = Image.open(f).convert("L")
        if i < 6:
            img.resize((224, 224)).save(real / f"r{i}.png")
        else:
            img.resize((64, 64)).save(fake / f"s{i}.png")
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    w = _make_panel(qtbot, messages)
    w.new_session({"name": "fair", "real": real, "synthetic": fake, "seed": 3,
                   "confidence_scale": (1, 5), "equalise": True, "display_size": 0})
    qtbot.waitUntil(lambda: not w.is_busy() and w.session_combo.count() == 1, timeout=30000)
    assert "0 readers" in w.session_combo.currentText()
    w.reader_edit.setText("dr_fair")
    w.start_reading()
    assert "1 readers" in w.session_combo.currentText()  # no restart needed
    shapes = set()
    truths = w.store.truths(w.session_id)
    while w.item is not None:
        shapes.add(w.view.volume().shape)
        assert w.view.orientation_hidden()
        truth = truths[w.item.item_id][0]
        qtbot.keyClick(w.view, Qt.Key.Key_R if truth == Truth.REAL else Qt.Key.Key_S)
        qtbot.keyClick(w.view, Qt.Key.Key_3)
        qtbot.keyClick(w.view, Qt.Key.Key_3)
        qtbot.keyClick(w.view, Qt.Key.Key_Return)
    assert shapes == {(1, 64, 64)}
    w.tabs.setCurrentIndex(1)
    text = w.fairness_label.text()
    assert "64 px" in text and "real 224 px, synthetic 64 px" in text and "Orientation letters" in text
    w.context.workers.stop_all()
