"""ReviewPanel with series items: scroll a whole volume blinded, answer by keyboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.review.session import Truth
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.review import ReviewPanel

N_SLICES = 12


def _phantom(seed: int) -> np.ndarray:
    """A small CT-like volume (HU) whose every slice differs (a bright line moves with k)."""
    rng = np.random.default_rng(seed)
    vol = np.full((N_SLICES, 40, 48), -1000.0, np.float32)
    vol[:, 5:35, 6:42] = 40.0 + rng.normal(0, 5, (N_SLICES, 30, 36)).round()
    for k in range(N_SLICES):
        vol[k, 20, 8 + 2 * k: 10 + 2 * k] = 900.0
    return vol


@pytest.fixture()
def series_pools(tmp_path: Path) -> tuple[Path, Path]:
    """A real pool of one DICOM CT series and a synthetic pool of one NIfTI volume and one
    synthetic-marked DICOM series; names, descriptions and patients all say "secret"."""
    import SimpleITK as sitk

    from medgan_desktop.core.dicom.write import write_volume_series

    real, fake = tmp_path / "real_pool", tmp_path / "fake_pool"
    fake.mkdir()
    vol = Volume(array=_phantom(0), spacing=(0.8, 0.8, 2.5), modality="CT", units="HU")
    write_volume_series(vol, real / "secret_patient", patient_name="SECRET^PATIENT",
                        patient_id="SECRET", series_description="secret real series")
    syn = Volume(array=_phantom(1), spacing=(1.0, 1.0, 3.0), modality="CT", units="HU",
                 meta={"model_id": "secret_model"})
    write_volume_series(syn, fake / "secret_gan_dicom", patient_name="SECRET^GAN",
                        patient_id="SECRETGAN", series_description="secret synthetic",
                        synthetic=True)
    sitk.WriteImage(Volume(array=_phantom(2)).to_sitk(), str(fake / "secret_gan_ct.nii.gz"))
    return real, fake


@pytest.fixture()
def panel(qtbot, monkeypatch, series_pools):
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    w = ReviewPanel(AppContext(Settings.default()))
    qtbot.addWidget(w)
    w.messages = messages
    w.new_session({"name": "series", "real": series_pools[0], "synthetic": series_pools[1],
                   "seed": 5, "confidence_scale": (1, 5), "series": True})
    qtbot.waitUntil(lambda: not w.is_busy() and w.session_combo.count() == 1, timeout=30000)
    assert not messages
    w.resize(1100, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.context.workers.stop_all()


def _visible_text(w: ReviewPanel) -> str:
    corners = ("top_left", "top_right", "bottom_left", "bottom_right")
    return " ".join([lbl.text() for lbl in w.findChildren(QLabel) if lbl.isVisible()]
                    + [line for c in corners for line in w.view.corner_text(c)]
                    + [w.view.slice_label.text()])


def _wheel(view, steps: int) -> None:
    vp = view.graphics.viewport()
    centre = QPointF(vp.width() / 2, vp.height() / 2)
    ev = QWheelEvent(centre, QPointF(vp.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                     QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)


def _shows_slice(panel: ReviewPanel, k: int) -> bool:
    assert panel.item is not None
    return bool(np.array_equal(panel.view.current_image(), panel.item.image[k]))


def test_series_item_scrolls_blinded_and_answers_by_keys(panel, qtbot, tmp_path):
    loads: list[str] = []
    item_fn = panel.store.item
    panel.store.item = lambda sid, iid, *a: loads.append(iid) or item_fn(sid, iid, *a)
    panel.reader_edit.setText("dr_series")
    panel.start_reading()
    assert panel.item is not None and panel.item.is_series and len(loads) == 1  # one at a time
    view = panel.view
    assert view.volume().shape == (N_SLICES, 40, 48) and view.n_slices() == N_SLICES
    start = view.slice_index()
    assert start == N_SLICES // 2 and _shows_slice(panel, start)
    assert view.slider.isVisible() and view.slider.maximum() == N_SLICES - 1

    # mouse wheel over the image
    _wheel(view, +1)
    assert view.slice_index() == start + 1 and _shows_slice(panel, start + 1)
    _wheel(view, -1)
    _wheel(view, -1)
    assert view.slice_index() == start - 1
    # keys, whichever widget has them: the viewer, an answer button, the slider
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.slice_index() == start
    qtbot.keyClick(panel.real_btn, Qt.Key.Key_Down)
    assert view.slice_index() == start - 1 and panel.answer_value is None
    qtbot.keyClick(view.slider, Qt.Key.Key_PageDown)
    assert view.slice_index() == 0 and _shows_slice(panel, 0)  # clamped
    qtbot.keyClick(panel.submit_btn, Qt.Key.Key_PageUp)
    assert view.slice_index() == 10
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.slice_index() == N_SLICES - 1 and _shows_slice(panel, N_SLICES - 1)
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.slice_index() == 0
    view.slider.setValue(7)
    assert view.slice_index() == 7 and _shows_slice(panel, 7)
    # typing in the comment box moves its cursor, not the slices
    qtbot.keyClick(panel.comment_edit, Qt.Key.Key_Up)
    assert view.slice_index() == 7

    # window/level as elsewhere: CT presets (every item is CT) and right-drag
    names = [view.preset_combo.itemText(i) for i in range(view.preset_combo.count())]
    assert "Bone" in names and "Lung" in names
    assert view.window_level() == (400.0, 40.0)  # the same opening window for every item
    view.apply_preset("Bone")
    assert view.window_level() == (2000.0, 500.0)
    view.vb.window_dragged.emit(50.0, -20.0)
    w, lvl = view.window_level()
    assert w > 2000.0 and lvl < 500.0

    # blinded: no names, headers, banner, slice numbers, positions or spacing
    scene_pos = view.vb.mapViewToScene(QPointF(20.5, 16.5))
    view.graphics.scene().sigMouseMoved.emit(scene_pos)
    assert view.probe_text() and view.probe_text()[0].startswith("Value =")
    text = _visible_text(panel)
    for leak in ("secret", "SECRET", "pool", "Im:", "Loc:", "mm", "/ 12", "(i, j, k)", "LPS",
                 "synthetic series", "SYNTHETIC"):
        assert leak not in text, leak
    assert not view.synthetic_banner_visible()

    # answer by shortcut on a scrolled series; the rating is stored, the next item opens
    first = panel.item.item_id
    qtbot.keyClick(view, Qt.Key.Key_S)
    qtbot.keyClick(view.slider, Qt.Key.Key_4)  # confidence, with the slider focused
    qtbot.keyClick(view, Qt.Key.Key_Down)  # scrolling between answers keeps them
    qtbot.keyClick(view, Qt.Key.Key_3)  # quality
    assert (panel.answer_value, panel.confidence, panel.quality) == (Truth.SYNTHETIC, 4, 3)
    assert view.slice_index() == 6
    qtbot.keyClick(view, Qt.Key.Key_Return)
    ratings = panel.store.ratings(panel.session_id)
    assert [(r.item_id, r.answer, r.confidence, r.quality) for r in ratings] == \
        [(first, Truth.SYNTHETIC, 4, 3)]
    assert panel.item is not None and panel.item.item_id != first and len(loads) == 2
    assert view.slice_index() == N_SLICES // 2  # the next series opens on its middle slice

    out = tmp_path / "review_series.png"
    assert panel.grab().save(str(out))
    assert out.stat().st_size > 10_000


def test_percent_scale_spin_box_keeps_its_keys(qtbot, monkeypatch, series_pools):
    """On the 0-100 scale, digits and arrows typed in the confidence box are its own."""
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    w = ReviewPanel(AppContext(Settings.default()))
    qtbot.addWidget(w)
    w.new_session({"name": "pct", "real": series_pools[0], "synthetic": series_pools[1],
                   "seed": 1, "confidence_scale": (0, 100)})
    qtbot.waitUntil(lambda: not w.is_busy() and w.session_combo.count() == 1, timeout=30000)
    w.reader_edit.setText("dr_pct")
    w.start_reading()
    w.conf_spin.lineEdit().selectAll()
    qtbot.keyClicks(w.conf_spin, "45")
    qtbot.keyClick(w.conf_spin, Qt.Key.Key_Up)
    assert w.conf_spin.value() == 46 and w.quality is None
    assert w.view.slice_index() == N_SLICES // 2
    qtbot.keyClick(w.conf_spin, Qt.Key.Key_R)  # answer keys still work from the box
    qtbot.keyClick(w.conf_spin, Qt.Key.Key_Return)
    r = w.store.ratings(w.session_id)[0]
    assert (r.answer, r.confidence) == (Truth.REAL, 46)
    w.close()
