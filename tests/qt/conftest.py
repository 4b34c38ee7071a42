"""Qt test fixtures: the platform to test on, and a guard against leaked QThreads.

With no display the tests run on Qt's offscreen platform (and VTK renders with OSMesa). With
``DISPLAY`` set they run on that display: a real X server (Xvfb in CI's real-display tests)
shows what a user would see, which the offscreen platform hides.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator

import pytest

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")

from PySide6.QtCore import QThread  # noqa: E402


@pytest.fixture(autouse=True)
def _no_blocking_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected modal question fails the test at once instead of blocking it forever;
    a test that expects one patches ``QMessageBox.question`` itself."""
    from PySide6.QtWidgets import QMessageBox

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"unexpected modal question: {args[2] if len(args) > 2 else args}")

    monkeypatch.setattr(QMessageBox, "question", refuse)


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(monkeypatch: pytest.MonkeyPatch, qtbot) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Fail any test that leaves a QThread running (as napari's conftest does)."""
    started: weakref.WeakSet[QThread] = weakref.WeakSet()
    original = QThread.start

    def tracking_start(self: QThread, *args: object) -> None:
        started.add(self)
        original(self, *args)

    monkeypatch.setattr(QThread, "start", tracking_start)
    yield
    # give finishing threads a moment, then insist
    for t in list(started):
        try:
            qtbot.waitUntil(lambda t=t: not t.isRunning(), timeout=10000)
        except AssertionError:
            pass
    dangling = [t.objectName() or repr(t) for t in list(started) if t.isRunning()]
    for t in list(started):
        if t.isRunning():
            t.quit()
            t.wait(5000)
    if dangling:
        pytest.fail(f"test left QThread(s) running: {dangling}")
