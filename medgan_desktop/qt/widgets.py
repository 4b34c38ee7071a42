"""Small widgets and image helpers the panels share."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLayout,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

_PIXMAP_SIDE = 240
_COMBO_CHARS = 10  # a combo box in a dock shows at least this many characters, then elides
_BUTTON_CHARS = 44  # a check box or button label longer than this moves into its tooltip


def compact_for_dock(panel: QWidget) -> None:
    """Let a panel shrink to a side dock's width instead of widening it.

    Form rows wrap their field under the label when narrow, combo boxes size to a
    minimum number of characters rather than their longest item (the full text stays in
    the drop-down and the tooltip), and very long check-box labels are shortened with
    the whole sentence in the tooltip. Applied to every docked panel by the main window.
    """
    for form in panel.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    for combo in panel.findChildren(QComboBox):
        if combo.sizeAdjustPolicy() != QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon:
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(min(combo.minimumContentsLength() or _COMBO_CHARS, _COMBO_CHARS))
        combo.currentTextChanged.connect(combo.setToolTip)
    for button in panel.findChildren(QAbstractButton):
        text = button.text()
        if len(text) > _BUTTON_CHARS and "(" in text:
            short = text[: text.index("(")].rstrip()
            if short:
                button.setText(short)
                button.setToolTip(button.toolTip() or text)


def array_pixmap(arr: NDArray[Any]) -> QPixmap:
    """A uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB array as a pixmap (copied)."""
    arr = np.ascontiguousarray(arr)
    fmt = QImage.Format.Format_Grayscale8 if arr.ndim == 2 else QImage.Format.Format_RGB888
    img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], fmt)
    return QPixmap.fromImage(img.copy())


def unit_pixmap(img: NDArray[Any]) -> QPixmap:
    """A float ``(H, W)`` image in [0, 1] as a grey pixmap."""
    return array_pixmap((np.clip(img, 0, 1) * 255).astype(np.uint8))


class GridImage(QLabel):
    """A sample/preview grid scaled to the label's width, so it never widens the panel."""

    def __init__(self, text: str, side: int = _PIXMAP_SIDE) -> None:
        super().__init__(text)
        self._source: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(120, 120)
        self.setFixedHeight(side)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_image(self, pm: QPixmap) -> None:
        self._source = pm
        self._rescale()

    def clear_image(self, text: str) -> None:
        self._source = None
        self.clear()
        self.setText(text)

    def _rescale(self) -> None:
        if self._source is not None and not self._source.isNull():
            side = max(1, min(self.width(), self.height()))
            self.setPixmap(
                self._source.scaled(
                    side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            )

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()


class FormGrid(QWidget):
    """``label: field`` pairs in ``columns`` columns that fold into one column when narrow.

    The two-column form fits a wide side dock; on a small screen the dock may be narrower
    than two columns need, and the grid then lays the same pairs out one under another
    instead of widening the dock (and squeezing the viewer). An empty label makes the field
    span its label's cell too.
    """

    _SPACING = 8

    def __init__(self, pairs: list[tuple[str, QWidget]], columns: int = 2,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns = max(1, columns)
        self._pairs: list[tuple[QLabel | None, QWidget]] = []
        for text, w in pairs:
            lab: QLabel | None = None
            if text:
                lab = QLabel(text)
                lab.setToolTip(w.toolTip())
                lab.setBuddy(w)
            self._pairs.append((lab, w))
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(self._SPACING)
        # The widget's minimum comes from minimumSizeHint (one column), not from whichever
        # arrangement is current.
        self._grid.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._shown = 0
        self._arrange(self._columns)

    @property
    def shown_columns(self) -> int:
        """How many columns the pairs are laid out in now."""
        return self._shown

    def _pair_width(self, lab: QLabel | None, w: QWidget) -> tuple[int, int]:
        field = 0 if w.isHidden() else w.minimumSizeHint().width()
        return (lab.minimumSizeHint().width() if lab is not None else 0), field

    def _width_for(self, columns: int) -> int:
        """The narrowest width at which ``columns`` columns fit."""
        total = 0
        for c in range(columns):
            label_w = field_w = span_w = 0
            for i, (lab, w) in enumerate(self._pairs):
                if i % columns != c:
                    continue
                lw, fw = self._pair_width(lab, w)
                if lab is None:
                    span_w = max(span_w, fw)
                else:
                    label_w, field_w = max(label_w, lw), max(field_w, fw)
            total += max(span_w, label_w + self._SPACING + field_w)
        return total + self._SPACING * (columns - 1)

    def _arrange(self, columns: int) -> None:
        if columns == self._shown:
            return
        for lab, w in self._pairs:
            if lab is not None:
                self._grid.removeWidget(lab)
            self._grid.removeWidget(w)
        for c in range(2 * max(self._columns, 1)):
            self._grid.setColumnStretch(c, 0)
        for i, (lab, w) in enumerate(self._pairs):
            r, c = divmod(i, columns)
            if lab is not None:
                self._grid.addWidget(lab, r, 2 * c)
                self._grid.addWidget(w, r, 2 * c + 1)
            else:
                self._grid.addWidget(w, r, 2 * c, 1, 2)
        for c in range(columns):
            self._grid.setColumnStretch(2 * c + 1, 1)
        self._shown = columns
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self._width_for(1), self._grid.minimumSize().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self._width_for(self._columns), self._grid.sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        width = event.size().width()
        self._arrange(self._columns if width >= self._width_for(self._columns) else 1)
        super().resizeEvent(event)


def form_grid(pairs: list[tuple[str, QWidget]], columns: int = 2) -> FormGrid:
    """``label: field`` pairs in ``columns`` columns that fold into one when the dock is narrow
    (an empty label: the field spans both cells). See :class:`FormGrid`."""
    return FormGrid(pairs, columns)


def spin_box(lo: int, hi: int, value: int | None = None, tip: str = "") -> QSpinBox:
    """An integer spin box with its range, start value (default ``lo``) and tooltip."""
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(lo if value is None else value)
    if tip:
        box.setToolTip(tip)
    return box


def double_spin_box(lo: float, hi: float, value: float, step: float, decimals: int = 2,
                    tip: str = "") -> QDoubleSpinBox:
    """A decimal spin box with its range, step, decimals, start value and tooltip."""
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    if tip:
        box.setToolTip(tip)
    return box


def note_label(text: str) -> QLabel:
    """A wrapped, top-aligned explanatory note with margins."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setContentsMargins(8, 8, 8, 8)
    return label


class NoticeBar(QLabel):
    """A yellow bar for what the user must read (loader warnings, a model that does not fit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet("background: #fff3cd; color: #5c4400; padding: 4px; border-radius: 3px;")
        self.setVisible(False)
        self._lines: list[str] = []

    def show_lines(self, lines: list[str]) -> None:
        self._lines = [ln for ln in dict.fromkeys(lines) if ln]
        self.setText("\n".join(f"⚠ {ln}" for ln in self._lines))
        self.setVisible(bool(self._lines))

    def add(self, line: str) -> None:
        self.show_lines([*self._lines, line])

    def lines(self) -> list[str]:
        return list(self._lines)
