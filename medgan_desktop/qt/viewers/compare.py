"""Comparison layout: 2-3 volumes side by side, a difference view and a fusion view.

All volumes are resampled onto the first (reference) volume's grid using their patient
coordinates, so one slice index, zoom and pan fit every view.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.imaging.orientation import ViewAxis
from medgan_desktop.core.imaging.resample import difference, resample_to_reference
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.flow_layout import FlowLayout, flow_row
from medgan_desktop.qt.viewers.slice_view import SliceView

FUSION_COLORMAPS = ("hot", "viridis", "inferno", "grey")


class CompareMode(StrEnum):
    SIDE_BY_SIDE = "side by side"
    DIFFERENCE = "difference"
    FUSION = "fusion"


def difference_pair(volumes: Sequence[Volume]) -> tuple[int, int]:
    """Indices ``(a, b)`` for the difference ``a - b``: synthetic minus real where flagged.

    With a synthetic volume and a real one of the same modality (e.g. MR, synthetic CT,
    real CT) the result is synthetic - real; otherwise the second minus the first for two
    volumes, the last minus the second for three.
    """
    if len(volumes) < 2:
        raise ValueError("a difference needs two volumes")
    synth = [n for n, v in enumerate(volumes) if v.synthetic]
    for s in synth:
        for n, v in enumerate(volumes):
            if n != s and not v.synthetic and v.modality == volumes[s].modality:
                return s, n
    for s in synth:
        for n, v in enumerate(volumes):
            if n != s and not v.synthetic:
                return s, n
    return (1, 0) if len(volumes) == 2 else (len(volumes) - 1, 1)


def symmetric_width(diff: np.ndarray) -> float:
    """A difference window width: twice the 99th percentile of |diff|, at least 20."""
    flat = np.abs(diff.reshape(-1)[:: max(diff.size // 1_000_000, 1)])
    p = float(np.percentile(flat, 99)) if flat.size else 0.0
    return max(20.0, float(np.ceil(2 * p / 10.0) * 10.0))


class CompareView(QWidget):
    """2 or 3 volumes side by side with synchronised slice, zoom, pan and window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._volumes: list[Volume] = []
        self._titles: list[str] = []
        self._syncing = False
        self._mode = CompareMode.SIDE_BY_SIDE
        self._blinded = False
        self._uncertainty: Volume | None = None
        self._pending_uncertainty: Volume | None = None
        self.views: list[SliceView] = []
        self.diff_view = SliceView(self, show_toolbar=False)
        self.fusion_view = SliceView(self, show_toolbar=False)

        self.axis_combo = QComboBox(self)
        self.axis_combo.addItems([a.value for a in ViewAxis])
        self.axis_combo.currentTextChanged.connect(self.set_axis)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[CompareMode, QPushButton] = {}
        for mode in CompareMode:
            b = QPushButton(mode.value.capitalize(), self)
            b.setCheckable(True)
            b.clicked.connect(lambda _c=False, m=mode: self.set_mode(m))
            self.mode_group.addButton(b)
            self.mode_buttons[mode] = b
        self.uncertainty_check = QCheckBox("Uncertainty", self)
        self.uncertainty_check.setToolTip(
            "Show the synthetic image's uncertainty map (standard deviation over test-time "
            "augmentation) over the synthetic pane, with its colour bar.")
        self.uncertainty_check.setChecked(True)
        self.uncertainty_check.setVisible(False)
        self.uncertainty_check.toggled.connect(lambda _on: self._apply_uncertainty())
        bar = flow_row(QLabel("Plane:"), self.axis_combo, *self.mode_buttons.values(),
                       self.uncertainty_check, parent=self)
        self.mode_buttons[CompareMode.SIDE_BY_SIDE].setChecked(True)
        self.fusion_controls = QWidget(self)
        fc = FlowLayout(self.fusion_controls)
        self.base_combo = QComboBox(self)
        self.overlay_combo = QComboBox(self)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.setMaximumWidth(140)
        self.cmap_combo = QComboBox(self)
        self.cmap_combo.addItems(FUSION_COLORMAPS)
        for combo in (self.base_combo, self.overlay_combo):
            # series titles can be long: show a few words, the full title in the tooltip
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
            combo.currentTextChanged.connect(combo.setToolTip)
        for w in (QLabel("Base:"), self.base_combo, QLabel("Overlay:"), self.overlay_combo,
                  QLabel("Opacity:"), self.opacity_slider, QLabel("Colours:"), self.cmap_combo):
            fc.addWidget(w)
        # the fusion controls get a row of their own under the mode buttons, so showing
        # them never widens the viewer (which would squeeze the docks beside it)
        self.fusion_controls.setVisible(False)
        self.message = QLabel("Nothing to compare yet: translate a series or open 2-3 volumes.", self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.side_page = QWidget(self)
        self.side_layout = QHBoxLayout(self.side_page)
        self.side_layout.setContentsMargins(0, 0, 0, 0)
        self.side_layout.setSpacing(2)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.side_page)
        self.stack.addWidget(self.diff_view)
        self.stack.addWidget(self.fusion_view)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(bar)
        lay.addWidget(self.fusion_controls)
        lay.addWidget(self.stack, 1)

        self.opacity_slider.valueChanged.connect(
            lambda v: self.fusion_view.set_overlay_opacity(v / 100.0))
        self.cmap_combo.currentTextChanged.connect(self.fusion_view.set_overlay_colormap)
        self.base_combo.activated.connect(lambda _i: self._update_fusion())
        self.overlay_combo.activated.connect(lambda _i: self._update_fusion())
        for extra in (self.diff_view, self.fusion_view):
            self._connect_sync(extra)

    # -- public API ---------------------------------------------------------------------
    def set_volumes(self, volumes: Sequence[Volume], titles: Sequence[str] | None = None) -> None:
        """Show 2 or 3 volumes; the first is the reference grid the others are resampled onto."""
        if not 2 <= len(volumes) <= 3:
            raise ValueError(f"the comparison shows 2 or 3 volumes, got {len(volumes)}")
        ref = volumes[0]
        self._volumes = [ref] + [resample_to_reference(v, ref) for v in volumes[1:]]
        self._titles = list(titles) if titles else [v.description or f"Volume {n + 1}"
                                                    for n, v in enumerate(volumes)]
        while len(self._titles) < len(self._volumes):
            self._titles.append(f"Volume {len(self._titles) + 1}")
        for view in self.views:
            self.side_layout.removeWidget(view)
            view.deleteLater()
        self.views = []
        self._syncing = True
        try:
            for vol, title in zip(self._volumes, self._titles, strict=False):
                view = SliceView(self.side_page, axis=self.axis_combo.currentText(),
                                 show_toolbar=False)
                view.set_volume(vol)
                view.set_title(title)
                view.set_blinded(self._blinded)
                self.side_layout.addWidget(view, 1)
                self.views.append(view)
                self._connect_sync(view)
            a, b = difference_pair(self._volumes)
            diff = difference(self._volumes[a], self._volumes[b])
            self.diff_view.set_axis(self.axis_combo.currentText())
            self.diff_view.set_volume(diff)
            self.diff_view.set_title(f"{self._titles[a]} − {self._titles[b]}")
            self.diff_view.set_colormap("RdBu", show_bar=True)
            self.diff_view.set_window(symmetric_width(diff.array), 0.0)
            self.diff_pair = (a, b)
            for combo in (self.base_combo, self.overlay_combo):
                combo.clear()
                combo.addItems(self._titles)
            self.base_combo.setCurrentIndex(0)
            self.overlay_combo.setCurrentIndex(1)
            self.fusion_view.set_axis(self.axis_combo.currentText())
            self._update_fusion()
        finally:
            self._syncing = False
        self._link_views()
        # an uncertainty map belongs to the comparison it was announced for, no other
        self._uncertainty, self._pending_uncertainty = self._pending_uncertainty, None
        self._apply_uncertainty()
        self.set_mode(self._mode)

    def set_uncertainty(self, volume: Volume | None) -> None:
        """The uncertainty map of the synthetic volume of the *next* :meth:`set_volumes`
        (the second volume), shown over its pane with a colour bar."""
        self._pending_uncertainty = volume

    def uncertainty(self) -> Volume | None:
        return self._uncertainty

    def _apply_uncertainty(self) -> None:
        unc = self._uncertainty
        fits = unc is not None and len(self.views) >= 2 and self._volumes[1].shape == unc.shape
        self.uncertainty_check.setVisible(fits)
        if len(self.views) < 2:
            return
        if fits and unc is not None and self.uncertainty_check.isChecked():
            hi = max(float(np.ceil(np.percentile(np.asarray(unc.array)[:: max(1, unc.shape[0] // 8)], 99))), 1.0)
            self.views[1].set_overlay(unc, opacity=0.6, cmap="inferno", window=(hi, hi / 2), bar=True)
        else:
            self.views[1].set_overlay(None)

    def set_blinded(self, blinded: bool) -> None:
        """Hide SYNTHETIC banners and descriptions in every view (blinded reading)."""
        self._blinded = bool(blinded)
        for view in self.all_views():
            view.set_blinded(self._blinded)

    def show_message(self, text: str) -> None:
        """Replace the views by a message (e.g. while volumes are being resampled)."""
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def volumes(self) -> list[Volume]:
        """The shown volumes, all on the reference grid."""
        return list(self._volumes)

    def mode(self) -> CompareMode:
        return self._mode

    def set_mode(self, mode: CompareMode | str) -> None:
        """Side by side, difference or fusion."""
        self._mode = CompareMode(mode)
        self.mode_buttons[self._mode].setChecked(True)
        self.fusion_controls.setVisible(self._mode == CompareMode.FUSION)
        if not self._volumes:
            self.stack.setCurrentWidget(self.message)
            return
        page = {CompareMode.SIDE_BY_SIDE: self.side_page, CompareMode.DIFFERENCE: self.diff_view,
                CompareMode.FUSION: self.fusion_view}[self._mode]
        self.stack.setCurrentWidget(page)

    def set_axis(self, axis: ViewAxis | str) -> None:
        axis = ViewAxis(axis)
        if self.axis_combo.currentText() != axis.value:
            self.axis_combo.setCurrentText(axis.value)  # re-enters through the signal
            return
        self._syncing = True
        try:
            for view in self.all_views():
                view.set_axis(axis)
        finally:
            self._syncing = False

    def all_views(self) -> list[SliceView]:
        return [*self.views, self.diff_view, self.fusion_view]

    def set_slice(self, index: int) -> None:
        for view in self.all_views():
            view.set_slice(index)

    def current_widget(self) -> QWidget:
        return self.stack.currentWidget() or self.stack

    # -- internals ----------------------------------------------------------------------
    def _update_fusion(self) -> None:
        if not self._volumes:
            return
        base = self._volumes[self.base_combo.currentIndex()]
        over = self._volumes[self.overlay_combo.currentIndex()]
        index = self.fusion_view.slice_index()
        had = self.fusion_view.volume() is not None
        self.fusion_view.set_volume(base)
        if had:
            self.fusion_view.set_slice(index)
        self.fusion_view.set_title(f"{self.base_combo.currentText()} + "
                                   f"{self.overlay_combo.currentText()} (fusion)")
        self.fusion_view.set_overlay(over, self.opacity_slider.value() / 100.0,
                                     self.cmap_combo.currentText())

    def _link_views(self) -> None:
        """Side-by-side panes share zoom and pan (they have the same size); the difference
        and fusion views are single panes of another shape and fit on their own. A zoom or
        pan by the user in any pane keeps all of them from refitting on resize."""
        lead = self.views[0].vb if self.views else None
        for view in self.views:
            if lead is not None and view.vb is not lead:
                view.vb.setXLink(lead)
                view.vb.setYLink(lead)
            view.vb.sigRangeChangedManually.connect(self._user_zoomed)

    def _user_zoomed(self, *_args: object) -> None:
        for view in self.views:
            view.mark_user_view()

    def _connect_sync(self, view: SliceView) -> None:
        view.slice_changed.connect(lambda i, v=view: self._on_slice(v, i))
        view.window_changed.connect(lambda w, lv, v=view: self._on_window(v, w, lv))

    def _on_slice(self, source: SliceView, index: int) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for view in self.all_views():
                if view is not source:
                    view.set_slice(index)
        finally:
            self._syncing = False

    def _on_window(self, source: SliceView, width: float, level: float) -> None:
        """Windows follow each other between volumes with the same units (CT with CT)."""
        if self._syncing or source is self.diff_view:
            return
        src = source.volume()
        if src is None:
            return
        self._syncing = True
        try:
            for view in [*self.views, self.fusion_view]:
                vol = view.volume()
                if view is not source and vol is not None and vol.units == src.units \
                        and vol.modality == src.modality:
                    view.set_window(width, level)
        finally:
            self._syncing = False
