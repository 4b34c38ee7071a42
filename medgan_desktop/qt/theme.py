"""The application's look: the dark (reading room) or light style sheet."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication


def apply_theme(app: QApplication, name: str, resources_dir: Path) -> None:
    """Apply the dark (reading room) or light theme to the application."""
    app.setStyle("Fusion")
    qss = resources_dir / "themes" / f"{name}.qss"
    app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.is_file() else "")
