"""The state the main window hands to every panel, passed explicitly (no singletons).

Panels take an :class:`AppContext` and talk to each other only through its
signals, so each panel can be built and tested alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from medgan_desktop.core.config import Settings
from medgan_desktop.qt.workers.base import WorkerPool


class AppContext(QObject):
    """Shared services and the signals panels use to cooperate.

    Signals:
        volume_opened(object): a :class:`~medgan_desktop.core.volume.Volume` to show in the viewer.
        compare_requested(object): a list of 2-3 volumes for the comparison viewer
            (source, synthetic[, real]).
        uncertainty_ready(object): the uncertainty map of the synthetic volume about to be
            compared (a Volume on its grid), or None; shown over the synthetic pane.
        series_selected(str): the SeriesInstanceUID (or non-DICOM key) chosen in the browser.
        index_changed(): the study index gained or lost entries.
        models_changed(): a user model was imported or replaced (model lists refresh).
        export_requested(str): a SeriesInstanceUID the user wants exported anonymised.
        status(str): a short message for the status bar.
    """

    volume_opened = Signal(object)
    compare_requested = Signal(object)
    uncertainty_ready = Signal(object)
    series_selected = Signal(str)
    index_changed = Signal()
    models_changed = Signal()
    export_requested = Signal(str)
    status = Signal(str)

    def __init__(self, settings: Settings, index: Any = None, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.paths = settings.paths
        self.workers = WorkerPool()
        self._index = index

    @property
    def index(self) -> Any:
        """The study index (opened lazily on first use)."""
        if self._index is None:
            from medgan_desktop.core.dicom.index import StudyIndex

            self.paths.ensure()
            self._index = StudyIndex(self.paths.index_db)
        return self._index

    def data_path(self, *parts: str) -> Path:
        return self.paths.data_dir.joinpath(*parts)
