"""The Review panel: a blinded reader study, one image at a time, and its results.

Sessions live in :class:`medgan_desktop.core.review.session.ReviewStore` (SQLite in the
data folder); the ``medgan review`` CLI uses the same store. The reader sees only the
pixels in a blinded slice viewer (window/level presets and right-drag, no names,
headers, synthetic banner, slice numbers, positions or spacing) and answers with the
mouse or the keyboard:

* ``R`` real, ``S`` synthetic;
* ``1``–``5``: confidence first, then quality (Likert) for the same image;
* ``Enter`` submits; the comment box takes ordinary typing;
* a series scrolls with the mouse wheel, the slider, ``Up``/``Down`` (one slice),
  ``PageUp``/``PageDown`` (ten) and ``Home``/``End``, wherever the focus is (except
  in the text boxes), without disturbing the answer keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QBoxLayout,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpacerItem,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.jobs.review import CreateSpec, run_create, run_results
from medgan_desktop.core.review.session import ReviewError, ReviewItem, ReviewStore, SessionInfo, Truth
from medgan_desktop.qt import dialogs
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.flow_layout import flow_row
from medgan_desktop.qt.panels.evaluate import _PathRow
from medgan_desktop.qt.widgets import spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

_DIGITS = {Qt.Key.Key_1: 1, Qt.Key.Key_2: 2, Qt.Key.Key_3: 3, Qt.Key.Key_4: 4, Qt.Key.Key_5: 5}
#: Keys that scroll a series (slices per press); Home/End go to the first/last slice.
_SCROLL = {Qt.Key.Key_Up: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Left: -1,
           Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}


def _paths(value: Any) -> tuple[Path, ...]:
    """A pool as the dialog gives it (one path or several) as a tuple of paths."""
    if isinstance(value, str | Path):
        return (Path(value),)
    return tuple(Path(v) for v in value)


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base 2``, ``base 3``... whichever is not in ``taken``."""
    if base not in taken:
        return base
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


class NewSessionDialog(QDialog):
    """Name, real pool, synthetic pool, confidence scale and seed of a new session."""

    def __init__(self, parent: QWidget | None = None, taken: set[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New reader study")
        form = QFormLayout(self)
        self.name_edit = QLineEdit(unique_name("Reader study", taken or set()))
        self.name_edit.setToolTip("Session names are unique (the CLI accepts the name or the id)")
        self.real_row = _PathRow(folder=True, file=True)
        self.fake_row = _PathRow(folder=True, file=True)
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("1–5", (1, 5))
        self.scale_combo.addItem("0–100", (0, 100))
        self.seed_spin = spin_box(0, 2**31 - 1)
        self.seed_spin.setValue(int(np.random.default_rng().integers(0, 2**31 - 1)))
        self.series_check = QCheckBox("Show DICOM series and volume files as scrollable series")
        self.series_check.setChecked(True)
        self.series_check.setToolTip("Off: every file is one 2D image (a volume's middle slice)")
        self.equalise_check = QCheckBox("Show real and synthetic items alike (recommended)")
        self.equalise_check.setChecked(True)
        self.equalise_check.setToolTip(
            "Every item through one pipeline: the same matrix size, interpolation, bit depth "
            "and windowing, so pixelation or banding cannot tell real from synthetic")
        self.size_spin = spin_box(0, 4096)
        self.size_spin.setSpecialValueText("automatic (smaller pool's median)")
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("The shorter side every item is shown at")
        self.equalise_check.toggled.connect(self.size_spin.setEnabled)
        form.addRow("Name", self.name_edit)
        form.addRow("Real images or series (folder or file)", self.real_row)
        form.addRow("Synthetic images or series (folder or file)", self.fake_row)
        form.addRow("Confidence scale", self.scale_combo)
        form.addRow("Order seed", self.seed_spin)
        form.addRow("", self.series_check)
        form.addRow("", self.equalise_check)
        form.addRow("Display size", self.size_spin)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

    def values(self) -> dict[str, Any]:
        return {"name": self.name_edit.text().strip() or "Reader study",
                "real": self.real_row.path(), "synthetic": self.fake_row.path(),
                "confidence_scale": self.scale_combo.currentData(), "seed": self.seed_spin.value(),
                "series": self.series_check.isChecked(),
                "equalise": self.equalise_check.isChecked(), "display_size": self.size_spin.value()}


class _Keys(QObject):
    """Routes the study's shortcut keys to the panel from any child but text inputs.

    A spin box (the 0–100 confidence) keeps its digits and arrows; R/S/Enter still answer.
    """

    def __init__(self, panel: ReviewPanel) -> None:
        super().__init__(panel)
        self.panel = panel

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() != QEvent.Type.KeyPress or isinstance(obj, QLineEdit | QPlainTextEdit):
            return False
        key = event.key()  # type: ignore[attr-defined]
        if isinstance(obj, QAbstractSpinBox) and (key in _DIGITS or key in _SCROLL):
            return False
        return self.panel.handle_key(key)


class _ReadPage(QWidget):
    """The reading page; tells the panel when its width changes (to re-arrange).

    Its minimum width is always that of the stacked arrangement (the widest of its
    parts), also while it shows the image and the controls side by side: otherwise a
    page that was once wide would hold its dock at the wide minimum and the dock could
    never be made narrow again (its layout sets no minimum of its own for that reason).
    """

    def __init__(self, on_resize: Callable[[], None]) -> None:
        super().__init__()
        self._on_resize = on_resize

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        lay = self.layout()
        if lay is None:
            return super().minimumSizeHint()
        m = lay.contentsMargins()
        items = [lay.itemAt(i) for i in range(lay.count())]
        width = max((it.minimumSize().width() for it in items if it is not None), default=0)
        return QSize(width + m.left() + m.right(), lay.minimumSize().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._on_resize()


class ReviewPanel(QWidget):
    """Create/open sessions, read blinded images, and score the study."""

    def __init__(self, context: AppContext, parent: QWidget | None = None,
                 store: ReviewStore | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._store = store
        self.session_id: str | None = None
        self.reader: str = ""
        self.item: ReviewItem | None = None
        self.answer_value: Truth | None = None
        self.confidence: int | None = None
        self.quality: int | None = None
        self._busy = False
        self.worker: Worker | None = None
        self._build()
        self.refresh_sessions()

    # -- UI ---------------------------------------------------------------------------
    def _build(self) -> None:
        from medgan_desktop.qt.viewers.slice_view import SliceView

        self.session_combo = QComboBox()
        self.session_combo.currentIndexChanged.connect(self._on_session_changed)
        self.new_btn = QPushButton("New…")
        self.new_btn.clicked.connect(lambda: self.new_session())
        self.import_btn = QPushButton("Import…")
        self.import_btn.clicked.connect(lambda: self.import_session())
        self.export_btn = QPushButton("Export…")
        self.export_btn.clicked.connect(lambda: self.export_session())
        self.reader_edit = QLineEdit()
        self.reader_edit.setPlaceholderText("reader name")
        self.start_btn = QPushButton("Start / resume")
        self.start_btn.clicked.connect(self.start_reading)
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.clicked.connect(self.toggle_pause)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Session"))
        bar.addWidget(self.session_combo, 1)
        bar_buttons = flow_row(self.new_btn, self.import_btn, self.export_btn)
        bar2 = QHBoxLayout()
        bar2.addWidget(QLabel("Reader"))
        bar2.addWidget(self.reader_edit, 1)
        bar2_buttons = flow_row(self.start_btn, self.pause_btn)

        # reading page
        self.view = SliceView(self)
        self.view.set_blinded(True)
        self.view.set_geometry_hidden(True)
        self.real_btn = QPushButton("Real (R)")
        self.syn_btn = QPushButton("Synthetic (S)")
        self.answer_group = QButtonGroup(self)
        for b, v in ((self.real_btn, Truth.REAL), (self.syn_btn, Truth.SYNTHETIC)):
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, v=v: self.set_answer(v))
            self.answer_group.addButton(b)
        self.conf_box = QGroupBox("Confidence (1–5)")
        cl = QHBoxLayout(self.conf_box)
        self.conf_group = QButtonGroup(self)
        self.conf_buttons: list[QPushButton] = []
        for i in range(1, 6):
            b = QPushButton(str(i))
            b.setMinimumWidth(28)  # five digits fit a narrow panel
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, i=i: self.set_confidence(i))
            self.conf_group.addButton(b, i)
            self.conf_buttons.append(b)
            cl.addWidget(b)
        self.conf_spin = spin_box(0, 100, 50)
        self.conf_spin.valueChanged.connect(lambda v: self.set_confidence(int(v)))
        cl.addWidget(self.conf_spin)
        self.quality_box = QGroupBox("Image quality (Likert 1–5)")
        ql = QHBoxLayout(self.quality_box)
        self.quality_group = QButtonGroup(self)
        for i in range(1, 6):
            b = QPushButton(str(i))
            b.setMinimumWidth(28)
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, i=i: self.set_quality(i))
            self.quality_group.addButton(b, i)
            ql.addWidget(b)
        self.comment_edit = QPlainTextEdit()
        self.comment_edit.setPlaceholderText("comment (optional)")
        self.comment_edit.setMaximumHeight(80)
        self.submit_btn = QPushButton("Submit (Enter)")
        self.submit_btn.clicked.connect(self.submit)
        self.read_progress = QProgressBar()
        self.read_label = QLabel("Choose or create a session, enter your name, press Start.")
        self.read_label.setWordWrap(True)
        side = QVBoxLayout()
        ab = QHBoxLayout()
        ab.addWidget(self.real_btn)
        ab.addWidget(self.syn_btn)
        side.addLayout(ab)
        # confidence and quality: stacked beside the image, side by side below it
        self._scores = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self._scores.addWidget(self.conf_box)
        self._scores.addWidget(self.quality_box)
        side.addLayout(self._scores)
        side.addWidget(self.comment_edit)
        side.addWidget(self.submit_btn)
        side.addWidget(self.read_progress)
        side.addWidget(self.read_label)
        self._side_stretch = QSpacerItem(0, 0, QSizePolicy.Policy.Minimum,
                                         QSizePolicy.Policy.Expanding)
        side.addItem(self._side_stretch)
        self._side = side
        self.read_page = _ReadPage(self._arrange_read_page)
        # the answer controls sit beside the image when the panel is wide and below it
        # when it is narrow (the docked default), so the viewer's toolbar is never clipped
        self._read_box = QBoxLayout(QBoxLayout.Direction.TopToBottom, self.read_page)
        self._read_box.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._read_box.addWidget(self.view, 1)
        self._read_box.addLayout(side, 0)
        read = self.read_page

        # results page
        self.refresh_btn = QPushButton("Refresh results")
        self.refresh_btn.clicked.connect(self.refresh_results)
        self.csv_btn = QPushButton("Export CSV…")
        self.csv_btn.clicked.connect(lambda: self.export_csv())
        self.readers_table = QTableWidget(0, 8)
        self.readers_table.setHorizontalHeaderLabels(
            ["reader", "n", "accuracy", "sensitivity", "specificity", "AUC", "quality real",
             "quality synthetic"])
        self.kappa_label = QLabel("")
        self.images_table = QTableWidget(0, 6)
        self.images_table.setHorizontalHeaderLabels(
            ["item", "truth", "ratings", "called synthetic", "accuracy", "mean quality"])
        res = QWidget()
        rsl = QVBoxLayout(res)
        rb = QHBoxLayout()
        rb.addWidget(self.refresh_btn)
        rb.addWidget(self.csv_btn)
        rb.addStretch(1)
        rsl.addLayout(rb)
        self.fairness_label = QLabel("")
        self.fairness_label.setWordWrap(True)
        self.fairness_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rsl.addWidget(self.fairness_label)
        rsl.addWidget(self.readers_table)
        rsl.addWidget(self.kappa_label)
        rsl.addWidget(self.images_table, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(read, "Read")
        self.tabs.addTab(res, "Results")
        self.tabs.currentChanged.connect(lambda i: self.refresh_results() if i == 1 else None)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(bar_buttons)
        lay.addLayout(bar2)
        lay.addWidget(bar2_buttons)
        lay.addWidget(self.tabs, 1)

        self._keys = _Keys(self)
        for child in [self, *self.findChildren(QWidget)]:
            child.installEventFilter(self._keys)
        self._update_controls()

    # -- layout -------------------------------------------------------------------------
    def side_by_side(self) -> bool:
        """True when the answer controls sit beside the image (a wide panel)."""
        return self._read_box.direction() == QBoxLayout.Direction.LeftToRight

    def _side_width(self) -> int:
        """Width the answer controls need beside the image (whatever the current layout)."""
        widths = (self.conf_box.minimumSizeHint().width(),
                  self.quality_box.minimumSizeHint().width(),
                  self.real_btn.minimumSizeHint().width()
                  + self.syn_btn.minimumSizeHint().width() + 12)
        return max(*widths, 220)

    def _arrange_read_page(self) -> None:
        """Beside when the viewer's toolbar and the controls both fit their full width.

        The 40 px slack keeps the wide layout's minimum width below the switch point,
        so a panel made narrower always switches back.
        """
        margins = self._read_box.contentsMargins()
        need = (self.view.toolbar.sizeHint().width() + self._side_width()
                + self._read_box.spacing() + margins.left() + margins.right() + 40)
        wide = self.read_page.width() >= need
        if wide == self.side_by_side():
            return
        d, pol = QBoxLayout.Direction, QSizePolicy.Policy
        # (image/controls direction, scores direction, stretches, side stretch, comment height)
        read, scores, stretch, side, comment = (
            (d.LeftToRight, d.TopToBottom, (3, 1), pol.Expanding, 80) if wide else
            (d.TopToBottom, d.LeftToRight, (1, 0), pol.Fixed, 52))
        self._read_box.setDirection(read)
        self._scores.setDirection(scores)
        self._read_box.setStretch(0, stretch[0])
        self._read_box.setStretch(1, stretch[1])
        self._side_stretch.changeSize(0, 0, pol.Minimum, side)
        self.comment_edit.setMaximumHeight(comment)
        self._side.invalidate()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._arrange_read_page()

    # -- store --------------------------------------------------------------------------
    @property
    def store(self) -> ReviewStore:
        if self._store is None:
            self.context.paths.ensure()
            self._store = ReviewStore(self.context.paths.data_dir / "review.sqlite")
        return self._store

    def refresh_sessions(self, select: str | None = None) -> None:
        current = select or self.session_id
        self.session_combo.blockSignals(True)
        self.session_combo.clear()
        for info in self.store.sessions():
            self.session_combo.addItem(
                f"{info.name} ({info.n_items} images, {len(info.readers)} readers)", info.id)
        idx = self.session_combo.findData(current) if current else -1
        self.session_combo.setCurrentIndex(idx if idx >= 0 else self.session_combo.count() - 1)
        self.session_combo.blockSignals(False)
        self._on_session_changed()

    def _on_session_changed(self, *_a: Any) -> None:
        sid = self.session_combo.currentData()
        if sid != self.session_id:
            self.session_id = sid
            self._clear_item()
        self._update_controls()

    def _update_controls(self) -> None:
        has_session = self.session_id is not None
        reading = self.item is not None and not self._paused()
        for w in (self.export_btn, self.start_btn, self.refresh_btn, self.csv_btn):
            w.setEnabled(has_session and not self._busy)
        self.new_btn.setEnabled(not self._busy)
        self.import_btn.setEnabled(not self._busy)
        self.pause_btn.setEnabled(has_session and bool(self.reader))
        self.pause_btn.setText("Resume" if self._paused() else "Pause")
        for widget in (self.real_btn, self.syn_btn, self.conf_box, self.quality_box,
                       self.comment_edit):
            widget.setEnabled(reading)
        self.submit_btn.setEnabled(reading and self.answer_value is not None
                                   and self.confidence is not None)
        scale = self._scale()
        five = scale == (1, 5)
        for b in self.conf_buttons:
            b.setVisible(five)
        self.conf_spin.setVisible(not five)
        self.conf_box.setTitle(f"Confidence ({scale[0]}–{scale[1]})")

    def _scale(self) -> tuple[int, int]:
        if self.session_id is None:
            return (1, 5)
        try:
            info = self.store.session(self.session_id)
        except ReviewError:
            return (1, 5)
        return (info.confidence_min, info.confidence_max)

    def _paused(self) -> bool:
        return bool(self.session_id and self.reader and self.store.is_paused(self.session_id, self.reader))

    # -- sessions -----------------------------------------------------------------------
    def new_session(self, values: dict[str, Any] | None = None) -> None:
        """Create a session (asks with :class:`NewSessionDialog` when ``values`` is None)."""
        taken = {info.name for info in self.store.sessions()}
        if values is None:
            dlg = NewSessionDialog(self, taken)
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return
            values = dlg.values()
        if values.get("real") is None or values.get("synthetic") is None:
            QMessageBox.information(self, "Review", "Choose a real and a synthetic image pool.")
            return
        if str(values.get("name", "")).strip() in taken:
            QMessageBox.information(self, "Review", f"A session named {values['name']!r} already "
                                    "exists; choose another name.")
            return
        self._busy = True
        spec = CreateSpec(
            db=str(self.store.path), name=str(values["name"]), real=_paths(values["real"]),
            fake=_paths(values["synthetic"]), seed=values.get("seed"),
            scale=tuple(values.get("confidence_scale", (1, 5))),
            series=bool(values.get("series", True)), equalise=bool(values.get("equalise", True)),
            display_size=int(values.get("display_size", 0)))
        # bound methods (not lambdas) so the slots run in the GUI thread
        w = Worker(run_create, spec, name="create review session").connect_slots(
            progress=self._on_create_progress, finished=self._on_created, failed=self._on_failed,
            done=self._on_done)
        self.worker = w
        self.context.workers.submit(w)
        self._update_controls()

    def is_busy(self) -> bool:
        return self._busy

    def _on_create_progress(self, p: Any) -> None:
        self.read_label.setText(p.message)

    def _on_created(self, info: SessionInfo) -> None:
        self.refresh_sessions(select=info.id)
        warnings = list(info.fairness.warnings) if info.fairness else []
        text = "Session created: enter your name and press Start."
        if warnings:
            text += "\n\nWarning: " + "\n".join(warnings)
        self.read_label.setText(text)

    def _on_done(self) -> None:
        self._busy = False
        self._update_controls()

    def _on_failed(self, message: str, _tb: str) -> None:
        self.read_label.setText(message)
        QMessageBox.warning(self, "Review", message)

    def import_session(self, path: str | Path | None = None) -> str | None:
        if path is None:
            chosen = dialogs.open_file_name(self, "Import session", "Session (*.zip)")
            if not chosen:
                return None
            path = chosen
        try:
            sid = self.store.import_session(Path(path))
        except ReviewError as exc:
            QMessageBox.warning(self, "Import failed", str(exc))
            return None
        self.refresh_sessions(select=sid)
        self.read_label.setText("Session imported (answers merged).")
        return sid

    def export_session(self, path: str | Path | None = None) -> Path | None:
        if self.session_id is None:
            QMessageBox.information(self, "Export", "Choose a session first.")
            return None
        if path is None:
            chosen = dialogs.save_file_name(self, "Export session", "review_session.zip", "Session (*.zip)")
            if not chosen:
                return None
            path = chosen
        try:
            out = self.store.export_session(self.session_id, Path(path))
        except (ReviewError, OSError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None
        self.read_label.setText(f"Session exported to {out}")
        return out

    # -- reading --------------------------------------------------------------------------
    def start_reading(self) -> None:
        if self.session_id is None:
            QMessageBox.information(self, "Review", "Choose or create a session first.")
            return
        reader = self.reader_edit.text().strip()
        if not reader:
            QMessageBox.information(self, "Review", "Enter your reader name first.")
            return
        self.reader = reader
        try:
            self.store.start(self.session_id, reader)
        except ReviewError as exc:
            QMessageBox.warning(self, "Review", str(exc))
            return
        self.refresh_sessions(select=self.session_id)  # the reader count in the list
        self.tabs.setCurrentIndex(0)
        self._next()

    def _clear_item(self) -> None:
        self.item = None
        self.answer_value = None
        self.confidence = None
        self.quality = None
        for g in (self.answer_group, self.conf_group, self.quality_group):
            g.setExclusive(False)
            for b in g.buttons():
                b.setChecked(False)
            g.setExclusive(True)
        self.comment_edit.clear()

    def _next(self) -> None:
        assert self.session_id is not None
        self._clear_item()
        self.view.set_volume(None)  # let the last item go before the next one is loaded
        item = self.store.next_item(self.session_id, self.reader)
        done, total = self.store.progress(self.session_id, self.reader)
        self.read_progress.setRange(0, max(total, 1))
        self.read_progress.setValue(done)
        if item is None:
            self.view.set_volume(None)
            self.read_label.setText(f"Finished: {done} of {total} images rated. Thank you.")
            self._update_controls()
            return
        self.item = item
        self.view.set_axis(item.plane)  # a series opens in its own plane, on its middle slice
        # a projection image (chest film) has no patient orientation a reader could use
        # fairly; a series is shown in one canonical orientation, letters included
        self.view.set_orientation_hidden(not item.is_series)
        self.view.set_volume(item.to_volume())
        lo, hi = item.window
        self.view.set_window(hi - lo, (hi + lo) / 2.0)
        self.view.slider.setVisible(item.is_series)
        self.view.axis_combo.setEnabled(item.is_series)  # a 2D image has one plane
        self.view.setFocus()
        if self._scale() != (1, 5):
            self.confidence = self.conf_spin.value()
        self.read_label.setText(f"Image {done + 1} of {total}")
        self._update_controls()

    def set_answer(self, value: Truth) -> None:
        if self.item is None:
            return
        self.answer_value = Truth(value)
        (self.real_btn if value == Truth.REAL else self.syn_btn).setChecked(True)
        self._update_controls()

    def set_confidence(self, value: int) -> None:
        if self.item is None:
            return
        self.confidence = int(value)
        if self._scale() == (1, 5):
            b = self.conf_group.button(int(value))
            if b is not None:
                b.setChecked(True)
        self._update_controls()

    def set_quality(self, value: int) -> None:
        if self.item is None:
            return
        self.quality = int(value)
        b = self.quality_group.button(int(value))
        if b is not None:
            b.setChecked(True)
        self._update_controls()

    def submit(self) -> bool:
        """Store the current answer and show the next image; False when incomplete."""
        if self.item is None or self.session_id is None or self._paused():
            return False
        if self.answer_value is None or self.confidence is None:
            self.read_label.setText("Choose real or synthetic (R/S) and a confidence first.")
            return False
        try:
            self.store.answer(self.session_id, self.reader, self.item.item_id, self.answer_value,
                              self.confidence, self.quality, self.comment_edit.toPlainText().strip())
        except ReviewError as exc:
            QMessageBox.warning(self, "Review", str(exc))
            return False
        self._next()
        return True

    def toggle_pause(self) -> None:
        if self.session_id is None or not self.reader:
            return
        paused = not self._paused()
        self.store.set_paused(self.session_id, self.reader, paused)
        self.read_label.setText("Paused: press Resume to continue (you can close the app)."
                                if paused else "Resumed.")
        if not paused and self.item is None:
            self._next()
        self._update_controls()

    def handle_key(self, key: int) -> bool:
        """Shortcut keys while reading; True when the key was used."""
        if self.item is None or self._paused():
            return False
        if key == Qt.Key.Key_R:
            self.set_answer(Truth.REAL)
        elif key == Qt.Key.Key_S:
            self.set_answer(Truth.SYNTHETIC)
        elif key in _DIGITS:
            v = _DIGITS[key]  # type: ignore[index]
            if self._scale() == (1, 5) and self.confidence is None:
                self.set_confidence(v)
            else:
                self.set_quality(v)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
        elif key in _SCROLL:
            self.view.set_slice(self.view.slice_index() + _SCROLL[key])  # type: ignore[index]
        elif key == Qt.Key.Key_Home:
            self.view.set_slice(0)
        elif key == Qt.Key.Key_End:
            self.view.set_slice(self.view.n_slices() - 1)
        else:
            return False
        return True

    # -- results --------------------------------------------------------------------------
    def refresh_results(self) -> None:
        if self.session_id is None:
            return
        try:
            scored = run_results(str(self.store.path), self.session_id)
        except JobError as exc:
            QMessageBox.warning(self, "Review", str(exc))
            return
        res = self.results = scored.results
        fair = scored.session.fairness
        self.fairness_label.setText("\n".join(fair.lines()) if fair else
                                    "How items were shown was not recorded (an older session).")
        rows = [*res.readers, res.pooled] if len(res.readers) > 1 else res.readers
        self.readers_table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            vals = [r.reader, r.n, r.accuracy, r.sensitivity, r.specificity, r.auc,
                    r.mean_quality_real, r.mean_quality_synthetic]
            for j, v in enumerate(vals):
                self.readers_table.setItem(i, j, QTableWidgetItem(
                    f"{v:.3f}" if isinstance(v, float) else str(v)))
        parts = [f"Cohen κ {k.replace('|', ' vs ')}: {v:.3f}" for k, v in res.cohen.items()]
        if res.fleiss is not None:
            parts.append(f"Fleiss κ (all readers): {res.fleiss:.3f}")
        self.kappa_label.setText("; ".join(parts) or "Agreement needs two or more readers.")
        # per-image: opaque ids only (sources go to the CSV for the study organiser)
        self.images_table.setRowCount(len(res.per_image))
        for i, p in enumerate(res.per_image):
            vals = [p["item_id"], p["truth"], p["n_ratings"], p["called_synthetic"], p["accuracy"],
                    p["mean_quality"]]
            for j, v in enumerate(vals):
                self.images_table.setItem(i, j, QTableWidgetItem(
                    f"{v:.3f}" if isinstance(v, float) else str(v)))

    def export_csv(self, path: str | Path | None = None) -> list[Path]:
        """Write ``<name>.csv`` (every answer) and ``<name>_per_image.csv``."""
        if self.session_id is None:
            QMessageBox.information(self, "Export", "Choose a session first.")
            return []
        if path is None:
            chosen = dialogs.save_file_name(self, "Export ratings", "ratings.csv", "CSV (*.csv)")
            if not chosen:
                return []
            path = chosen
        p = Path(path)
        try:  # the same job as medgan review results --csv --summary-csv
            written = run_results(str(self.store.path), self.session_id, p,
                                  p.with_name(p.stem + "_per_image.csv")).written
        except (JobError, OSError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return []
        self.read_label.setText("Wrote " + " and ".join(w.name for w in written))
        return list(written)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        if self._store is not None:
            self._store.close()
            self._store = None
        super().closeEvent(event)
