"""The Train panel's data box: a folder or volume file, or series from the study browser.

Also the volume settings (slice axis, modality, fixed window) and the augmentation; its
:meth:`TrainDataBox.data_config` is the :class:`~medgan_desktop.core.training.config.DataConfig`
the training job receives.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE
from medgan_desktop.core.training.config import DataConfig
from medgan_desktop.qt import dialogs
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.widgets import form_grid, spin_box

log = logging.getLogger(__name__)

#: Slice axes for volume data (``DataConfig.axis``).
_AXES = (("0: axial (k)", 0), ("1: coronal (j)", 1), ("2: sagittal (i)", 2))
_MODALITIES = (("Auto (guess)", ""), ("CT", "CT"), ("MR", "MR"), ("PT", "PT"), ("CR", "CR"), ("DX", "DX"))


class TrainDataBox(QGroupBox):
    """Where the training images come from and how they are preprocessed."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__("Data", parent)
        self.context = context
        self.selected_series = ""
        self.labels_auto = False  # "class labels" was ticked by choosing a conditional method
        self._build()
        self.volumes_btn.toggled.connect(self._show_volumes)
        self._show_volumes(False)

    def _show_volumes(self, on: bool) -> None:
        self.volumes_btn.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.volumes_box.setVisible(on)

    def _build(self) -> None:
        dv = QVBoxLayout(self)
        self.rb_folder = QRadioButton("Folder or volume file")
        self.rb_series = QRadioButton("Series from the browser")
        self.rb_folder.setChecked(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("image folder (PNG/JPEG), NIfTI/MHA file or folder")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        # The choice on its own line and its fields under it, so the box stays narrow enough
        # for a side dock on a 1280-pixel screen.
        dv.addWidget(self.rb_folder)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        dv.addLayout(row)

        srow = QHBoxLayout()
        srow.addWidget(self.rb_series)
        self.series_label = QLabel("(no series selected)")
        self.series_label.setToolTip("The series selected in the study browser.")
        self.series_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        srow.addWidget(self.series_label, 1)
        dv.addLayout(srow)
        brow = QHBoxLayout()
        brow.addStretch(1)
        self.add_series_btn = QPushButton("Add")
        self.add_series_btn.setToolTip("Add the series selected in the browser to the training series.")
        self.add_series_btn.clicked.connect(self.add_selected_series)
        self.remove_series_btn = QPushButton("Remove")
        self.remove_series_btn.setToolTip("Remove the highlighted series from the list.")
        self.remove_series_btn.clicked.connect(self._remove_series)
        brow.addWidget(self.add_series_btn)
        brow.addWidget(self.remove_series_btn)
        dv.addLayout(brow)
        self.series_list = QListWidget()
        self.series_list.setMaximumHeight(64)
        self.series_list.setToolTip(
            "Series to train on (slices of all of them, one modality). Empty: the series selected in the browser."
        )
        dv.addWidget(self.series_list)
        self.series_list.setVisible(False)  # shown once a series is added

        self.channels_combo = QComboBox()
        self.channels_combo.addItem("1 (grey)", 1)
        self.channels_combo.addItem("3 (RGB)", 3)
        self.channels_combo.setToolTip("Channels of the training images; 3 only for colour image folders (volumes are grey).")
        self.max_images = spin_box(0, 1_000_000)
        self.max_images.setSpecialValueText("all")
        self.max_images.setToolTip("Use a fixed random subset of this many images or slices (0: all).")
        self.labels_check = QCheckBox("Class labels from subfolders")
        self.labels_check.setToolTip(
            "Each first-level subfolder is a class (e.g. NORMAL / PNEUMONIA); needed by cgan (ticked when you choose it)."
        )
        self.labels_check.toggled.connect(lambda _on: setattr(self, "labels_auto", False))
        self.flip_check = QCheckBox("Random flips")
        self.rot_check = QCheckBox("Random 90° rotations")
        dv.addWidget(form_grid([("Channels", self.channels_combo), ("Max images", self.max_images)]))
        for check in (self.labels_check, self.flip_check, self.rot_check):
            dv.addWidget(check)
        self.rb_series.toggled.connect(self._on_source_changed)
        self.volumes_btn = QToolButton()
        self.volumes_btn.setText("Volumes: slice axis, modality, window")
        self.volumes_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.volumes_btn.setCheckable(True)
        self.volumes_btn.setArrowType(Qt.ArrowType.RightArrow)
        self.volumes_btn.setAutoRaise(True)
        dv.addWidget(self.volumes_btn)
        dv.addWidget(self._build_volumes())
        self.preview_btn = QPushButton("Preview batch")
        self.preview_btn.setToolTip("Show 16 images after preprocessing (window, resize, augmentation).")
        dv.addWidget(self.preview_btn)

    def _build_volumes(self) -> QGroupBox:
        vol = QGroupBox("Volumes (NIfTI/MHA, DICOM series)")
        self.volumes_box = vol
        self.axis_combo = QComboBox()
        for text, axis in _AXES:
            self.axis_combo.addItem(text, axis)
        self.axis_combo.setToolTip("Axis the 2D training slices are taken along (voxel index order k, j, i).")
        self.modality_combo = QComboBox()
        for text, mod in _MODALITIES:
            self.modality_combo.addItem(text, mod)
        self.modality_combo.setToolTip(
            "Sets the intensity window: CT → fixed HU window, MR and others → per-volume percentiles. "
            "Auto: the series' modality, or CT when the values look like HU."
        )
        self.window_check = QCheckBox("Fixed window")
        self.window_check.setToolTip(
            f"Map a fixed value range to [-1, 1] instead of the modality's default "
            f"(CT: {CT_HU_RANGE[0]:g}…{CT_HU_RANGE[1]:g} HU; MR: 0.5–99.5 percentiles per volume)."
        )
        self.window_lo = QDoubleSpinBox()
        self.window_hi = QDoubleSpinBox()
        for w, v in ((self.window_lo, CT_HU_RANGE[0]), (self.window_hi, CT_HU_RANGE[1])):
            w.setRange(-100_000.0, 100_000.0)
            w.setDecimals(0)
            w.setValue(float(v))
            w.setEnabled(False)
            w.setToolTip("Window bounds in the volume's units (HU for CT).")
        self.window_check.toggled.connect(self.window_lo.setEnabled)
        self.window_check.toggled.connect(self.window_hi.setEnabled)
        vg = form_grid([("Slice axis", self.axis_combo), ("Modality", self.modality_combo)])
        vv = QVBoxLayout(vol)
        vv.addWidget(vg)
        wrow = QHBoxLayout()
        wrow.addWidget(self.window_check)
        wrow.addWidget(QLabel("from"))
        wrow.addWidget(self.window_lo, 1)
        wrow.addWidget(QLabel("to"))
        wrow.addWidget(self.window_hi, 1)
        vv.addLayout(wrow)

        return vol

    def _browse(self) -> None:
        d = dialogs.existing_folder(self, "Training images or volumes")
        if d:
            self.path_edit.setText(d)
            self.rb_folder.setChecked(True)

    def _on_source_changed(self, series: bool) -> None:
        if series:
            self.channels_combo.setCurrentIndex(0)  # volume slices are grey
        self.channels_combo.setEnabled(not series)

    def _series_text(self, uid: str) -> str:
        rec = None
        try:
            rec = self.context.index.series(uid) if self.context.paths.index_db.exists() else None
        except Exception:  # the index may be unreadable; the UID still identifies the series
            log.debug("series %s not readable from the index", uid, exc_info=True)
        if rec is None:
            return f"…{uid[-24:]}" if len(uid) > 24 else uid
        return f"{rec.modality} {rec.description or '(no description)'} ({rec.instance_count} images)"

    def set_selected_series(self, uid: str) -> None:
        self.selected_series = uid
        self.series_label.setText(self._series_text(uid) if uid else "(no series selected)")
        self.series_label.setToolTip(uid)

    def add_selected_series(self) -> None:
        """Add the browser's series to the list (several series train together)."""
        uid = self.selected_series
        if not uid:
            QMessageBox.information(self, "Series", "Select a series in the study browser first.")
            return
        if uid not in self.series_uids_listed():
            it = QListWidgetItem(self._series_text(uid))
            it.setData(Qt.ItemDataRole.UserRole, uid)
            it.setToolTip(uid)
            self.series_list.addItem(it)
        self.series_list.setVisible(True)
        self.rb_series.setChecked(True)

    def _remove_series(self) -> None:
        for it in self.series_list.selectedItems():
            self.series_list.takeItem(self.series_list.row(it))
        self.series_list.setVisible(self.series_list.count() > 0)

    def series_uids_listed(self) -> tuple[str, ...]:
        return tuple(
            str(self.series_list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.series_list.count())
        )

    def data_config(self, size: int) -> DataConfig:
        """The data settings (``size``: the training size chosen in the method box)."""
        fixed = self.window_check.isChecked()
        lo, hi = self.window_lo.value(), self.window_hi.value()
        if fixed and lo >= hi:
            raise ValueError(f"the window's lower bound ({lo:g}) must be below its upper bound ({hi:g})")
        common: dict[str, Any] = dict(
            size=size,
            max_images=self.max_images.value(),
            flip=self.flip_check.isChecked(),
            rotate90=self.rot_check.isChecked(),
            axis=int(self.axis_combo.currentData()),
            modality=str(self.modality_combo.currentData()),
            window_lo=lo if fixed else None,
            window_hi=hi if fixed else None,
        )
        if self.rb_series.isChecked():
            uids = self.series_uids_listed() or ((self.selected_series,) if self.selected_series else ())
            if not uids:
                raise ValueError("select a series in the browser first (Add several to train on them together), or choose a folder")
            return DataConfig(kind="index", series_uids=uids, **common)
        path = self.path_edit.text().strip()
        if not path:
            raise ValueError("choose a folder of images or a volume file first")
        return DataConfig(
            path=path,
            channels=int(self.channels_combo.currentData()),
            label_from_subfolders=self.labels_check.isChecked(),
            **common,
        )

