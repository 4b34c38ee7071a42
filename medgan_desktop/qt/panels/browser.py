"""The study browser: import folders, browse patients/studies/series, open volumes.

All slow work (import, thumbnails, loading a series or a file) runs in
:class:`~medgan_desktop.qt.workers.base.Worker` threads calling the jobs of
:mod:`medgan_desktop.core.jobs.index`, as ``medgan import`` / ``medgan ls`` do. Synthetic
series (generated images, also when re-imported) carry a SYNTHETIC badge in the tree.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.jobs.index import (
    ImportResult,
    ImportSpec,
    header_rows,
    open_file,
    open_series,
    run_import,
    thumbnails,
)
from medgan_desktop.core.progress import Progress
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.dialogs import existing_folder
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

KIND_ROLE = Qt.ItemDataRole.UserRole
UID_ROLE = Qt.ItemDataRole.UserRole + 1
SYNTHETIC_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("Patient / study / series", "Modality", "Date", "Images")
#: short headers so the tree fits a side dock; the full names are the headers' tooltips
HEADERS = ("Patient / study / series", "Mod.", "Date", "#")
TREE_ICON = 40  # thumbnail size in the tree (the thumbnails are made at THUMB_SIZE)


def _children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    return [c for c in (item.child(i) for i in range(item.childCount())) if c is not None]


def _patient_label(name: str, patient_id: str) -> str:
    """``Name [ID]``, or one of them when the other is missing or the same."""
    if not name or name == patient_id:
        return patient_id or "(no name)"
    return f"{name} [{patient_id}]" if patient_id else name


def _tips(item: QTreeWidgetItem, first: str) -> None:
    """The full text of every cell as its tooltip (column 0: ``first``, a fuller line)."""
    item.setToolTip(0, first)
    for c in range(1, item.columnCount()):
        if item.text(c):
            item.setToolTip(c, f"{COLUMNS[c]}: {item.text(c)}")


def _fmt_date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


class BrowserPanel(QWidget):
    """Patients -> studies -> series from the study index, with import and metadata.

    Signals:
        import_finished(object): the :class:`ImportReport` of a finished import.
        width_wanted(int): the panel width that shows every name in the tree in full.
    """

    import_finished = Signal(object)
    width_wanted = Signal(int)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._thumbs: dict[str, QIcon] = {}
        self._thumb_pending: set[str] = set()
        self._import_worker: Worker | None = None
        self._import_t0 = 0.0
        self.setAcceptDrops(True)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter: name, ID, description, modality, date…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.import_button = QPushButton("Import folder…")
        self.import_button.clicked.connect(self._choose_folder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.import_button)
        top.addWidget(self.refresh_button)

        self.progress_bar = QProgressBar()
        self.progress_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_import)
        self.progress_row = QWidget()
        prow = QHBoxLayout(self.progress_row)
        prow.setContentsMargins(0, 0, 0, 0)
        prow.addWidget(self.progress_bar, 1)
        prow.addWidget(self.progress_label)
        prow.addWidget(self.cancel_button)
        self.progress_row.hide()

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(HEADERS))
        head = self.tree.headerItem()
        for c, name in enumerate(COLUMNS):
            head.setToolTip(c, "Number of images" if name == "Images" else name)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        # names are never cut: every column fits its content (the dock widens to the tree,
        # see :meth:`wanted_width`), and each cell's full text is also its tooltip
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.setIconSize(QSize(TREE_ICON, TREE_ICON))

        self.metadata = QTableWidget(0, 4)
        self.metadata.setHorizontalHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.metadata.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metadata.horizontalHeader().setStretchLastSection(True)
        self.metadata.verticalHeader().setVisible(False)
        self.problems = QTableWidget(0, 2)
        self.problems.setHorizontalHeaderLabels(["File", "Reason"])
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.horizontalHeader().setStretchLastSection(True)
        self.problems.verticalHeader().setVisible(False)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.metadata, "Metadata")
        self.tabs.addTab(self.problems, "Import problems")

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress_row)
        layout.addWidget(splitter, 1)
        self.refresh()

    # -- tree ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the tree and the problems list from the index."""
        try:
            tree = self.context.index.tree()
            problems = self.context.index.problems()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self._error("The study index could not be read", exc)
            return
        selected = self.selected_series_uid()
        self.tree.clear()
        missing: list[str] = []
        for p in tree:
            pitem = QTreeWidgetItem([_patient_label(p.patient_name, p.patient_id), "", "", ""])
            pitem.setData(0, KIND_ROLE, "patient")
            pitem.setData(0, UID_ROLE, p.patient_id)
            _tips(pitem, f"Patient {p.patient_name or '(no name)'}, ID {p.patient_id or '(none)'}" + (f", born {_fmt_date(p.birth_date)}" if p.birth_date else ""))
            self.tree.addTopLevelItem(pitem)
            for st in p.studies:
                n = sum(s.instance_count for s in st.series)
                sitem = QTreeWidgetItem(
                    [st.description or "(study)", "", _fmt_date(st.date), str(n)]
                )
                sitem.setData(0, KIND_ROLE, "study")
                sitem.setData(0, UID_ROLE, st.study_uid)
                _tips(sitem, f"Study {st.description or '(no description)'} of {_fmt_date(st.date) or 'unknown date'}"
                      f", {len(st.series)} series, {n} images\n{st.study_uid}")
                pitem.addChild(sitem)
                for se in st.series:
                    num = "" if se.number is None else f"#{se.number} "
                    badge = "SYNTHETIC  " if se.synthetic else ""
                    item = QTreeWidgetItem([
                        f"{badge}{num}{se.description or '(no description)'}",
                        se.modality, _fmt_date(se.date), str(se.instance_count),
                    ])
                    item.setData(0, KIND_ROLE, "series")
                    item.setData(0, UID_ROLE, se.series_uid)
                    item.setData(0, SYNTHETIC_ROLE, se.synthetic)
                    tip = (f"{se.modality} series {num}{se.description or '(no description)'}, "
                           f"{se.instance_count} images\n{se.series_uid}")
                    if se.synthetic:
                        item.setForeground(0, QColor("#d9822b"))
                        tip = "SYNTHETIC: generated by a model, not an acquired image\n" + tip
                    _tips(item, tip)
                    icon = self._thumbs.get(se.series_uid)
                    if icon is not None:
                        item.setIcon(0, icon)
                    elif se.series_uid not in self._thumb_pending:
                        missing.append(se.series_uid)
                    sitem.addChild(item)
                    if se.series_uid == selected:
                        item.setSelected(True)
        self.tree.expandAll()
        for c in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(c)
        self.tree.updateGeometry()
        self.width_wanted.emit(self.wanted_width())
        self._apply_filter(self.filter_edit.text())
        self._show_problems(problems)
        if missing:
            self._start_thumbnails(missing)

    def wanted_width(self) -> int:
        """The panel width at which no tree column is cut (columns, frame and scroll bar)."""
        tree = self.tree
        columns = sum(tree.header().sectionSize(c) for c in range(tree.columnCount()))
        chrome = 2 * tree.frameWidth() + tree.verticalScrollBar().sizeHint().width()
        layout = self.layout()
        side = 0
        if layout is not None:
            margins = layout.contentsMargins()
            side = margins.left() + margins.right()
        return columns + chrome + side + 4

    def _top_items(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [p for p in items if p is not None]

    def series_items(self) -> list[QTreeWidgetItem]:
        """Every series row of the tree."""
        return [se for p in self._top_items() for st in _children(p) for se in _children(st)]

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for p in self._top_items():
            p_match = needle in p.text(0).lower()
            any_p = False
            for st in _children(p):
                st_match = p_match or needle in " ".join(st.text(c) for c in range(4)).lower()
                any_st = False
                for se in _children(st):
                    text_all = " ".join(se.text(c) for c in range(4)).lower()
                    show = not needle or st_match or needle in text_all
                    se.setHidden(not show)
                    any_st = any_st or show
                st.setHidden(not any_st)
                any_p = any_p or any_st
            p.setHidden(not (any_p or (p_match and p.childCount() == 0)))

    def _show_problems(self, problems: list[Any]) -> None:
        self.problems.setRowCount(len(problems))
        for r, pr in enumerate(problems):
            self.problems.setItem(r, 0, QTableWidgetItem(pr.path))
            self.problems.setItem(r, 1, QTableWidgetItem(pr.reason))
        self.tabs.setTabText(1, f"Import problems ({len(problems)})" if problems
                             else "Import problems")

    def selected_item(self) -> QTreeWidgetItem | None:
        items = self.tree.selectedItems()
        return items[0] if items else None

    def selected_series_uid(self) -> str | None:
        item = self.selected_item()
        if item is not None and item.data(0, KIND_ROLE) == "series":
            return str(item.data(0, UID_ROLE))
        return None

    def select_series(self, uid: str) -> bool:
        for item in self.series_items():
            if item.data(0, UID_ROLE) == uid:
                self.tree.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False

    # -- thumbnails ----------------------------------------------------------------------
    def _start_thumbnails(self, uids: list[str]) -> None:
        self._thumb_pending.update(uids)
        worker = Worker(thumbnails, self.context.index, uids, name="thumbnails")
        worker.finished.connect(self._thumbnails_ready)
        worker.done.connect(self._thumbnails_done)
        self.context.workers.submit(worker)

    def _thumbnails_ready(self, thumbs: dict[str, np.ndarray]) -> None:
        for uid, arr in thumbs.items():
            h, w = arr.shape
            img = QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
            self._thumbs[uid] = QIcon(QPixmap.fromImage(img))
        for item in self.series_items():
            icon = self._thumbs.get(str(item.data(0, UID_ROLE)))
            if icon is not None:
                item.setIcon(0, icon)

    def _thumbnails_done(self) -> None:
        self._thumb_pending.difference_update(self._thumbs)

    def has_thumbnail(self, uid: str) -> bool:
        return uid in self._thumbs

    # -- metadata ------------------------------------------------------------------------
    def _selection_changed(self) -> None:
        uid = self.selected_series_uid()
        if uid is None:
            return
        self.context.series_selected.emit(uid)
        files = self.context.index.series_files(uid)
        self.show_metadata(files[0] if files else None)

    def show_metadata(self, path: Path | None) -> None:
        """Fill the metadata table with the header of ``path`` (first instance)."""
        self.metadata.setRowCount(0)
        if path is None:
            return
        try:
            rows = header_rows(path)
        except JobError as exc:  # the file may have moved
            self.metadata.setRowCount(1)
            self.metadata.setItem(0, 3, QTableWidgetItem(str(exc)))
            return
        self.metadata.setRowCount(len(rows))
        for r, vals in enumerate(rows):
            for c, v in enumerate(vals):
                self.metadata.setItem(r, c, QTableWidgetItem(v))
        self.metadata.resizeColumnsToContents()

    def metadata_rows(self) -> list[tuple[str, ...]]:
        """The metadata table as (tag, name, VR, value) rows."""
        out = []
        for r in range(self.metadata.rowCount()):
            cells = [self.metadata.item(r, c) for c in range(4)]
            out.append(tuple(c.text() if c is not None else "" for c in cells))
        return out

    # -- import --------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = existing_folder(self, "Import a folder of DICOM files")
        if folder:
            self.import_paths([Path(folder)])

    def import_paths(self, paths: list[Path]) -> Worker | None:
        """Import files/folders into the index in a worker, with progress and Cancel."""
        if self._import_worker is not None and self._import_worker.is_running():
            QMessageBox.information(self, "Import", "An import is already running.")
            return None
        spec = ImportSpec(tuple(Path(p) for p in paths), self.context.paths.index_db)
        worker = Worker(run_import, spec, index=self.context.index, name="import",
                        min_interval=0.1).connect_slots(
            progress=self._import_progress, finished=self._import_done, failed=self._import_failed,
            cancelled=self._import_cancelled, done=self._import_cleanup)
        self._import_worker = worker
        self._import_t0 = time.monotonic()
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("listing files…")
        self.cancel_button.setEnabled(True)
        self.progress_row.show()
        self.import_button.setEnabled(False)
        self.context.status.emit(f"importing {', '.join(str(p) for p in paths)}")
        self.context.workers.submit(worker)
        return worker

    def cancel_import(self) -> None:
        if self._import_worker is not None:
            self._import_worker.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("cancelling…")

    def _import_progress(self, p: Progress) -> None:
        if p.total <= 0:
            self.progress_bar.setRange(0, 0)
            self.progress_label.setText(p.message)
            return
        self.progress_bar.setRange(0, p.total)
        self.progress_bar.setValue(p.done)
        elapsed = max(time.monotonic() - self._import_t0, 1e-6)
        rate = p.done / elapsed
        eta = (p.total - p.done) / rate if rate > 0 else 0.0
        self.progress_label.setText(f"{p.done}/{p.total} files, {rate:.0f} files/s, "
                                    f"ETA {eta:.0f} s")

    def _import_done(self, result: ImportResult) -> None:
        report = result.report
        self.refresh()
        if report.problems:
            self.tabs.setCurrentWidget(self.problems)
        self.context.status.emit(
            f"imported {report.instances} images in {report.series} new series; "
            f"{report.skipped} skipped, {report.errors} problems"
        )
        self.context.index_changed.emit()
        self.import_finished.emit(report)
        if result.failed:
            QMessageBox.warning(self, "Import", f"Nothing could be imported: all {report.errors} "
                                "file(s) were problems (see Import problems).")

    def _import_failed(self, message: str, _tb: str) -> None:
        self.refresh()
        QMessageBox.warning(self, "Import failed", message)

    def _import_cancelled(self) -> None:
        self.refresh()
        self.context.status.emit("import cancelled: files indexed so far were kept")
        self.context.index_changed.emit()

    def _import_cleanup(self) -> None:
        self.progress_row.hide()
        self.import_button.setEnabled(True)

    # -- opening -------------------------------------------------------------------------
    def _double_clicked(self, item: QTreeWidgetItem, _col: int) -> None:
        if item.data(0, KIND_ROLE) == "series":
            self.open_series(str(item.data(0, UID_ROLE)))

    def open_series(self, uid: str) -> Worker:
        """Load an indexed series in a worker; emits ``context.volume_opened``."""
        worker = Worker(open_series, self.context.index, uid, name="open series")
        worker.finished.connect(self._volume_ready)
        worker.failed.connect(self._open_failed)
        self.context.status.emit("loading series…")
        self.context.workers.submit(worker)
        return worker

    def open_path(self, path: Path) -> Worker:
        """Open a non-indexed file (NIfTI/MHA/NRRD/PNG/JPEG/DICOM); emits volume_opened."""
        worker = Worker(open_file, Path(path), name="open file")
        worker.finished.connect(self._volumes_ready)
        worker.failed.connect(self._open_failed)
        self.context.status.emit(f"opening {path}…")
        self.context.workers.submit(worker)
        return worker

    def _open_failed(self, message: str, _tb: str) -> None:
        self.context.status.emit(message)
        QMessageBox.warning(self, "Open", message)

    def _volume_ready(self, volume: Any) -> None:
        if volume.warnings:
            self.context.status.emit("loaded with warnings: " + "; ".join(volume.warnings))
        else:
            self.context.status.emit(f"loaded {volume.description} {volume.shape}")
        self.context.volume_opened.emit(volume)

    def _volumes_ready(self, volumes: list[Any]) -> None:
        for v in volumes:
            self._volume_ready(v)

    # -- context menu ----------------------------------------------------------------------
    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        self.tree.setCurrentItem(item)
        menu = self.build_context_menu(item)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def build_context_menu(self, item: QTreeWidgetItem) -> QMenu:
        kind = item.data(0, KIND_ROLE)
        uid = str(item.data(0, UID_ROLE))
        menu = QMenu(self)
        if kind == "series":
            menu.addAction("Open", lambda: self.open_series(uid))
            menu.addAction("Show in file manager", lambda: self.show_in_file_manager(uid))
            menu.addAction("Export anonymised…", lambda: self.context.export_requested.emit(uid))
            menu.addSeparator()
            menu.addAction("Remove from index", lambda: self.remove(kind, uid))
        elif kind == "study":
            menu.addAction("Export anonymised…", lambda: self.export_studies([uid]))
            menu.addSeparator()
            menu.addAction("Remove study from index", lambda: self.remove(kind, uid))
        elif kind == "patient":
            studies = [str(c.data(0, UID_ROLE)) for c in _children(item)]
            if studies:
                n = len(studies)
                text = ("Export study anonymised…" if n == 1
                        else f"Export all {n} studies anonymised…")
                menu.addAction(text, lambda: self.export_studies(studies))
        return menu

    def export_studies(self, study_uids: list[str]) -> Any:
        """Open the export dialog for every series of ``study_uids`` as one anonymisation job.

        Returns the dialog (after it was closed).
        """
        from medgan_desktop.qt.panels.export_dialog import ExportDialog

        dlg = ExportDialog(self.context, study_uids=study_uids, parent=self)
        dlg.exec()
        return dlg

    def show_in_file_manager(self, uid: str) -> bool:
        files = self.context.index.series_files(uid)
        if not files:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(files[0].parent)))

    def remove(self, kind: str, uid: str) -> None:
        """Forget a series or study (files on disk are not touched) after confirmation."""
        answer = QMessageBox.question(
            self, "Remove from index",
            f"Remove this {kind} from the index? The files on disk are not deleted.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        if kind == "series":
            self.context.index.remove_series(uid)
            self._thumbs.pop(uid, None)
        else:
            self.context.index.remove_study(uid)
        self.refresh()
        self.context.index_changed.emit()

    # -- drag and drop ---------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        self.handle_dropped(paths)
        event.acceptProposedAction()

    def handle_dropped(self, paths: list[Path]) -> None:
        from medgan_desktop.core.io import IMAGE_SUFFIXES, VOLUME_SUFFIXES

        to_import: list[Path] = []
        for p in paths:
            name = p.name.lower()
            if p.is_file() and name.endswith(VOLUME_SUFFIXES + IMAGE_SUFFIXES):
                self.open_path(p)
            elif p.exists():
                to_import.append(p)
        if to_import:
            self.import_paths(to_import)

    def _error(self, title: str, exc: BaseException) -> None:
        log.error("%s: %s", title, exc)
        QMessageBox.warning(self, title, f"{title}: {exc}")
