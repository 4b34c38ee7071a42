"""File → Import model…: pick a run folder or a ``.safetensors`` file, an optional card and an id.

The main window passes the choice to :meth:`ModelRegistry.import_model`, which copies the
model into the user's models folder and records its sha256 (``medgan models import`` does
the same from the command line).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRegularExpression
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.qt import dialogs


class ImportModelDialog(QDialog):
    """Source (folder or weights file), optional Markdown card, optional id."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import model")
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Import a training run folder, or a <b>.safetensors</b> weights file (with its "
            "run.json beside it, or written by this application, which stores the run "
            "description inside the file). The model is copied into your data folder and its "
            "weights are checked against a recorded sha256 every time it is loaded."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)

        form = QFormLayout()
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("run folder or .safetensors file")
        self.source_edit.textChanged.connect(self._update)
        folder_btn = QPushButton("Folder…")
        folder_btn.clicked.connect(self.choose_folder)
        file_btn = QPushButton("Weights file…")
        file_btn.clicked.connect(self.choose_file)
        row = QHBoxLayout()
        row.addWidget(self.source_edit, 1)
        row.addWidget(folder_btn)
        row.addWidget(file_btn)
        form.addRow("Model", row)

        self.card_edit = QLineEdit()
        self.card_edit.setPlaceholderText("optional: card.md beside the model is used, else a stub")
        card_btn = QPushButton("Browse…")
        card_btn.clicked.connect(self.choose_card)
        crow = QHBoxLayout()
        crow.addWidget(self.card_edit, 1)
        crow.addWidget(card_btn)
        form.addRow("Model card", crow)

        self.id_edit = QLineEdit()
        self.id_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"[A-Za-z0-9_-]*"), self))
        self.id_edit.setPlaceholderText("default: the folder or file name")
        form.addRow("Id", self.id_edit)
        lay.addLayout(form)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(560)
        self._update()

    def _update(self, *_: object) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.source_edit.text().strip()))
        src = self.source_edit.text().strip()
        if src:
            p = Path(src)
            default = p.stem if p.suffix == ".safetensors" and p.stem != "weights" else (
                p.parent.name if p.suffix == ".safetensors" else p.name)
            self.id_edit.setPlaceholderText(f"default: {default}")

    def choose_folder(self) -> None:
        folder = dialogs.existing_folder(self, "Run folder to import")
        if folder:
            self.source_edit.setText(folder)

    def choose_file(self) -> None:
        path = dialogs.open_file_name(self, "Weights file to import", "Weights (*.safetensors)")
        if path:
            self.source_edit.setText(path)

    def choose_card(self) -> None:
        path = dialogs.open_file_name(self, "Model card", "Markdown (*.md *.markdown *.txt);;All files (*)")
        if path:
            self.card_edit.setText(path)

    def values(self) -> tuple[Path, str | None, Path | None]:
        """``(source, model id or None, card or None)``."""
        card = self.card_edit.text().strip()
        return (Path(self.source_edit.text().strip()), self.id_edit.text().strip() or None,
                Path(card) if card else None)
