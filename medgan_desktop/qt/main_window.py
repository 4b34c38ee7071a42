"""The main window: study browser on the left, viewers in the centre, work panels docked."""

from __future__ import annotations

import importlib
import json
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop import APP_NAME, __version__
from medgan_desktop.qt.context import AppContext

if TYPE_CHECKING:
    from medgan_desktop.core.models.registry import ModelEntry

log = logging.getLogger(__name__)

MAX_RECENT = 8


@dataclass(frozen=True)
class PanelSpec:
    """Where a dockable panel lives and how it is shown."""

    key: str
    title: str
    module: str
    cls: str
    area: Qt.DockWidgetArea
    shortcut: str = ""


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("browser", "Studies", "medgan_desktop.qt.panels.browser", "BrowserPanel",
              Qt.DockWidgetArea.LeftDockWidgetArea, "Ctrl+1"),
    PanelSpec("translate", "Translate", "medgan_desktop.qt.panels.translate", "TranslatePanel",
              Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+2"),
    PanelSpec("train", "Train", "medgan_desktop.qt.panels.train", "TrainPanel",
              Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+3"),
    PanelSpec("sample", "Sample", "medgan_desktop.qt.panels.sample", "SamplePanel",
              Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+4"),
    PanelSpec("evaluate", "Evaluate", "medgan_desktop.qt.panels.evaluate", "EvaluatePanel",
              Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+5"),
    PanelSpec("review", "Review", "medgan_desktop.qt.panels.review", "ReviewPanel",
              Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+6"),
)


class UnavailablePanel(QWidget):
    """An honest placeholder shown when a panel could not be built."""

    def __init__(self, title: str, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        label = QLabel(f"<b>{title} is not available.</b><br><br>{reason}")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(label)
        lay.addStretch(1)
        self.reason = reason


class MainWindow(QMainWindow):
    """Study browser, central viewers and dockable Train/Sample/Translate/Evaluate/Review."""

    def __init__(self, context: AppContext, settings: QSettings | None = None) -> None:
        super().__init__()
        self.context = context
        self.qsettings = settings or QSettings()
        self.setWindowTitle(f"medgan desktop {__version__}")
        self.resize(1500, 950)
        self.setAcceptDrops(True)
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.failures: dict[str, str] = {}

        self.viewer = self._build_viewer()
        self.setCentralWidget(self.viewer)
        for spec in PANELS:
            self._add_panel(spec)
        right = [self.docks[s.key] for s in PANELS if s.area == Qt.DockWidgetArea.RightDockWidgetArea]
        for dock in right[1:]:
            self.tabifyDockWidget(right[0], dock)
        if right:
            right[0].raise_()
        self._right_docks = right
        self._sized = False

        self._build_menus()
        self._connect_context()
        self.statusBar().showMessage("Ready. File > Open folder to import a study.")
        self._restore_state()

    # -- construction -----------------------------------------------------------------
    def _build_viewer(self) -> QWidget:
        try:
            mod = importlib.import_module("medgan_desktop.qt.viewers.viewer_area")
            widget: QWidget = mod.ViewerArea(self.context)
            return widget
        except Exception as exc:  # shown honestly in the window and reported by --smoke
            self.failures["viewer"] = f"{exc}\n{traceback.format_exc()}"
            log.error("viewer failed to build: %s", exc)
            return UnavailablePanel("The viewer", f"It failed to load: {exc}")

    def _add_panel(self, spec: PanelSpec) -> None:
        try:
            mod = importlib.import_module(spec.module)
            panel: QWidget = getattr(mod, spec.cls)(self.context)
        except Exception as exc:  # shown honestly in the window and reported by --smoke
            self.failures[spec.key] = f"{exc}\n{traceback.format_exc()}"
            log.error("panel %s failed to build: %s", spec.key, exc)
            panel = UnavailablePanel(spec.title, f"It failed to load: {exc}")
        dock = QDockWidget(spec.title, self)
        dock.setObjectName(f"dock_{spec.key}")
        # a scroll area lets a dock be narrower than its panel's natural width
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(panel)
        dock.setWidget(scroll)
        self.addDockWidget(spec.area, dock)
        self.panels[spec.key] = panel
        self.docks[spec.key] = dock

    def _action(
        self, text: str, slot: object,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
    ) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self._action("Open &folder…", self.open_folder_dialog, QKeySequence.StandardKey.Open))
        file_menu.addAction(self._action("Open &image file…", self.open_file_dialog, "Ctrl+Shift+F"))
        file_menu.addAction(self._action("Open &sample study", self.open_sample_study, "Ctrl+Shift+O"))
        file_menu.addAction(self._action("Import &model…", self.import_model_dialog, "Ctrl+Shift+M"))
        self.recent_menu = file_menu.addMenu("&Recent folders")
        self._refresh_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Export view as PNG…", self.export_view_png, "Ctrl+E"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        view_menu = mb.addMenu("&View")
        for spec in PANELS:
            act = self.docks[spec.key].toggleViewAction()
            if spec.shortcut:
                act.setShortcut(QKeySequence(spec.shortcut))
            view_menu.addAction(act)
        view_menu.addSeparator()
        if hasattr(self.viewer, "set_mode"):
            for i, mode in enumerate(("2D", "MPR", "Compare", "3D")):
                view_menu.addAction(
                    self._action(f"Viewer: {mode}", lambda _=False, m=mode: self.viewer.set_mode(m),
                                 f"F{i + 5}")
                )
        view_menu.addAction(self._action("&Copy view to clipboard", self.copy_view, "Ctrl+Shift+C"))
        view_menu.addSeparator()
        view_menu.addAction(self._action("&Dark theme", lambda: self.set_theme("dark")))
        view_menu.addAction(self._action("&Light theme", lambda: self.set_theme("light")))

        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self._action("&About medgan desktop", self.show_about, QKeySequence.StandardKey.HelpContents))
        help_menu.addAction(self._action("Open &log folder", self.open_log_folder))

    def _connect_context(self) -> None:
        ctx = self.context
        ctx.status.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        if hasattr(self.viewer, "show_volume"):
            ctx.volume_opened.connect(self.viewer.show_volume)
        if hasattr(self.viewer, "show_comparison"):
            ctx.compare_requested.connect(self.viewer.show_comparison)
        ctx.export_requested.connect(self.export_series)

    # -- actions ------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of DICOM files")
        if folder:
            self.import_folder(Path(folder))

    def import_folder(self, folder: Path, open_first: bool = True, prefer: str = "") -> None:
        """Import a folder into the index; then show its largest series if nothing is shown."""
        browser = self.panels.get("browser")
        if not hasattr(browser, "import_paths"):
            QMessageBox.warning(self, APP_NAME, "The study browser is not available.")
            return
        self._add_recent(folder)
        worker = browser.import_paths([folder])  # type: ignore[union-attr]
        if worker is not None and open_first:
            worker.finished.connect(
                lambda _report, f=folder, m=prefer: self._open_first_series(f, m)
            )
        self.docks["browser"].raise_()

    def _open_first_series(self, folder: Path, prefer: str = "") -> None:
        current = getattr(self.viewer, "current_volume", lambda: None)()
        browser = self.panels.get("browser")
        if current is not None or not hasattr(browser, "open_series"):
            return
        root = str(folder.resolve())
        best: tuple[int, str] | None = None
        for rec in self.context.index.all_series():
            files = self.context.index.series_files(rec.series_uid)
            if files and str(Path(files[0]).resolve()).startswith(root):
                score = rec.instance_count + (1_000_000 if rec.modality == prefer else 0)
                if best is None or score > best[0]:
                    best = (score, rec.series_uid)
        if best is not None and browser is not None:
            browser.open_series(best[1])

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an image volume", "",
            "Images (*.nii *.nii.gz *.mha *.mhd *.nrrd *.png *.jpg *.jpeg *.dcm);;All files (*)",
        )
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> None:
        """Open a folder (import into the index) or a single image/volume file."""
        browser = self.panels.get("browser")
        if path.is_dir():
            self.import_folder(path)
        elif hasattr(browser, "open_path"):
            browser.open_path(path)  # type: ignore[union-attr]

    def open_sample_study(self) -> None:
        from medgan_desktop.qt.workers.base import Worker

        try:
            from medgan_desktop.core.jobs.sample_study import ensure_sample_study
        except ImportError as exc:
            QMessageBox.warning(self, APP_NAME, f"The sample study is not available: {exc}")
            return
        worker = Worker(ensure_sample_study, self.context.paths, name="Building the sample study")
        worker.finished.connect(lambda folder: self.import_folder(Path(folder), prefer="MR"))
        worker.failed.connect(lambda msg, _tb: QMessageBox.critical(self, APP_NAME, msg))
        self.statusBar().showMessage("Preparing the sample study…")
        self.context.workers.submit(worker)

    def import_model_dialog(self) -> None:
        """File → Import model…: a run folder or a .safetensors file, an optional card and id."""
        from medgan_desktop.qt.panels.import_model_dialog import ImportModelDialog

        dlg = ImportModelDialog(self)
        if dlg.exec() == ImportModelDialog.DialogCode.Accepted:
            self.import_model(*dlg.values())

    def import_model(self, source: Path, model_id: str | None = None, card: Path | None = None) -> ModelEntry | None:
        """Import a user model (asking before replacing one with the same id); returns its
        catalogue entry, or None when refused or cancelled. The model lists refresh."""
        from medgan_desktop.core.jobs.base import JobError
        from medgan_desktop.core.jobs.models import ImportSpec, run_import
        from medgan_desktop.core.models.registry import ModelRegistry

        spec = ImportSpec(source, model_id, card)
        try:
            existing = {e.id for e in ModelRegistry(self.context.paths).entries() if not e.shipped}
            wanted = model_id or (source.name if source.is_dir() else source.stem)
            if wanted in existing:
                answer = QMessageBox.question(
                    self, "Import model",
                    f"A user model with id {wanted!r} already exists.\n\nReplace it with {source.name}?",
                )
                if answer != QMessageBox.StandardButton.Yes:
                    self.statusBar().showMessage("Import cancelled: the existing model was kept", 8000)
                    return None
                spec = ImportSpec(source, model_id, card, replace=True)
            entry = run_import(spec, self.context.paths)
        except (JobError, OSError) as exc:
            QMessageBox.warning(self, "Import model", f"Cannot import {source}:\n{exc}")
            return None
        self.context.models_changed.emit()
        self.statusBar().showMessage(f"Imported model {entry.id} ({entry.task}, {entry.method})", 8000)
        return entry

    def export_series(self, series_uid: str) -> None:
        try:
            from medgan_desktop.qt.panels.export_dialog import ExportDialog
        except ImportError as exc:
            QMessageBox.warning(self, APP_NAME, f"Export is not available: {exc}")
            return
        ExportDialog(self.context, series_uid=series_uid, parent=self).exec()

    def export_view_png(self) -> None:
        if not hasattr(self.viewer, "export_png"):
            QMessageBox.information(self, APP_NAME, "Nothing to export yet.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export view", "view.png", "PNG (*.png)")
        if path:
            self.viewer.export_png(Path(path))

    def copy_view(self) -> None:
        if hasattr(self.viewer, "copy_to_clipboard"):
            self.viewer.copy_to_clipboard()
            self.statusBar().showMessage("View copied to the clipboard", 4000)

    def open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.context.paths.log_dir)))

    def about_text(self) -> str:
        lines = [
            f"<h3>medgan desktop {__version__}</h3>",
            "<p>Train and run generative adversarial networks on your own medical images. "
            "Synthetic images are for research and review only, not for diagnosis.</p>",
            "<h4>Shipped models</h4><ul>",
        ]
        manifest = self.context.paths.shipped_models_dir / "manifest.json"
        try:
            models = json.loads(manifest.read_text(encoding="utf-8")).get("models", [])
        except (OSError, ValueError):
            models = []
        for m in models:
            lines.append(
                f"<li><b>{m.get('id')}</b> ({m.get('task')}): trained on "
                f"{m.get('training_data', {}).get('name', '?')}, licence "
                f"{m.get('training_data', {}).get('licence', '?')}</li>"
            )
        if not models:
            lines.append("<li>none found</li>")
        lines.append("</ul><h4>Data</h4><p>The sample study is built on first use from data that "
                     "ships in open packages; see its model and data cards.</p>")
        lines.append(f"<p>Data folder: {self.context.paths.data_dir}</p>")
        return "".join(lines)

    def show_about(self) -> None:
        QMessageBox.about(self, "About medgan desktop", self.about_text())

    def set_theme(self, name: str) -> None:
        from medgan_desktop.qt.theme import apply_theme

        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, name, self.context.paths.resources_dir)
        self.qsettings.setValue("theme", name)

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().showEvent(event)
        if not self._sized and self._right_docks:
            self._sized = True
            self.resizeDocks([self.docks["browser"], self._right_docks[0]], [330, 540],
                             Qt.Orientation.Horizontal)

    # -- drag and drop ------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(Path(url.toLocalFile()))

    # -- persistence --------------------------------------------------------------------
    def _recent(self) -> list[str]:
        value = self.qsettings.value("recent_folders", [])
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return []

    def _add_recent(self, folder: Path) -> None:
        items = [str(folder)] + [f for f in self._recent() if f != str(folder)]
        self.qsettings.setValue("recent_folders", items[:MAX_RECENT])
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self._recent():
            self.recent_menu.addAction(
                self._action(folder, lambda _=False, f=folder: self.import_folder(Path(f)))
            )
        self.recent_menu.setEnabled(bool(self._recent()))

    def _restore_state(self) -> None:
        geom = self.qsettings.value("geometry")
        if isinstance(geom, QByteArray):
            self.restoreGeometry(geom)
        state = self.qsettings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        running = self.context.workers.running()
        if running:
            names = ", ".join(w.name for w in running)
            answer = QMessageBox.question(
                self, APP_NAME,
                f"Work is still running ({names}). Stop it and quit? "
                "Training runs keep their last checkpoint and can be resumed.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.context.workers.stop_all()
        self.qsettings.setValue("geometry", self.saveGeometry())
        self.qsettings.setValue("window_state", self.saveState())
        super().closeEvent(event)
