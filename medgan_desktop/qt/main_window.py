"""The main window: study browser on the left, viewers in the centre, work panels docked."""

from __future__ import annotations

import importlib
import json
import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop import APP_NAME, __version__
from medgan_desktop.qt import dialogs
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.widgets import compact_for_dock

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


_LEFT, _RIGHT = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
_P = "medgan_desktop.qt.panels."

PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("browser", "Studies", _P + "browser", "BrowserPanel", _LEFT, "Ctrl+1"),
    PanelSpec("translate", "Translate", _P + "translate", "TranslatePanel", _RIGHT, "Ctrl+2"),
    PanelSpec("train", "Train", _P + "train", "TrainPanel", _RIGHT, "Ctrl+3"),
    PanelSpec("sample", "Sample", _P + "sample", "SamplePanel", _RIGHT, "Ctrl+4"),
    PanelSpec("evaluate", "Evaluate", _P + "evaluate", "EvaluatePanel", _RIGHT, "Ctrl+5"),
    PanelSpec("review", "Review", _P + "review", "ReviewPanel", _RIGHT, "Ctrl+6"),
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


class PanelScroll(QScrollArea):
    """A dock's scroll area: scrolls a tall panel vertically, never sideways.

    Its minimum width follows the panel's (also when the panel grows, e.g. another
    training method shows wider options), so the dock cannot be dragged narrower than
    the controls and nothing is cut off at the right edge.
    """

    def __init__(self, panel: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.set_panel(panel)

    def set_panel(self, panel: QWidget) -> None:
        """Show ``panel`` (the one before it is deleted)."""
        self.setWidget(panel)
        panel.installEventFilter(self)
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        hint = super().minimumSizeHint()
        panel = self.widget()
        if panel is None:
            return hint
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(panel.minimumSizeHint().width() + bar + 2 * self.frameWidth(), hint.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)


class PendingPanel(QWidget):
    """Stands in for a work panel until its code has loaded (a cold start shows the window
    first and loads torch, the metrics and the model catalogue behind it)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        label = QLabel(f"Loading the {title} panel…")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(label)
        lay.addStretch(1)


class MainWindow(QMainWindow):
    """Study browser, central viewers and dockable Train/Sample/Translate/Evaluate/Review.

    Args:
        context: the application context.
        settings: where the window layout and recent folders are kept.
        lazy_panels: build the work panels after the window shows (the application's cold
            start); their modules import in a background thread and each panel is built
            as soon as its code is there, or at once when the user asks for it.
    """

    #: a panel's module was imported in the background (its key)
    module_ready = Signal(str)

    def __init__(self, context: AppContext, settings: QSettings | None = None, *,
                 lazy_panels: bool = False) -> None:
        super().__init__()
        self.context = context
        self.qsettings = settings or QSettings()
        self.setWindowTitle(f"medgan desktop {__version__}")
        self._fit_to_screen()
        self.setAcceptDrops(True)
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.failures: dict[str, str] = {}
        self._pending: dict[str, PanelSpec] = {}
        self._loader: threading.Thread | None = None

        self.viewer = self._build_viewer()
        self.setCentralWidget(self.viewer)
        for spec in PANELS:
            self._add_panel(spec, lazy=lazy_panels and spec.key != "browser")
        self.module_ready.connect(self._on_module_ready)
        right = [self.docks[s.key] for s in PANELS if s.area == Qt.DockWidgetArea.RightDockWidgetArea]
        for dock in right[1:]:
            self.tabifyDockWidget(right[0], dock)
        if right:
            right[0].raise_()
        self._right_docks = right
        self._sized = False
        self._pending_viewer: str | None = None
        self._default_state = self.saveState()

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

    def _build_panel(self, spec: PanelSpec) -> QWidget:
        try:
            mod = importlib.import_module(spec.module)
            panel: QWidget = getattr(mod, spec.cls)(self.context)
        except Exception as exc:  # shown honestly in the window and reported by --smoke
            self.failures[spec.key] = f"{exc}\n{traceback.format_exc()}"
            log.error("panel %s failed to build: %s", spec.key, exc)
            panel = UnavailablePanel(spec.title, f"It failed to load: {exc}")
        compact_for_dock(panel)
        return panel

    def _add_panel(self, spec: PanelSpec, lazy: bool = False) -> None:
        if lazy:
            panel: QWidget = PendingPanel(spec.title)
            self._pending[spec.key] = spec
        else:
            panel = self._build_panel(spec)
        dock = QDockWidget(spec.title, self)
        dock.setObjectName(f"dock_{spec.key}")
        # panels scroll vertically in a short window, never sideways: the dock is at
        # least as wide as the panel can shrink to (no cut-off controls either)
        scroll = PanelScroll(panel)
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
        # Ctrl+1..6 bring a panel to the front and focus it (as 3D Slicer's module keys
        # do); showing or hiding one is a separate, shortcut-free menu item
        for spec in PANELS:
            view_menu.addAction(self._action(
                f"Go to {spec.title}", lambda _=False, k=spec.key: self.raise_panel(k), spec.shortcut))
        shown = view_menu.addMenu("Show or hide &panels")
        for spec in PANELS:
            shown.addAction(self.docks[spec.key].toggleViewAction())
        view_menu.addAction(self._action("&Reset layout", self.reset_layout))
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
        help_menu.addAction(self._action("&Mouse and keyboard", self.show_bindings,
                                         QKeySequence.StandardKey.HelpContents))
        help_menu.addAction(self._action("&About medgan desktop", self.show_about))
        help_menu.addAction(self._action("Open &log folder", self.open_log_folder))

    def _connect_context(self) -> None:
        ctx = self.context
        browser = self.panels.get("browser")
        if hasattr(browser, "width_wanted"):
            browser.width_wanted.connect(self._fit_browser)  # type: ignore[union-attr]
        ctx.status.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        if hasattr(self.viewer, "show_volume"):
            ctx.volume_opened.connect(self.viewer.show_volume)
        if hasattr(self.viewer, "show_comparison"):
            ctx.compare_requested.connect(self.viewer.show_comparison)
        compare = getattr(self.viewer, "compare_view", None)
        if compare is not None:
            ctx.uncertainty_ready.connect(compare.set_uncertainty)
        ctx.export_requested.connect(self.export_series)

    # -- layout -------------------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """Open filling the screen's free area (a workstation viewer is used full size)."""
        screen = QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(1500, 950)
            return
        avail = screen.availableGeometry()
        self.setGeometry(avail)

    def _dock_widths(self) -> tuple[int, int]:
        """Studies and right-panel widths for the window's width (the centre gets the rest)."""
        width = max(self.width(), 800)
        browser = self.panels.get("browser")
        wanted = int(getattr(browser, "wanted_width", lambda: 0)())
        left = max(self.docks["browser"].minimumSizeHint().width(),
                   min(max(wanted, int(width * 0.2)), width // 3))
        right_min = max(d.minimumSizeHint().width() for d in self._right_docks)
        right = max(right_min, min(560, int(width * 0.3)))
        return left, right

    def _size_docks(self) -> None:
        if self._right_docks:
            self.resizeDocks([self.docks["browser"], self._right_docks[0]],
                             list(self._dock_widths()), Qt.Orientation.Horizontal)

    def _fit_browser(self, wanted: int) -> None:
        """Widen the Studies dock so the tree shows full names (at most a third of the
        window, never narrower than the user made it; beyond that the tree scrolls and
        tooltips carry the full text)."""
        dock = self.docks["browser"]
        cap = max(dock.minimumSizeHint().width(), self.width() // 3)
        target = min(wanted + 8, cap)
        if dock.isVisible() and not dock.isFloating() and dock.width() < target:
            self.resizeDocks([dock], [target], Qt.Orientation.Horizontal)

    # -- panels built after the window shows --------------------------------------------------
    def start_loading_panels(self) -> None:
        """Import the pending panels' modules in a background thread (the heavy part: torch,
        scipy, the metrics); each panel is then built in the GUI thread as its code arrives."""
        if not self._pending or self._loader is not None:
            return
        specs = list(self._pending.values())
        front = next((s for s in specs if not self.docks[s.key].visibleRegion().isEmpty()), None)
        if front is not None:  # the panel on screen first
            specs.remove(front)
            specs.insert(0, front)

        def load() -> None:
            for spec in specs:
                try:
                    importlib.import_module(spec.module)
                except Exception:  # noqa: BLE001 - reported when the panel is built
                    log.exception("loading %s failed", spec.module)
                self.module_ready.emit(spec.key)

        self.statusBar().showMessage("Loading the work panels…")
        self._loader = threading.Thread(target=load, name="load panels", daemon=True)
        self._loader.start()

    def _on_module_ready(self, key: str) -> None:
        self.build_panel(key)
        if not self._pending:
            self.statusBar().showMessage("Ready. File > Open folder to import a study.", 8000)

    def build_panel(self, key: str) -> QWidget:
        """The panel for ``key``, built now if it was still pending."""
        spec = self._pending.pop(key, None)
        if spec is None:
            return self.panels[key]
        panel = self._build_panel(spec)
        scroll = self.docks[key].widget()
        assert isinstance(scroll, PanelScroll)
        scroll.set_panel(panel)
        self.panels[key] = panel
        volume = getattr(self.viewer, "current_volume", lambda: None)()
        if volume is not None and hasattr(panel, "_volume_opened"):
            panel._volume_opened(volume)  # what it would have heard while loading
        return panel

    def finish_panels(self) -> None:
        """Build every pending panel now (``--smoke``, ``--screenshot``, tests)."""
        for key in list(self._pending):
            self.build_panel(key)

    def raise_panel(self, key: str) -> None:
        """Show a panel, bring its tab to the front and move the keyboard focus into it."""
        self.build_panel(key)
        dock = self.docks[key]
        dock.show()
        dock.raise_()
        panel = self.panels[key]
        target = next((w for w in panel.findChildren(QWidget)
                       if w.isVisibleTo(panel) and w.isEnabled()
                       and w.focusPolicy() & Qt.FocusPolicy.TabFocus), None)
        (target or panel).setFocus(Qt.FocusReason.ShortcutFocusReason)

    def reset_layout(self) -> None:
        """Every panel back in its place and shown, the centre viewer at its share."""
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()
        if self._right_docks:
            self._right_docks[0].raise_()
        self._size_docks()

    def apply_start_view(self, viewer: str | None = None, panel: str | None = None) -> None:
        """Bring ``panel`` to the front and show ``viewer`` mode now, or (with nothing open
        yet) as soon as the first image is shown."""
        if panel:
            self.raise_panel(panel)
        if not viewer or not hasattr(self.viewer, "set_mode"):
            return
        if getattr(self.viewer, "current_volume", lambda: None)() is not None:
            self.viewer.set_mode(viewer)
            return
        if self._pending_viewer is None:
            self.context.volume_opened.connect(self._apply_pending_viewer)
        self._pending_viewer = viewer

    def _apply_pending_viewer(self, *_: object) -> None:
        mode, self._pending_viewer = self._pending_viewer, None
        self.context.volume_opened.disconnect(self._apply_pending_viewer)
        if mode and hasattr(self.viewer, "set_mode"):
            self.viewer.set_mode(mode)

    # -- actions ------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        folder = dialogs.existing_folder(self, "Open a folder of DICOM files")
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
        path = dialogs.open_file_name(
            self, "Open an image volume",
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
        path = dialogs.save_file_name(self, "Export view", "view.png", "PNG (*.png)")
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

    def show_bindings(self) -> None:
        """Help > Mouse and keyboard: every binding of the viewers, panels and reader study."""
        from medgan_desktop.qt.help_page import BindingsDialog

        BindingsDialog(self).exec()

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
            if self.qsettings.value("window_state") is None:
                # once the docks' layouts have taken in the panels' current minimum widths
                # (a dock still holding a stale, wider minimum would squeeze the viewer)
                QTimer.singleShot(0, self._size_docks)

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
        """The last session's window and docks, kept on this screen (a hidden panel comes
        back with its Ctrl+number key or View > Show or hide panels)."""
        geom = self.qsettings.value("geometry")
        if isinstance(geom, QByteArray):
            self.restoreGeometry(geom)
            screen = QGuiApplication.primaryScreen()
            if screen is not None:
                avail = screen.availableGeometry()
                if not avail.contains(self.frameGeometry()):
                    self.setGeometry(avail.intersected(self.geometry()) if
                                     avail.intersects(self.geometry()) else avail)
        state = self.qsettings.value("window_state")
        if isinstance(state, QByteArray) and not self.restoreState(state):
            log.warning("the saved window layout could not be restored; using the default")
            self.restoreState(self._default_state)

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
