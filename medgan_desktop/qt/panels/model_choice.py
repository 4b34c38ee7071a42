"""The model card window shared by the Sample and Translate panels.

Which model a list entry means, how it is verified and loaded, and its card text are core
concerns (:mod:`medgan_desktop.core.models.refs`); this module only shows the card.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QPushButton, QTextBrowser, QVBoxLayout, QWidget


def show_card_dialog(parent: QWidget, text: str, title: str = "Model card") -> QDialog:
    """A non-modal window showing a Markdown model card."""
    dlg = QDialog(parent)
    dlg.setWindowTitle(title)
    lay = QVBoxLayout(dlg)
    view = QTextBrowser()
    view.setMarkdown(text)
    lay.addWidget(view)
    close = QPushButton("Close")
    close.clicked.connect(dlg.accept)
    lay.addWidget(close)
    dlg.resize(640, 520)
    dlg.show()
    return dlg
