"""Multi-planar reformat: axial, coronal and sagittal views with a linked crosshair."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.imaging.orientation import ViewAxis
from medgan_desktop.core.imaging.windowing import AUTO_PRESET_NAME, is_hu, presets_for
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.viewers.slice_view import SliceView


class MprView(QWidget):
    """Three orthogonal planes of one volume sharing a cursor point and window.

    Clicking in one plane moves the other two planes to that point; scrolling one plane
    moves the crosshair in the others.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._volume: Volume | None = None
        self._point: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._syncing = False
        self.views: dict[ViewAxis, SliceView] = {
            a: SliceView(self, axis=a, show_toolbar=False) for a in ViewAxis
        }
        self.preset_combo = QComboBox(self)
        self.preset_combo.activated.connect(lambda _i: self.apply_preset(self.preset_combo.currentText()))
        self.invert_button = QToolButton(self)
        self.invert_button.setText("Invert")
        self.invert_button.setCheckable(True)
        self.invert_button.toggled.connect(self._on_invert)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.clicked.connect(self.reset)
        self.point_label = QLabel("", self)
        self.point_label.setWordWrap(True)
        self.point_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.point_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        bar = QHBoxLayout()
        for w in (QLabel("Window:"), self.preset_combo, self.invert_button, self.reset_button):
            bar.addWidget(w)
        bar.addStretch(1)
        grid = QGridLayout()
        grid.setSpacing(2)
        grid.addWidget(self.views[ViewAxis.AXIAL], 0, 0)
        grid.addWidget(self.views[ViewAxis.CORONAL], 0, 1)
        grid.addWidget(self.views[ViewAxis.SAGITTAL], 1, 0)
        grid.addWidget(self.point_label, 1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addLayout(grid, 1)

        for view in self.views.values():
            view.voxel_clicked.connect(self.set_point)
            view.slice_changed.connect(lambda _i, v=view: self._on_scrolled(v))
            view.window_changed.connect(lambda w, lv, v=view: self._on_window(v, w, lv))

    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume`` in all three planes, crosshair at its centre."""
        self._volume = volume
        self._syncing = True
        try:
            for view in self.views.values():
                view.set_volume(volume)
        finally:
            self._syncing = False
        self.preset_combo.clear()
        if volume is not None:
            self.preset_combo.addItem("Default")
            self.preset_combo.addItems([p.name for p in presets_for(volume.modality, volume.units)])
            self.preset_combo.addItem(AUTO_PRESET_NAME)
            k, j, i = volume.shape
            self.set_point(((i - 1) // 2, (j - 1) // 2, (k - 1) // 2))
        else:
            self.point_label.setText("")

    def volume(self) -> Volume | None:
        return self._volume

    def point(self) -> tuple[float, float, float]:
        """The crosshair voxel ``(i, j, k)``."""
        return self._point

    def set_point(self, ijk: tuple[float, float, float]) -> None:
        """Move the shared cursor to voxel ``(i, j, k)``: every plane shows it."""
        if self._volume is None:
            return
        k_n, j_n, i_n = self._volume.shape
        i, j, k = (round(v) for v in ijk)
        self._point = (min(max(i, 0), i_n - 1), min(max(j, 0), j_n - 1), min(max(k, 0), k_n - 1))
        self._syncing = True
        try:
            for view in self.views.values():
                m = view.mapping()
                if m is None:
                    continue
                view.set_slice(int(m.from_voxel(self._point)[2]))
                view.set_crosshair(self._point)
        finally:
            self._syncing = False
        x, y, z = self._volume.index_to_lps(self._point)
        pi, pj, pk = self._point
        value = float(self._volume.array[pk, pj, pi])
        unit = "HU" if is_hu(self._volume.modality, self._volume.units) else self._volume.units
        self.point_label.setText(
            f"<b>Crosshair</b><br>voxel (i, j, k) = ({pi}, {pj}, {pk})<br>"
            f"patient LPS = ({x:.1f}, {y:.1f}, {z:.1f}) mm<br>value = {value:.1f} {unit}<br><br>"
            "<i>Click in a plane to move the crosshair; wheel or arrow keys scroll; "
            "right-drag sets the window; Ctrl+wheel zooms.</i>")

    def apply_preset(self, name: str) -> None:
        self.views[ViewAxis.AXIAL].apply_preset(name)

    def reset(self) -> None:
        for view in self.views.values():
            view.reset()
        if self._volume is not None:
            k, j, i = self._volume.shape
            self.set_point(((i - 1) // 2, (j - 1) // 2, (k - 1) // 2))

    def _on_invert(self, on: bool) -> None:
        for view in self.views.values():
            view.set_invert(on)

    def _on_scrolled(self, view: SliceView) -> None:
        if self._syncing or view.mapping() is None:
            return
        m = view.mapping()
        assert m is not None
        r, c, _s = m.from_voxel(self._point)
        self.set_point(m.to_voxel(r, c, view.slice_index()))

    def _on_window(self, source: SliceView, width: float, level: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for view in self.views.values():
                if view is not source:
                    view.set_window(width, level)
        finally:
            self._syncing = False
