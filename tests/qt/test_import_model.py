"""File → Import model…: folder or bare weights file, refresh of the model lists, replace prompt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.models.registry import ModelRegistry
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.main_window import MainWindow
from medgan_desktop.qt.panels.import_model_dialog import ImportModelDialog

REPO = Path(__file__).resolve().parents[2]
CXR = REPO / "models" / "cxr_cgan_64"


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    answers: list[QMessageBox.StandardButton] = []
    asked: list[str] = []
    warnings: list[str] = []

    def question(*a: object, **k: object) -> QMessageBox.StandardButton:
        asked.append(str(a[2]))
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(str(a[2])))
    ctx = AppContext(Settings.default())
    win = MainWindow(ctx, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.answers, win.asked, win.warnings = answers, asked, warnings  # type: ignore[attr-defined]
    yield win
    ctx.workers.stop_all()


def _sample_ids(win: MainWindow) -> list[str]:
    combo = win.panels["sample"].model_combo  # type: ignore[attr-defined]
    return [str(combo.itemData(i)) for i in range(combo.count())]


def test_menu_has_import_model(window: MainWindow) -> None:
    file_menu = window.menuBar().actions()[0].menu()
    assert any(a.text().replace("&", "") == "Import model…" for a in file_menu.actions())


def test_import_folder_refreshes_lists_and_asks_before_replacing(window: MainWindow) -> None:
    entry = window.import_model(CXR, "chest")
    assert entry is not None and entry.id == "chest"
    assert "model:chest" in _sample_ids(window)  # the Sample panel refreshed
    assert "Imported model chest" in window.statusBar().currentMessage()

    window.answers.append(QMessageBox.StandardButton.No)  # type: ignore[attr-defined]
    before = entry.weights_path.stat().st_mtime_ns
    assert window.import_model(CXR, "chest") is None
    assert "already exists" in window.asked[-1]  # type: ignore[attr-defined]
    assert entry.weights_path.stat().st_mtime_ns == before

    window.answers.append(QMessageBox.StandardButton.Yes)  # type: ignore[attr-defined]
    again = window.import_model(CXR, "chest")
    assert again is not None and len(window.asked) == 2  # type: ignore[attr-defined]
    assert _sample_ids(window).count("model:chest") == 1


def test_bare_weights_file_and_clear_errors(window: MainWindow, tmp_path: Path) -> None:
    from medgan_desktop.core.models.runs import export_inference

    exported = export_inference(CXR, tmp_path / "export")
    bare = tmp_path / "inbox" / "chest_small.safetensors"
    bare.parent.mkdir()
    shutil.copy(exported, bare)
    card = tmp_path / "inbox" / "card.md"
    card.write_text("# chest_small\n\nResearch only.\n")
    entry = window.import_model(bare, None, card)
    assert entry is not None and entry.id == "chest_small" and entry.method == "cgan"
    assert entry.card_text().startswith("# chest_small")
    assert ModelRegistry(window.context.paths).resolve("chest_small") == entry.folder

    from safetensors.torch import load_file, save_file

    plain = tmp_path / "plain" / "old.safetensors"  # as older versions wrote: no run inside
    plain.parent.mkdir()
    save_file(load_file(str(exported)), str(plain), metadata={"method": "cgan"})
    assert window.import_model(plain) is None
    assert "no run.json beside it" in window.warnings[-1]  # type: ignore[attr-defined]
    assert window.import_model(tmp_path / "nothing_here") is None
    assert "does not exist" in window.warnings[-1]  # type: ignore[attr-defined]


def test_dialog_values(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dlg = ImportModelDialog()
    qtbot.addWidget(dlg)
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dlg.source_edit.setText(str(tmp_path / "x" / "head.safetensors"))
    assert ok.isEnabled() and "head" in dlg.id_edit.placeholderText()
    assert dlg.values() == (tmp_path / "x" / "head.safetensors", None, None)
    dlg.id_edit.setText("my_head")
    dlg.card_edit.setText(str(tmp_path / "c.md"))
    assert dlg.values() == (tmp_path / "x" / "head.safetensors", "my_head", tmp_path / "c.md")
