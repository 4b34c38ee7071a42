"""The 2D slice viewer (pyqtgraph): one plane of a volume, radiological convention.

Mouse: wheel scrolls slices (Ctrl+wheel zooms), left-drag pans, middle-drag zooms,
right-drag changes window (horizontal) and level (vertical), left-click reports the
voxel (MPR crosshair). Keys: arrows / PageUp / PageDown / Home / End scroll,
``R`` resets, ``I`` inverts, ``1``-``9`` pick the window presets in menu order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton, QVBoxLayout, QWidget

from medgan_desktop.core.imaging.orientation import SliceMapping, ViewAxis, slice_mapping
from medgan_desktop.core.imaging.windowing import (
    AUTO_PRESET_NAME,
    apply_window,
    auto_window,
    default_window,
    is_hu,
    presets_for,
)
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.flow_layout import flow_row
from medgan_desktop.qt.viewers.overlay import ColorBar, SliceOverlay

_DEFAULT_PRESET = "Default"


def colormap_lut(name: str | None) -> NDArray[np.uint8] | None:
    """A 256x3 lookup table for a colour map name (None / "grey" -> no table).

    ``"RdBu"`` is the diverging map used for differences: blue for negative, white at
    zero, red for positive values.
    """
    if name is None or name.lower() in ("grey", "gray"):
        return None
    x = np.linspace(0.0, 1.0, 256)
    if name == "RdBu":
        stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        cols = np.array(
            [[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]], float
        )
        lut = np.stack([np.interp(x, stops, cols[:, c]) for c in range(3)], axis=1)
        return lut.round().astype(np.uint8)
    if name == "hot":
        r = np.clip(x * 3, 0, 1)
        g = np.clip(x * 3 - 1, 0, 1)
        b = np.clip(x * 3 - 2, 0, 1)
        return (np.stack([r, g, b], axis=1) * 255).round().astype(np.uint8)
    cmap = pg.colormap.get(name)
    return np.asarray(cmap.getLookupTable(nPts=256, alpha=False), dtype=np.uint8)


class _ViewBox(pg.ViewBox):  # type: ignore[misc]
    """A ViewBox with radiology mouse bindings."""

    scrolled = Signal(int)
    window_dragged = Signal(float, float)
    clicked = Signal(float, float)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.setMouseMode(pg.ViewBox.PanMode)

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 (Qt API)
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if delta:
            self.scrolled.emit(1 if delta > 0 else -1)
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        button = ev.button()
        if button == Qt.MouseButton.RightButton:
            ev.accept()
            d = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(float(d.x()), float(d.y()))
        elif button == Qt.MouseButton.MiddleButton:
            ev.accept()
            d = ev.screenPos() - ev.lastScreenPos()
            s = 1.01 ** float(d.y())
            self.scaleBy((s, s), center=self.mapToView(ev.buttonDownPos()))
            self.sigRangeChangedManually.emit(self.state["mouseEnabled"])
        else:
            super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.clicked.emit(float(p.x()), float(p.y()))
        else:
            ev.ignore()


class SliceView(QWidget):
    """One plane of a volume with windowing, probe, orientation labels and overlays.

    Signals:
        slice_changed(int): the shown slice index.
        window_changed(float, float): ``(width, level)``.
        view_changed(): zoom or pan changed (for synchronised viewers).
        voxel_clicked(object): ``(i, j, k)`` voxel index of a left click.
        probe_changed(str): the probe text under the cursor.
    """

    slice_changed = Signal(int)
    window_changed = Signal(float, float)
    view_changed = Signal()
    voxel_clicked = Signal(object)
    probe_changed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        axis: ViewAxis | str = ViewAxis.AXIAL,
        show_toolbar: bool = True,
    ) -> None:
        super().__init__(parent)
        self._volume: Volume | None = None
        self._axis = ViewAxis(axis)
        self._mapping: SliceMapping | None = None
        self._index = 0
        self._width, self._level = 1.0, 0.0
        self._drag_rate = 1.0
        self._invert = False
        self._blinded = False
        self._geometry_hidden = False
        #: what the empty view says (the main viewer tells a new user how to open a study)
        self.empty_hint = ""
        self._orientation_hidden = False
        self._title: str | None = None
        self._cmap: str | None = None
        self._lut: NDArray[np.uint8] | None = None
        self._probe: list[str] = []
        self._overlay_volume: Volume | None = None
        self._overlay_window = (1.0, 0.0)
        self._overlay_bar = False  # the colour bar shows the overlay's scale (an uncertainty map)
        self._image_bar = False
        self._overlay_lut: NDArray[np.uint8] | None = colormap_lut("hot")
        self._crosshair: tuple[float, float, float] | None = None

        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        self.vb = _ViewBox()
        self.graphics.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setOpacity(0.5)
        self.overlay_item.setVisible(False)
        self.vb.addItem(self.overlay_item)
        pen = pg.mkPen((255, 215, 0, 180), width=1)
        self._vline = pg.InfiniteLine(angle=90, pen=pen, movable=False)
        self._hline = pg.InfiniteLine(angle=0, pen=pen, movable=False)
        for line in (self._vline, self._hline):
            line.setVisible(False)
            self.vb.addItem(line, ignoreBounds=True)
        self._overlay = SliceOverlay(self, self.graphics)
        self.graphics.installEventFilter(self)
        self.graphics.viewport().installEventFilter(self)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.vb.scrolled.connect(lambda step: self.set_slice(self._index + step))
        self.vb.window_dragged.connect(self._on_window_drag)
        self.vb.clicked.connect(self._on_clicked)
        self.vb.sigRangeChanged.connect(self._on_range_changed)
        self._user_view = False
        self.vb.sigRangeChangedManually.connect(self._on_user_range)
        # refit when the view box itself has its new size (the widget's resize event
        # comes before the box is laid out, and a fit then uses the old shape)
        self.vb.sigResized.connect(lambda *_: self.refit())

        self.colorbar = ColorBar(self)
        self.colorbar.setVisible(False)

        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self.set_slice)
        self.slice_label = QLabel("–", self)
        self.slice_label.setMinimumWidth(70)

        self.axis_combo = QComboBox(self)
        self.axis_combo.addItems([a.value for a in ViewAxis])
        self.axis_combo.setCurrentText(self._axis.value)
        self.axis_combo.currentTextChanged.connect(self.set_axis)
        self.preset_combo = QComboBox(self)
        self.preset_combo.setToolTip("Window presets")
        # preset names can be long ("Auto (percentiles)"): the toolbar must not set the
        # viewer's minimum width, or it squeezes the docks beside it
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.setMinimumContentsLength(8)
        self.preset_combo.currentTextChanged.connect(self.preset_combo.setToolTip)
        self.preset_combo.activated.connect(lambda _i: self.apply_preset(self.preset_combo.currentText()))
        self.invert_button = QToolButton(self)
        self.invert_button.setText("Invert")
        self.invert_button.setCheckable(True)
        self.invert_button.toggled.connect(self.set_invert)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Reset zoom, pan and window (R)")
        self.reset_button.clicked.connect(self.reset)

        # the toolbar wraps onto a second row when the view is narrow
        self.toolbar = flow_row(QLabel("Plane:"), self.axis_combo, QLabel("Window:"),
                                self.preset_combo, self.invert_button, self.reset_button,
                                parent=self)
        self.toolbar.setVisible(show_toolbar)

        mid = QHBoxLayout()
        mid.setContentsMargins(0, 0, 0, 0)
        mid.setSpacing(0)
        mid.addWidget(self.graphics, 1)
        mid.addWidget(self.colorbar)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(2, 0, 2, 2)
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.slice_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.toolbar)
        lay.addLayout(mid, 1)
        lay.addLayout(bottom)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self._update_enabled()

    # -- public API -----------------------------------------------------------------
    def set_volume(self, volume: Volume | None, reset_window: bool = True) -> None:
        """Show ``volume`` (None clears); keeps the plane, starts in the middle slice."""
        self._volume = volume
        self._probe = []
        if volume is not None and reset_window:
            self._width, self._level = default_window(volume.array, volume.modality,
                                                      volume.units, volume.meta)
            span = auto_window(volume.array, 0.5, 99.5)[0]
            self._drag_rate = max(span, 1.0) / 500.0
        self._fill_presets()
        self._remap(centre=True)
        self._update_enabled()
        if volume is not None:
            self.window_changed.emit(self._width, self._level)

    def volume(self) -> Volume | None:
        return self._volume

    def mapping(self) -> SliceMapping | None:
        return self._mapping

    def axis(self) -> ViewAxis:
        return self._axis

    def set_axis(self, axis: ViewAxis | str) -> None:
        """Switch plane (axial, coronal, sagittal)."""
        axis = ViewAxis(axis)
        if axis == self._axis and self._mapping is not None:
            return
        self._axis = axis
        if self.axis_combo.currentText() != axis.value:
            self.axis_combo.blockSignals(True)
            self.axis_combo.setCurrentText(axis.value)
            self.axis_combo.blockSignals(False)
        self._remap(centre=True)

    def n_slices(self) -> int:
        return self._mapping.n_slices if self._mapping else 0

    def slice_index(self) -> int:
        return self._index

    def set_slice(self, index: int) -> None:
        """Show slice ``index`` (clamped); emits ``slice_changed`` when it changes."""
        if self._mapping is None:
            return
        index = int(min(max(int(index), 0), self._mapping.n_slices - 1))
        changed = index != self._index
        self._index = index
        self._render()
        if self.slider.value() != index:
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        if changed:
            self.slice_changed.emit(index)

    def window_level(self) -> tuple[float, float]:
        """Current ``(width, level)``."""
        return self._width, self._level

    def set_window(self, width: float, level: float) -> None:
        width = max(float(width), 1e-3)
        if (width, float(level)) == (self._width, self._level):
            return
        self._width, self._level = width, float(level)
        self._render()
        self.window_changed.emit(self._width, self._level)

    def apply_preset(self, name: str) -> None:
        """Apply a preset by its name in the preset list ("Default", "Auto (percentiles)", CT names)."""
        vol = self._volume
        if vol is None:
            return
        if name == _DEFAULT_PRESET:
            self.set_window(*default_window(vol.array, vol.modality, vol.units, vol.meta))
            return
        if name == AUTO_PRESET_NAME:
            self.set_window(*auto_window(vol.array))
            return
        for p in presets_for(vol.modality, vol.units):
            if p.name == name:
                self.set_window(p.width, p.level)
                return
        raise KeyError(f"no window preset {name!r} for this volume")

    def set_invert(self, invert: bool) -> None:
        self._invert = bool(invert)
        if self.invert_button.isChecked() != self._invert:
            self.invert_button.setChecked(self._invert)
        self._render()

    def is_inverted(self) -> bool:
        return self._invert

    def reset(self) -> None:
        """Fit the slice in the view and restore the default window (zoom, pan, window)."""
        if self._volume is not None:
            self.set_invert(False)
            self.apply_preset(_DEFAULT_PRESET)
        self._fit()

    def set_blinded(self, blinded: bool) -> None:
        """Hide the SYNTHETIC banner and series description (blinded reader study)."""
        self._blinded = bool(blinded)
        self._overlay.update()

    def set_geometry_hidden(self, hidden: bool) -> None:
        """Hide slice number and position, spacing, scale bar and voxel coordinates.

        For a blinded reader study where a series' slice count, spacing or position
        could tell where it came from; the probe then shows the value only.
        """
        self._geometry_hidden = bool(hidden)
        self._probe = []
        if self._mapping is not None:
            self._render()
        else:
            self._overlay.update()

    def geometry_hidden(self) -> bool:
        return self._geometry_hidden

    def set_orientation_hidden(self, hidden: bool) -> None:
        """Hide the orientation letters at the edges (projection images in a reader study)."""
        self._orientation_hidden = bool(hidden)
        self._overlay.update()

    def orientation_hidden(self) -> bool:
        return self._orientation_hidden

    def synthetic_banner_visible(self) -> bool:
        """True when generated voxels are on screen: the image, or a fused overlay."""
        shown = [v for v in (self._volume, self._overlay_volume) if v is not None]
        return bool(any(v.synthetic for v in shown) and not self._blinded)

    def set_title(self, title: str | None) -> None:
        """Text shown instead of the series description (e.g. "Synthetic CT")."""
        self._title = title
        self._overlay.update()

    def set_colormap(self, name: str | None, show_bar: bool = False) -> None:
        """Colour map for the image (None = grey); optionally show a colour bar."""
        self._cmap = name
        self._lut = colormap_lut(name)
        self.image_item.setLookupTable(self._lut)
        self._image_bar = show_bar
        self.colorbar.setVisible(show_bar or self._overlay_bar)
        self._render()

    def set_overlay(
        self,
        volume: Volume | None,
        opacity: float = 0.5,
        cmap: str | None = "hot",
        window: tuple[float, float] | None = None,
        bar: bool = False,
    ) -> None:
        """Fuse ``volume`` (same grid as the main volume) over the image; with ``bar`` the
        colour bar shows the overlay's colours and ``window`` (width, level) in its units."""
        if volume is not None and self._volume is not None and volume.shape != self._volume.shape:
            raise ValueError("the overlay must be on the same grid as the shown volume")
        self._overlay_volume = volume
        if volume is not None:
            self._overlay_window = window or default_window(volume.array, volume.modality,
                                                            volume.units, volume.meta)
        self._overlay_lut = colormap_lut(cmap)
        self.overlay_item.setLookupTable(self._overlay_lut)
        self.overlay_item.setOpacity(float(opacity))
        self.overlay_item.setVisible(volume is not None)
        self._overlay_bar = bar and volume is not None
        self.colorbar.setVisible(self._image_bar or self._overlay_bar)
        self._render()

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_item.setOpacity(float(opacity))

    def set_overlay_colormap(self, cmap: str | None) -> None:
        self._overlay_lut = colormap_lut(cmap)
        self.overlay_item.setLookupTable(self._overlay_lut)
        self._render()

    def set_crosshair(self, ijk: tuple[float, float, float] | None) -> None:
        """Draw a crosshair through voxel ``(i, j, k)`` (None hides it)."""
        self._crosshair = ijk
        show = ijk is not None and self._mapping is not None
        self._vline.setVisible(show)
        self._hline.setVisible(show)
        if show and ijk is not None and self._mapping is not None:
            r, c, _s = self._mapping.from_voxel(ijk)
            self._vline.setPos((c + 0.5) * self._mapping.col_spacing)
            self._hline.setPos((r + 0.5) * self._mapping.row_spacing)

    def voxel_at(self, x: float, y: float) -> tuple[float, float, float] | None:
        """Voxel ``(i, j, k)`` under view coordinates ``(x, y)`` in mm; None outside."""
        m = self._mapping
        if m is None:
            return None
        col, row = math.floor(x / m.col_spacing), math.floor(y / m.row_spacing)
        if not (0 <= row < m.n_rows and 0 <= col < m.n_cols):
            return None
        return m.to_voxel(row, col, self._index)

    def probe(self, row: int, col: int) -> dict[str, Any]:
        """Voxel index, patient position (LPS mm) and value at screen ``(row, col)``."""
        m, vol = self._mapping, self._volume
        if m is None or vol is None:
            raise RuntimeError("no volume shown")
        i, j, k = (int(v) for v in m.to_voxel(row, col, self._index))
        lps = vol.index_to_lps((i, j, k))
        value = float(vol.array[k, j, i])
        return {"ijk": (i, j, k), "lps": tuple(float(v) for v in lps), "value": value}

    def probe_text(self) -> list[str]:
        return list(self._probe)

    def view_range(self) -> QRectF:
        rect: QRectF = self.vb.viewRect()
        return rect

    def set_view_range(self, rect: QRectF) -> None:
        self.vb.setRange(rect=rect, padding=0.0)

    def mm_per_pixel(self) -> float:
        """Millimetres per screen pixel at the current zoom (0 when nothing is shown)."""
        if self._mapping is None or self._overlay.width() <= 0:
            return 0.0
        r = self.vb.viewRect()
        return float(max(r.width() / max(self._overlay.width(), 1),
                         r.height() / max(self._overlay.height(), 1)))

    def current_image(self) -> NDArray[Any] | None:
        """The displayed 2D slice in volume units (rows top->bottom), or None."""
        if self._mapping is None or self._volume is None:
            return None
        return self._mapping.extract(self._volume.array, self._index)

    def corner_text(self, corner: str) -> list[str]:
        """Overlay lines for a corner: top_left, top_right, bottom_left, bottom_right."""
        vol, m = self._volume, self._mapping
        if vol is None or m is None:
            return []
        if corner == "top_left":
            if self._blinded:
                return [self._title] if self._title else []
            lines = [self._title or vol.description or "(no description)"]
            lines.append(f"{vol.modality}  {m.n_cols}x{m.n_rows}")
            return lines
        if corner == "top_right":
            if self._geometry_hidden:
                return []
            return [f"Im: {self._index + 1}/{m.n_slices}", f"Loc: {self.slice_location():.1f} mm"]
        if corner == "bottom_left":
            return list(self._probe)
        if corner == "bottom_right":
            unit = "HU" if is_hu(vol.modality, vol.units) else ""
            inv = "  inverted" if self._invert else ""
            wl = f"W {self._width:.0f} L {self._level:.0f} {unit}{inv}".replace("  ", " ")
            if self._geometry_hidden:
                return [wl]
            return [wl, f"{m.col_spacing:.2f}x{m.row_spacing:.2f} mm"]
        raise ValueError(f"unknown corner {corner!r}")

    def slice_location(self) -> float:
        """Patient coordinate (mm) of the shown slice along the plane's normal (x, y or z)."""
        vol, m = self._volume, self._mapping
        if vol is None or m is None:
            return 0.0
        normal = {ViewAxis.AXIAL: 2, ViewAxis.CORONAL: 1, ViewAxis.SAGITTAL: 0}[self._axis]
        ijk = m.to_voxel((m.n_rows - 1) / 2, (m.n_cols - 1) / 2, self._index)
        return float(vol.index_to_lps(ijk)[normal])

    # -- internals ------------------------------------------------------------------
    def _fill_presets(self) -> None:
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        if self._volume is not None:
            self.preset_combo.addItem(_DEFAULT_PRESET)
            for p in presets_for(self._volume.modality, self._volume.units):
                self.preset_combo.addItem(p.name)
            self.preset_combo.addItem(AUTO_PRESET_NAME)
        self.preset_combo.blockSignals(False)

    def _update_enabled(self) -> None:
        has = self._volume is not None
        for w in (self.slider, self.axis_combo, self.preset_combo, self.invert_button,
                  self.reset_button):
            w.setEnabled(has)

    def _remap(self, centre: bool) -> None:
        vol = self._volume
        if vol is None:
            self._mapping = None
            self.image_item.clear()
            self.overlay_item.clear()
            self.slice_label.setText("no image")
            self._overlay.update()
            return
        self._mapping = slice_mapping(vol.shape, vol.spacing, vol.direction, self._axis)
        m = self._mapping
        tr = QTransform.fromScale(m.col_spacing, m.row_spacing)
        self.image_item.setTransform(tr)
        self.overlay_item.setTransform(tr)
        self.slider.blockSignals(True)
        self.slider.setMaximum(m.n_slices - 1)
        self.slider.blockSignals(False)
        if centre:
            self._index = -1
            self.set_slice(m.n_slices // 2)
        else:
            self.set_slice(min(self._index, m.n_slices - 1))
        self.vb.setLimits(xMin=-m.n_cols * m.col_spacing, xMax=2 * m.n_cols * m.col_spacing,
                          yMin=-m.n_rows * m.row_spacing, yMax=2 * m.n_rows * m.row_spacing)
        self._fit()
        self.set_crosshair(self._crosshair)

    def _fit(self) -> None:
        """Fit the whole slice in the view; it stays fitted through resizes (a view laid out
        while hidden, as in MPR or Compare before their tab is shown, would otherwise keep
        a tiny box's zoom) until the user zooms or pans."""
        m = self._mapping
        self._user_view = False
        if m is not None:
            self.vb.setRange(QRectF(0, 0, m.n_cols * m.col_spacing, m.n_rows * m.row_spacing),
                             padding=0.0)

    def refit(self) -> None:
        """Fit the slice again unless the user has zoomed or panned."""
        if not self._user_view:
            self._fit()

    def mark_user_view(self) -> None:
        """Keep the current zoom and pan through resizes (a linked pane was zoomed)."""
        self._user_view = True

    def user_adjusted_view(self) -> bool:
        """True once the user zoomed or panned since the slice was last fitted."""
        return self._user_view

    def _render(self) -> None:
        vol, m = self._volume, self._mapping
        if vol is None or m is None or self._index < 0:
            return
        sl = m.extract(vol.array, self._index)
        img = apply_window(sl, self._width, self._level, self._invert)
        self.image_item.setImage(img, autoLevels=False, levels=(0, 255), lut=self._lut)
        ov = self._overlay_volume
        if ov is not None:
            osl = m.extract(ov.array, self._index)
            self.overlay_item.setImage(apply_window(osl, *self._overlay_window),
                                       autoLevels=False, levels=(0, 255), lut=self._overlay_lut)
        if self._overlay_bar and ov is not None:
            ow, olev = self._overlay_window
            self.colorbar.set_range(self._overlay_lut, olev - ow / 2, olev + ow / 2, ov.units)
        elif self.colorbar.isVisible() or self._cmap:
            half = self._width / 2
            unit = "HU" if is_hu(vol.modality, vol.units) else vol.units
            self.colorbar.set_range(self._lut, self._level - half, self._level + half, unit)
        self.slice_label.setText("" if self._geometry_hidden else f"{self._index + 1} / {m.n_slices}")
        self._overlay.update()

    def _on_window_drag(self, dx: float, dy: float) -> None:
        if self._volume is None:
            return
        self.set_window(self._width + dx * self._drag_rate, self._level + dy * self._drag_rate)

    def _on_clicked(self, x: float, y: float) -> None:
        ijk = self.voxel_at(x, y)
        if ijk is not None:
            self.voxel_clicked.emit(ijk)

    def _on_mouse_moved(self, pos: QPointF) -> None:
        m = self._mapping
        if m is None:
            return
        p = self.vb.mapSceneToView(pos)
        col, row = math.floor(p.x() / m.col_spacing), math.floor(p.y() / m.row_spacing)
        if 0 <= row < m.n_rows and 0 <= col < m.n_cols:
            self._probe = self._format_probe(self.probe(row, col))
        else:
            self._probe = []
        self.probe_changed.emit(" ".join(self._probe))
        self._overlay.update()

    def _format_probe(self, info: dict[str, Any]) -> list[str]:
        vol = self._volume
        assert vol is not None
        i, j, k = info["ijk"]
        x, y, z = info["lps"]
        unit = "HU" if is_hu(vol.modality, vol.units) else vol.units
        if self._geometry_hidden:
            return [f"Value = {info['value']:.1f} {unit}".rstrip()]
        return [f"(i, j, k) = ({i}, {j}, {k})",
                f"LPS = ({x:.1f}, {y:.1f}, {z:.1f}) mm",
                f"Value = {info['value']:.1f} {unit}"]

    def _on_range_changed(self, *_args: Any) -> None:
        self._overlay.update()
        self.view_changed.emit()

    def _on_user_range(self, *_args: Any) -> None:
        self._user_view = True

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._overlay.setGeometry(self.graphics.rect())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.graphics and event.type() == QEvent.Type.Resize:
            assert isinstance(obj, QWidget)
            self._overlay.setGeometry(obj.rect())
        if event.type() == QEvent.Type.KeyPress and self._handle_key(event.key()):  # type: ignore[attr-defined]
            return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        if not self._handle_key(event.key()):
            super().keyPressEvent(event)

    def _handle_key(self, key: int) -> bool:
        k = Qt.Key
        steps = {k.Key_Up: 1, k.Key_Right: 1, k.Key_Down: -1, k.Key_Left: -1,
                 k.Key_PageUp: 10, k.Key_PageDown: -10}
        if key in steps:
            self.set_slice(self._index + steps[key])  # type: ignore[index]
        elif key == k.Key_Home:
            self.set_slice(0)
        elif key == k.Key_End:
            self.set_slice(self.n_slices() - 1)
        elif key == k.Key_R:
            self.reset()
        elif key == k.Key_I:
            self.set_invert(not self._invert)
        elif k.Key_1 <= key <= k.Key_9 and key - k.Key_1 < self.preset_combo.count():
            # 1 = Default, then the presets in menu order (CT: 2 = brain ... 8 = mediastinum)
            self.preset_combo.setCurrentIndex(key - k.Key_1)
            self.apply_preset(self.preset_combo.currentText())
        else:
            return False
        return True
