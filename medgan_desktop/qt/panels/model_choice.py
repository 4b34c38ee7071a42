"""The model card window shared by the Sample and Translate panels.

Which model a list entry means, how it is verified and loaded, and its card text are core
concerns (:mod:`medgan_desktop.core.models.refs`); this module only shows the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from PySide6.QtWidgets import QDialog, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from medgan_desktop.core.models.refs import card_text

if TYPE_CHECKING:
    from medgan_desktop.qt.context import AppContext


class ModelCardMixin:
    """``card_text()`` and ``show_card()`` for a panel with a model list (``current_ref()``)."""

    context: AppContext
    _card_dialog: QDialog | None = None

    def current_ref(self) -> str | None:
        """The chosen model's reference; every panel using the mixin defines it (the Sample
        and Translate panels do), so this base is never reached from the GUI."""
        raise NotImplementedError

    def card_text(self) -> str:
        """The model card (card.md) or, for a plain run, a summary of its run.json."""
        return card_text(self.current_ref(), self.context.paths)

    def show_card(self) -> QDialog:
        self._card_dialog = show_card_dialog(cast(QWidget, self), self.card_text())
        return self._card_dialog


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
