"""The central viewer: 2D, MPR, Compare and 3D modes in tabs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Slot
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QLabel, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from medgan_desktop.core.imaging.resample import resample_all_to_reference, same_grid
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.viewers.compare import CompareView
from medgan_desktop.qt.viewers.mpr import MprView
from medgan_desktop.qt.viewers.slice_view import SliceView
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

MODES = ("2D", "MPR", "Compare", "3D")


class ViewerArea(QWidget):
    """Tabs for the viewer modes; the 3D view (VTK) is built the first time it is shown.

    Args:
        context: the application context (optional; only its ``status`` signal is used).
        parent: the parent widget.
    """

    def __init__(self, context: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._volume: Volume | None = None
        self._volume_3d_shown: Volume | None = None
        self.slice_view = SliceView(self)
        self.slice_view.empty_hint = (
            "No image open.\n\nFile > Open folder… (Ctrl+O) imports a DICOM study, File > Open "
            "image file… opens NIfTI, MHA, NRRD or PNG, or drop a folder onto the window. "
            "File > Open sample study shows the built-in example.")
        self.mpr_view = MprView(self)
        self.compare_view = CompareView(self)
        self.volume_view: Any = None  # built lazily (imports VTK)
        self._compare_worker: Worker | None = None
        self._compare_titles: Sequence[str] | None = None
        self._placeholder_3d = QWidget(self)
        QVBoxLayout(self._placeholder_3d).addWidget(QLabel("3D view: open a volume first.",
                                                           self._placeholder_3d))
        self.tabs = QTabWidget(self)
        for w, name in zip((self.slice_view, self.mpr_view, self.compare_view,
                            self._placeholder_3d), MODES, strict=True):
            self.tabs.addTab(w, name)
        self.tabs.currentChanged.connect(self._on_tab)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)

    # -- API used by the main window ------------------------------------------------------
    def show_volume(self, volume: Volume) -> None:
        """Show a volume in 2D and MPR (and 3D when that tab is open)."""
        self._volume = volume
        self.slice_view.set_volume(volume)
        self.mpr_view.set_volume(volume)
        if self.mode() == "Compare":
            self.set_mode("2D")
        self._sync_3d()
        self._status(f"Showing {volume.description or volume.modality} {volume.shape[::-1]}")

    def show_comparison(self, volumes: Sequence[Volume], titles: Sequence[str] | None = None) -> None:
        """Show 2-3 volumes in the comparison layout (the first is the reference grid).

        Volumes on other grids are resampled in a worker thread when the viewer has an
        application context, so large volumes do not freeze the GUI.
        """
        volumes = list(volumes)
        if not 2 <= len(volumes) <= 3:
            QMessageBox.warning(self, "Compare",
                                f"The comparison shows 2 or 3 volumes, not {len(volumes)}.")
            return
        self.set_mode("Compare")
        workers = getattr(self.context, "workers", None)
        needs_work = any(not same_grid(v, volumes[0]) for v in volumes[1:])
        if workers is None or not needs_work:
            self._finish_comparison(volumes, titles)
            return
        if self._compare_worker is not None and self._compare_worker.is_running():
            self._compare_worker.cancel()
        self.compare_view.show_message("Resampling the volumes onto the reference grid…")
        worker = Worker(resample_all_to_reference, volumes, name="resample for comparison")
        # bound slots of this QObject: Qt queues them onto the GUI thread
        worker.finished.connect(self._on_resampled)
        worker.failed.connect(self._on_resample_failed)
        self._compare_worker = worker
        self._compare_titles = titles
        workers.submit(worker)

    @Slot(object)
    def _on_resampled(self, volumes: list[Volume]) -> None:
        if self.sender() is not self._compare_worker:
            return  # a superseded request
        self._finish_comparison(volumes, self._compare_titles)

    @Slot(str, str)
    def _on_resample_failed(self, message: str, _traceback: str) -> None:
        self.compare_view.show_message(message)
        QMessageBox.warning(self, "Compare", message)

    def _finish_comparison(self, volumes: list[Volume], titles: Sequence[str] | None) -> None:
        try:
            self.compare_view.set_volumes(volumes, titles)
        except Exception as exc:  # tell the user, keep the app running
            log.exception("comparison failed")
            QMessageBox.warning(self, "Compare", f"Cannot compare these volumes: {exc}")
            return
        if self._volume is None:
            self._volume = volumes[0]
            self.slice_view.set_volume(volumes[0])
            self.mpr_view.set_volume(volumes[0])
        self._status(f"Comparing {len(volumes)} volumes")

    def set_blinded(self, blinded: bool) -> None:
        """Hide SYNTHETIC banners and series descriptions in all 2D views (reader study)."""
        self.slice_view.set_blinded(blinded)
        for view in self.mpr_view.views.values():
            view.set_blinded(blinded)
        self.compare_view.set_blinded(blinded)

    def current_volume(self) -> Volume | None:
        return self._volume

    def mode(self) -> str:
        return MODES[self.tabs.currentIndex()]

    def set_mode(self, name: str) -> None:
        """Switch to "2D", "MPR", "Compare" or "3D" (case-insensitive)."""
        for n, mode in enumerate(MODES):
            if mode.lower() == name.strip().lower():
                self.tabs.setCurrentIndex(n)
                return
        raise ValueError(f"unknown viewer mode {name!r}; one of {', '.join(MODES)}")

    def current_image(self) -> QImage:
        """The current view as an image (3D through VTK, the rest through Qt)."""
        if self.mode() == "3D" and self.volume_view is not None and self.volume_view.available():
            img: QImage = self.volume_view.to_qimage()
            return img
        widget = self.tabs.currentWidget()
        if widget is self.compare_view:
            widget = self.compare_view.current_widget()
        return widget.grab().toImage()

    def export_png(self, path: str | Path) -> Path:
        """Save the current view as a PNG."""
        path = Path(path)
        if self.mode() == "3D" and self.volume_view is not None and self.volume_view.available():
            return Path(self.volume_view.render_to_png(path))
        if not self.current_image().save(str(path), "PNG"):  # type: ignore[call-overload]
            raise OSError(f"could not write {path}")
        return path

    def copy_to_clipboard(self) -> None:
        """Put the current view on the clipboard."""
        QGuiApplication.clipboard().setImage(self.current_image())

    # -- internals ----------------------------------------------------------------------------
    def _ensure_3d(self) -> None:
        if self.volume_view is not None:
            return
        from medgan_desktop.qt.viewers.volume_view import VolumeView

        self.volume_view = VolumeView(self)
        index = MODES.index("3D")
        self.tabs.blockSignals(True)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, self.volume_view, "3D")
        self.tabs.setCurrentIndex(index)
        self.tabs.blockSignals(False)
        self._placeholder_3d.deleteLater()

    def _sync_3d(self) -> None:
        if self.mode() != "3D" or self._volume is None:
            return
        self._ensure_3d()
        if self._volume_3d_shown is not self._volume:
            self._volume_3d_shown = self._volume
            self.volume_view.set_volume(self._volume)

    def _on_tab(self, index: int) -> None:
        if MODES[index] == "3D":
            self._sync_3d()
        elif MODES[index] == "Compare":
            # panes sized while hidden fit the image to a tiny box: fit again once laid out
            QTimer.singleShot(0, self._fit_compare)

    def _fit_compare(self) -> None:
        views = getattr(self.compare_view, "views", [])
        for view in views:
            view.refit()

    def _status(self, msg: str) -> None:
        if self.context is not None and hasattr(self.context, "status"):
            self.context.status.emit(msg)
