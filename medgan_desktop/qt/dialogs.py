"""File dialogs that start where the user was: the last folder used, else the home folder.

Qt's static dialogs start in the program's working directory when given no folder, which
on a workstation is the install folder; radiology viewers (3D Slicer, Horos) remember
the last folder instead. The folder is kept in QSettings across sessions.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

_KEY = "dialogs/last_folder"


def last_folder() -> str:
    """The folder the next dialog opens in."""
    value = QSettings().value(_KEY, "")
    folder = str(value) if value else ""
    return folder if folder and Path(folder).is_dir() else str(Path.home())


def remember(path: str) -> None:
    """Remember the folder of ``path`` (a file's folder, or the folder itself)."""
    if not path:
        return
    p = Path(path)
    QSettings().setValue(_KEY, str(p if p.is_dir() else p.parent))


def open_file_name(parent: QWidget | None, title: str, filters: str = "All files (*)") -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, last_folder(), filters)
    remember(path)
    return path


def open_file_names(parent: QWidget | None, title: str, filters: str = "All files (*)") -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, title, last_folder(), filters)
    if paths:
        remember(paths[0])
    return list(paths)


def existing_folder(parent: QWidget | None, title: str, start: str = "") -> str:
    folder = QFileDialog.getExistingDirectory(parent, title, start or last_folder())
    remember(folder)
    return folder


def save_file_name(parent: QWidget | None, title: str, name: str = "", filters: str = "All files (*)") -> str:
    start = str(Path(last_folder()) / name) if name else last_folder()
    path, _ = QFileDialog.getSaveFileName(parent, title, start, filters)
    remember(path)
    return path
