"""Help > Mouse and keyboard: the bindings, in the words radiology viewers use.

The table is the single place the bindings are written down for users; the viewer and
panel code implements them (``slice_view``, ``volume_view``, ``review``, ``main_window``)
and ``tests/qt/test_real_display.py`` / ``test_app_shell.py`` press some of them.
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

BINDINGS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("2D, MPR and Compare views", (
        ("Mouse wheel", "next / previous slice"),
        ("Arrow keys, PageUp / PageDown", "one slice / ten slices"),
        ("Home / End", "first / last slice"),
        ("Right-drag", "window (left-right) and level (up-down)"),
        ("Left-drag", "pan"),
        ("Middle-drag or Ctrl+wheel", "zoom"),
        ("Left-click", "report the voxel value; in MPR, move the crosshair"),
        ("1 … 9", "window presets in menu order (1 = the series' own window)"),
        ("R", "reset zoom, pan and window"),
        ("I", "invert the grey scale"),
    )),
    ("3D view", (
        ("Left-drag", "rotate"),
        ("Mouse wheel", "zoom"),
        ("Preset list", "CT bone, CT soft tissue, MR default or MIP rendering"),
        ("Crop", "limit the rendered volume along one axis"),
        ("Reset camera", "back to the front view"),
    )),
    ("Viewer modes", (
        ("F5 / F6 / F7 / F8", "2D / MPR / Compare / 3D"),
        ("Ctrl+Shift+C", "copy the view to the clipboard"),
        ("Ctrl+E", "export the view as PNG"),
    )),
    ("Panels", (
        ("Ctrl+1", "Studies"),
        ("Ctrl+2", "Translate"),
        ("Ctrl+3", "Train"),
        ("Ctrl+4", "Sample"),
        ("Ctrl+5", "Evaluate"),
        ("Ctrl+6", "Review"),
        ("View > Reset layout", "every panel back in its place"),
    )),
    ("Files", (
        ("Ctrl+O", "open a folder of DICOM files"),
        ("Ctrl+Shift+F", "open an image file (NIfTI, MHA, NRRD, PNG, DICOM)"),
        ("Ctrl+Shift+O", "open the sample study"),
        ("Ctrl+Shift+M", "import a model"),
        ("Drag and drop", "a folder or file onto the window opens it"),
    )),
    ("Reader study (Review panel, while reading)", (
        ("R / S", "answer real / synthetic"),
        ("1 … 5", "confidence, then image quality"),
        ("Enter", "submit and show the next image"),
        ("Arrow keys, Home / End", "scroll the slices of a volume item"),
    )),
)


def bindings_html() -> str:
    """The bindings as an HTML page (one table per group)."""
    parts = ["<h2>Mouse and keyboard</h2>"]
    for group, rows in BINDINGS:
        parts.append(f"<h3>{escape(group)}</h3><table cellspacing='0' cellpadding='3'>")
        parts.extend(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in rows)
        parts.append("</table>")
    return "".join(parts)


class BindingsDialog(QDialog):
    """A scrollable page of the bindings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Mouse and keyboard")
        self.resize(560, 640)
        self.text = QTextBrowser(self)
        self.text.setHtml(bindings_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)
