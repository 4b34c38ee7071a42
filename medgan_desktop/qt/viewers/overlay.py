"""What is painted over and beside a slice view: corner text, orientation letters, the
scale bar, the SYNTHETIC banner (:class:`SliceOverlay`) and the colour bar (:class:`ColorBar`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from medgan_desktop.qt.viewers.slice_view import SliceView


class SliceOverlay(QWidget):
    """Text, orientation labels, scale bar and the SYNTHETIC banner painted over the image."""

    def __init__(self, view: SliceView, parent: QWidget) -> None:
        super().__init__(parent)
        self._view = view
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802
        v = self._view
        if v._volume is None or v._mapping is None:
            if v.empty_hint:
                p = QPainter(self)
                p.setPen(QColor("#8a9099"))
                p.drawText(self.rect().adjusted(20, 20, -20, -20),
                           int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), v.empty_hint)
                p.end()
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        font = QFont(self.font())
        font.setPointSize(9)
        p.setFont(font)
        fm = p.fontMetrics()
        lh = fm.height()

        half = max(w / 2 - 14, 40)  # corner text stays clear of the centred edge labels

        def text(x: float, y: float, s: str, align: Qt.AlignmentFlag, color: str = "#f0e68c",
                 elide: bool = True) -> None:
            if elide:
                s = p.fontMetrics().elidedText(s, Qt.TextElideMode.ElideRight, int(half))
            rect = QRectF(x, y, w - 12, lh)
            if align & Qt.AlignmentFlag.AlignRight:
                rect = QRectF(0, y, x, lh)
            elif align & Qt.AlignmentFlag.AlignHCenter:
                rect = QRectF(0, y, w, lh)
            p.setPen(QColor(0, 0, 0, 200))
            p.drawText(rect.translated(1, 1), int(align), s)
            p.setPen(QColor(color))
            p.drawText(rect, int(align), s)

        left = Qt.AlignmentFlag.AlignLeft
        right = Qt.AlignmentFlag.AlignRight
        centre = Qt.AlignmentFlag.AlignHCenter
        for n, line in enumerate(v.corner_text("top_left")):
            text(6, 4 + n * lh, line, left)
        for n, line in enumerate(v.corner_text("top_right")):
            text(w - 6, 4 + n * lh, line, right)
        bl = v.corner_text("bottom_left")
        for n, line in enumerate(bl):
            text(6, h - 4 - (len(bl) - n) * lh, line, left)
        br = v.corner_text("bottom_right")
        for n, line in enumerate(br):
            text(w - 6, h - 4 - (len(br) - n) * lh, line, right)

        # orientation labels at the edge centres
        top, bottom, lft, rgt = ("", "", "", "") if v.orientation_hidden() else v._mapping.labels
        bold = QFont(font)
        bold.setBold(True)
        bold.setPointSize(11)
        p.setFont(bold)
        blh = p.fontMetrics().height()
        text(0, 2, top, centre, "#7fffd4", elide=False)
        text(0, h - blh - 2, bottom, centre, "#7fffd4", elide=False)
        p.setPen(QColor("#7fffd4"))
        p.drawText(QRectF(4, h / 2 - blh / 2, 40, blh), int(left), lft)
        p.drawText(QRectF(w - 44, h / 2 - blh / 2, 40, blh), int(right), rgt)
        p.setFont(font)

        self._paint_scale_bar(p, w, h)
        if v.synthetic_banner_visible():
            self._paint_banner(p, w)
        p.end()

    def _paint_scale_bar(self, p: QPainter, w: int, h: int) -> None:
        if self._view.geometry_hidden():
            return
        mm_per_px = self._view.mm_per_pixel()
        if not mm_per_px or not math.isfinite(mm_per_px):
            return
        target = mm_per_px * h * 0.25
        length = _nice_length(target)
        px = length / mm_per_px
        x = w - 18
        y0 = h * 0.62
        p.setPen(QPen(QColor("#ffffff"), 2))
        p.drawLine(QPointF(x, y0), QPointF(x, y0 + px))
        for y in (y0, y0 + px):
            p.drawLine(QPointF(x - 5, y), QPointF(x, y))
        label = f"{length:g} mm"
        p.drawText(QRectF(x - 80, y0 + px + 2, 76, p.fontMetrics().height()),
                   int(Qt.AlignmentFlag.AlignRight), label)

    def _paint_banner(self, p: QPainter, w: int) -> None:
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSize(12)
        p.setFont(font)
        fm = p.fontMetrics()
        label = "SYNTHETIC"
        bw, bh = fm.horizontalAdvance(label) + 24, fm.height() + 6
        # below the two lines of corner text, so a narrow pane does not hide either
        top = 2 * QFontMetrics(self.font()).height() + 10
        rect = QRectF((w - bw) / 2, top, bw, bh)
        p.fillRect(rect, QColor(200, 0, 0, 230))
        p.setPen(QColor("#ffffff"))
        p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), label)


def _nice_length(target: float) -> float:
    """The largest 1/2/5 x 10^n not above ``target`` (mm)."""
    if target <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * e <= target:
            return float(m * e)
    return float(e)


class ColorBar(QWidget):
    """A vertical colour bar with min / centre / max labels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lut: NDArray[np.uint8] | None = None
        self._lo = 0.0
        self._hi = 1.0
        self._units = ""
        self.setFixedWidth(78)

    def set_range(self, lut: NDArray[np.uint8] | None, lo: float, hi: float, units: str) -> None:
        self._lut, self._lo, self._hi, self._units = lut, lo, hi, units
        self.update()

    def paintEvent(self, _event: Any) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#101010"))
        top, bottom = 20, self.height() - 20
        grad = QLinearGradient(0, bottom, 0, top)
        lut = self._lut if self._lut is not None else np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)
        for n in range(0, 256, 16):
            r, g, b = (int(c) for c in lut[n])
            grad.setColorAt(n / 255.0, QColor(r, g, b))
        r, g, b = (int(c) for c in lut[255])
        grad.setColorAt(1.0, QColor(r, g, b))
        p.fillRect(QRectF(6, top, 18, bottom - top), grad)
        p.setPen(QColor("#e0e0e0"))
        fh = p.fontMetrics().height()
        for frac, val in ((1.0, self._hi), (0.5, (self._lo + self._hi) / 2), (0.0, self._lo)):
            y = bottom - frac * (bottom - top)
            p.drawLine(QPointF(24, y), QPointF(28, y))
            p.drawText(QRectF(30, y - fh / 2, 48, fh), int(Qt.AlignmentFlag.AlignLeft), f"{val:g}")
        p.drawText(QRectF(0, 2, 78, fh), int(Qt.AlignmentFlag.AlignHCenter), self._units)
        p.end()
