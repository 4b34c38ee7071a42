"""ReviewPanel layout: the blinded viewer's toolbar is never clipped, narrow or wide."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from medgan_desktop.core.config import Settings
from medgan_desktop.core.review.session import ReviewStore
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.review import ReviewPanel


def _clipped(panel: ReviewPanel) -> list[str]:
    """Toolbar widgets narrower than they need, or sticking out of the viewer."""
    view = panel.view
    out = []
    for w in view.toolbar.findChildren(QWidget):
        if not w.isVisible():
            continue
        need = (w.minimumSizeHint() if isinstance(w, QComboBox) else w.sizeHint()).width()
        name = w.text() if isinstance(w, QLabel) or hasattr(w, "text") else type(w).__name__
        if w.width() < need:
            out.append(f"{name}: {w.width()} < {need}")
        right = w.mapTo(view, w.rect().topRight()).x()
        if right > view.width():
            out.append(f"{name}: ends at {right} > {view.width()}")
    return out


def test_toolbar_fits_at_the_docked_width_and_when_wide(qtbot, tmp_path):
    panel = ReviewPanel(AppContext(Settings.default()), store=ReviewStore(tmp_path / "r.sqlite"))
    qtbot.addWidget(panel)
    panel.show()
    panel.resize(540, 820)  # the main window's default dock width
    qtbot.waitUntil(lambda: panel.width() == 540)
    qtbot.wait(10)
    assert not panel.side_by_side()
    assert _clipped(panel) == []
    assert panel.view.width() > 400  # the image gets the dock's width, not a quarter of it
    panel.resize(1400, 820)  # undocked and wide: controls beside the image
    qtbot.waitUntil(lambda: panel.side_by_side())
    qtbot.wait(10)
    assert _clipped(panel) == []
    assert panel.view.width() > panel.submit_btn.width()
    panel.resize(540, 820)  # and back
    qtbot.waitUntil(lambda: not panel.side_by_side())
    qtbot.wait(10)
    assert _clipped(panel) == []
