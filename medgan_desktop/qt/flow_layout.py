"""A layout that wraps its widgets onto the next row when the row is full.

Toolbars in the viewers and button rows in the side panels use it, so a narrow window
or dock moves controls down instead of widening (and squeezing the docks beside) the
widget. This is Qt's FlowLayout example, typed.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QWidget


class FlowLayout(QLayout):
    """Left-to-right rows of widgets that wrap (height-for-width)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(QMargins(2, 2, 2, 2))

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt API)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 (Qt API)
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 (Qt API)
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 (Qt API)
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt API)
        return self._do_layout(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 (Qt API)
        super().setGeometry(rect)
        self._do_layout(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        # one row when there is room
        m = self.contentsMargins()
        w = sum(i.sizeHint().width() for i in self._items) + self._spacing * max(len(self._items) - 1, 0)
        h = max((i.sizeHint().height() for i in self._items), default=0)
        return QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802 (Qt API)
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _gap(self, item: QLayoutItem, orientation: Qt.Orientation) -> int:
        if self._spacing >= 0:
            return self._spacing
        widget = item.widget()
        style = widget.style() if widget is not None else None
        if style is None:
            return 6
        return style.layoutSpacing(QSizePolicy.ControlType.PushButton, QSizePolicy.ControlType.PushButton,
                                   orientation, None, widget)

    def _do_layout(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        rows: list[list[tuple[QLayoutItem, QSize, int]]] = [[]]
        x = area.x()
        for item in self._items:
            widget = item.widget()
            if widget is not None and widget.isHidden():
                continue
            hint = item.sizeHint()
            if x + hint.width() > area.right() + 1 and rows[-1]:
                rows.append([])
                x = area.x()
            rows[-1].append((item, hint, x))
            x += hint.width() + self._gap(item, Qt.Orientation.Horizontal)
        y = area.y()
        for row in rows:
            if not row:
                continue
            row_h = max(h.height() for _i, h, _x in row)
            if apply:
                for item, hint, left in row:
                    width = min(hint.width(), area.width())
                    top = y + (row_h - hint.height()) // 2  # centred in the row
                    item.setGeometry(QRect(QPoint(left, top), QSize(width, hint.height())))
            y += row_h + self._gap(row[0][0], Qt.Orientation.Vertical)
        used = y - self._spacing if any(rows) else y
        return used - rect.y() + m.bottom()


def flow_row(*widgets: QWidget, parent: QWidget | None = None) -> QWidget:
    """A widget holding ``widgets`` in one row that wraps when narrow."""
    row = QWidget(parent)
    lay = FlowLayout(row)
    lay.setContentsMargins(QMargins(0, 0, 0, 0))
    for w in widgets:
        lay.addWidget(w)
    return row
