"""The Sample panel: generate images from a run or a shipped model, same seed -> same images.

The panel builds a :class:`~medgan_desktop.core.jobs.sample.SampleSpec` and runs
:func:`~medgan_desktop.core.jobs.sample.run_sample` in a worker, the job of ``medgan
sample`` (one model kept loaded between calls); export writes the same images again as
PNG or synthetic Secondary Capture DICOM. Results are shown as a grid with a zoom.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.gan.methods.base import get_method
from medgan_desktop.core.imaging.display import to_display
from medgan_desktop.core.inference.sample import truncation_mode
from medgan_desktop.core.jobs.sample import ModelCache, SampleFormat, SampleResult, SampleSpec, run_sample
from medgan_desktop.core.models.refs import model_ref, resolve_ref, run_ref
from medgan_desktop.core.models.registry import ModelError, ModelRegistry
from medgan_desktop.core.models.runs import WEIGHTS, ModelLoadError, RunInfo, load_run
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.dialogs import existing_folder
from medgan_desktop.qt.panels.model_choice import ModelCardMixin
from medgan_desktop.qt.widgets import array_pixmap, double_spin_box, spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

#: Thumbnail side of the result grid at zoom 1 (the slider scales it).
_ICON = 160


def _pixmap(img: np.ndarray) -> QPixmap:
    return array_pixmap(to_display(img))


class SamplePanel(ModelCardMixin, QWidget):
    """Pick a model, generate with a seed, interpolate, enlarge, export PNG/DICOM."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.images: np.ndarray | None = None
        self.worker: Worker | None = None
        self._cache = ModelCache()
        self._last_spec: SampleSpec | None = None
        self._busy = False
        self._build()
        context.models_changed.connect(self.refresh_models)
        self.refresh_models()

    def _build(self) -> None:
        form_box = QGroupBox("Model and sampling")
        f = QFormLayout(form_box)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_models)
        self.card_button = QPushButton("Model card")
        self.card_button.setToolTip("What the model was trained on, how it was measured, and its intended use.")
        self.card_button.clicked.connect(self.show_card)
        f.addRow("Model", self.model_combo)
        row = QHBoxLayout()
        row.addWidget(self.card_button)
        row.addWidget(refresh)
        row.addStretch(1)
        f.addRow("", row)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        f.addRow(self.info_label)
        self.n_spin = spin_box(1, 256, 16)
        f.addRow("Images", self.n_spin)
        self.seed_spin = spin_box(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed always gives the same images.")
        f.addRow("Seed", self.seed_spin)
        self.label_combo = QComboBox()
        self.label_combo.setToolTip("Class of conditional models (random when 'any').")
        f.addRow("Class", self.label_combo)
        self.trunc_check = QCheckBox("Truncation")
        self.trunc_spin = double_spin_box(0.1, 3.0, 1.0, 0.1)
        self.trunc_check.setToolTip("Trade variety for fidelity: redraw noise beyond this threshold.")
        tr = QHBoxLayout()
        tr.addWidget(self.trunc_check)
        tr.addWidget(self.trunc_spin)
        f.addRow(tr)
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.clicked.connect(self.generate)
        f.addRow(self.generate_btn)

        interp = QGroupBox("Latent interpolation")
        fi = QFormLayout(interp)
        self.seed_a = spin_box(0, 2**31 - 1)
        self.seed_b = spin_box(0, 2**31 - 1, 1)
        self.interp_steps = spin_box(2, 64, 8)
        fi.addRow("Seed A", self.seed_a)
        fi.addRow("Seed B", self.seed_b)
        fi.addRow("Steps", self.interp_steps)
        self.interp_btn = QPushButton("Interpolate")
        self.interp_btn.clicked.connect(self.interpolate)
        fi.addRow(self.interp_btn)

        exp = QHBoxLayout()
        self.export_png_btn = QPushButton("Export PNG…")
        self.export_dcm_btn = QPushButton("Export synthetic DICOM…")
        self.export_png_btn.clicked.connect(lambda: self.export("png"))
        self.export_dcm_btn.clicked.connect(lambda: self.export("dicom"))
        exp.addWidget(self.export_png_btn)
        exp.addWidget(self.export_dcm_btn)

        left = QVBoxLayout()
        left.addWidget(form_box)
        left.addWidget(interp)
        left.addLayout(exp)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        left.addWidget(self.status_label)

        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(_ICON, _ICON))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setSpacing(6)
        self.grid.setUniformItemSizes(True)
        self.grid.itemClicked.connect(self._enlarge)
        self.grid.setToolTip("Click an image to enlarge it.")
        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(64, 512)
        self.zoom.setValue(_ICON)
        self.zoom.setToolTip("Size of the images in the grid (pixels on screen).")
        self.zoom.valueChanged.connect(lambda v: self.grid.setIconSize(QSize(v, v)))
        right = QVBoxLayout()
        zrow = QHBoxLayout()
        zrow.addWidget(QLabel("Zoom"))
        zrow.addWidget(self.zoom, 1)
        right.addLayout(zrow)
        right.addWidget(self.grid, 1)

        # controls above, results below: a side dock is tall and narrow
        split = QSplitter(Qt.Orientation.Vertical)
        lw = QWidget()
        lw.setLayout(left)
        split.addWidget(lw)
        rw = QWidget()
        rw.setLayout(right)
        split.addWidget(rw)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self._update_buttons()

    # -- models ------------------------------------------------------------------------------
    def refresh_models(self, *_: object) -> None:
        """Runs with weights under the data dir, then shipped/imported synthesis models."""
        current = self.model_combo.currentData()
        self._cache = ModelCache()  # an imported model may have replaced one with the same id
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        runs = self.context.paths.runs_dir
        if runs.is_dir():
            for d in sorted(runs.iterdir(), reverse=True):
                if (d / "run.json").is_file() and (d / WEIGHTS).is_file():
                    try:
                        info = load_run(d)
                    except ModelLoadError:  # damaged runs are simply not offered
                        continue
                    if info.task == "synthesis":
                        what = info.label.split(":")[0] if info.label else info.method
                        self.model_combo.addItem(f"run: {d.name} ({what})", run_ref(d))
        try:
            for e in ModelRegistry(self.context.paths).find(task="synthesis"):
                self.model_combo.addItem(f"model: {e.label}", model_ref(e.id))
        except ModelError as exc:  # a broken catalogue must not hide the runs
            log.warning("model catalogue unavailable: %s", exc)
        self.model_combo.blockSignals(False)
        i = self.model_combo.findData(current) if current else -1
        self.model_combo.setCurrentIndex(i if i >= 0 else (0 if self.model_combo.count() else -1))
        self._on_model_changed()

    def current_ref(self) -> str | None:
        """``"model:<id>"`` or ``"run:<folder>"`` of the chosen entry (None when empty)."""
        ref = self.model_combo.currentData()
        return str(ref) if ref else None

    def _info(self) -> RunInfo | None:
        ref = self.current_ref()
        if ref is None:
            return None
        try:
            return load_run(resolve_ref(ref, self.context.paths, verify=False).folder)
        except (ModelError, ModelLoadError):
            return None


    def _on_model_changed(self, *_: object) -> None:
        self.model_combo.setToolTip(self.model_combo.currentText())
        self.label_combo.clear()
        if self.current_ref() is None:
            self.info_label.setText("No trained synthesis model yet: train one in the Train panel.")
            self._update_buttons()
            return
        info = self._info()
        if info is None:
            self.info_label.setText("Cannot read this model.")
            self._update_buttons()
            return
        pre = info.preprocessing
        self.info_label.setText(f"{info.method}, {pre.size} px, {pre.channels} channel(s), {pre.modality_out}")
        try:
            cls = get_method(info.method)
            conditional = info.method_config.num_classes > 0 and (cls.requires_labels or cls.supports_labels)
        except KeyError:
            conditional = False
        self._set_truncation_range(info.method)
        self.label_combo.setEnabled(conditional)
        if conditional:
            self.label_combo.addItem("any", None)
            names = pre.class_names or tuple(str(i) for i in range(info.method_config.num_classes))
            for n in names:
                self.label_combo.addItem(n, n)
        self._update_buttons()

    def _set_truncation_range(self, method: str) -> None:
        try:
            mode = truncation_mode(get_method(method))
        except KeyError:
            mode = None
        self.trunc_check.setEnabled(mode is not None)
        self.trunc_spin.setEnabled(mode is not None)
        if mode is None:
            self.trunc_check.setChecked(False)
            self.trunc_check.setToolTip(f"{method} does not support truncation.")
        elif mode == "decode":
            self.trunc_spin.setRange(0.0, 1.0)
            self.trunc_spin.setValue(0.7)
            self.trunc_check.setToolTip("StyleGAN truncation psi: 1 = full variety, 0 = the average image.")
        else:
            self.trunc_spin.setRange(0.1, 3.0)
            self.trunc_spin.setValue(1.0)
            self.trunc_check.setToolTip("Redraw noise entries beyond this threshold: less variety, higher fidelity.")

    def _update_buttons(self) -> None:
        busy = self._busy
        has_model = self.current_ref() is not None
        self.card_button.setEnabled(has_model)
        self.generate_btn.setEnabled(has_model and not busy)
        self.interp_btn.setEnabled(has_model and not busy)
        has_images = self.images is not None
        self.export_png_btn.setEnabled(has_images and not busy)
        self.export_dcm_btn.setEnabled(has_images and not busy)

    # -- work --------------------------------------------------------------------------------
    def _spec(self, interpolate: bool = False) -> SampleSpec | None:
        ref = self.current_ref()
        if ref is None:
            QMessageBox.information(self, "Sample", "No model selected: train one in the Train panel first.")
            return None
        label = self.label_combo.currentData() if self.label_combo.isEnabled() else None
        return SampleSpec(
            model=ref, n=self.n_spin.value(), seed=self.seed_spin.value(),
            label=None if label is None else str(label),
            truncation=self.trunc_spin.value() if self.trunc_check.isChecked() else None,
            interpolate=(self.seed_a.value(), self.seed_b.value(), self.interp_steps.value())
            if interpolate else None,
        )

    def generate(self) -> None:
        self._run(self._spec())

    def interpolate(self) -> None:
        self._run(self._spec(interpolate=True))

    def _run(self, spec: SampleSpec | None) -> None:
        if spec is None or self._busy:
            return
        self._busy = True
        self._last_spec = spec
        w = Worker(run_sample, spec, self.context.paths, cache=self._cache,
                   name="Sampling").connect_slots(
            finished=self._on_images, failed=self._on_failed, done=self._on_done)
        self.worker = w
        self.status_label.setText("Generating…")
        self.context.workers.submit(w)
        self._update_buttons()

    def _on_done(self) -> None:
        self._busy = False
        self._update_buttons()

    def _on_failed(self, message: str, _tb: str) -> None:
        self.images = None
        self.grid.clear()
        self.status_label.setText(message)
        QMessageBox.warning(self, "Sampling failed", message)

    def _on_images(self, result: SampleResult) -> None:
        images = result.images
        self.images = images
        self.grid.clear()
        for i, img in enumerate(images):
            cls = result.classes[i] if i < len(result.classes) else ""
            it = QListWidgetItem(QIcon(_pixmap(img)), f"{i}" + (f" {cls}" if cls else ""))
            it.setData(Qt.ItemDataRole.UserRole, i)
            self.grid.addItem(it)
        spec = self._last_spec
        if spec is not None and spec.interpolate is not None:
            what = f"seeds {spec.interpolate[0]}→{spec.interpolate[1]}"
        else:
            what = f"seed {spec.seed if spec else ''}"
        note = f"; {'; '.join(result.warnings)}" if result.warnings else ""
        self.status_label.setText(f"{len(images)} images ({what}) from {result.model} "
                                  f"{result.model_version}{note}")
        self._update_buttons()

    def _enlarge(self, item: QListWidgetItem) -> None:
        if self.images is None:
            return
        i = int(item.data(Qt.ItemDataRole.UserRole))
        dlg = QDialog(self)
        dlg.setWindowTitle(f"Image {i}")
        lab = QLabel()
        lab.setPixmap(_pixmap(self.images[i]).scaled(512, 512, Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.FastTransformation))
        QVBoxLayout(dlg).addWidget(lab)
        self.enlarged = dlg
        dlg.show()

    def export(self, fmt: str, out_dir: Path | None = None) -> list[Path]:
        """Write the shown images (the same spec again) as PNG or synthetic SC DICOM."""
        if self.images is None or self._last_spec is None:
            QMessageBox.information(self, "Export", "Generate images first.")
            return []
        if out_dir is None:
            chosen = existing_folder(self, "Export to folder")
            if not chosen:
                return []
            out_dir = Path(chosen) / ("synthetic_dicom" if fmt == "dicom" else "synthetic_png")
        from dataclasses import replace

        spec = replace(self._last_spec, out=str(out_dir), format=SampleFormat(fmt))
        w = Worker(run_sample, spec, self.context.paths, cache=self._cache, name="Export")
        done: list[Any] = []
        w.finished.connect(done.append)
        w.failed.connect(lambda msg, _tb: QMessageBox.warning(self, "Export failed", msg))
        w.run()  # quick: the model is cached and the images are small
        if not done:
            return []
        paths = list(done[0].written)
        self.status_label.setText(f"Exported {len(paths)} {fmt.upper()} files to {out_dir}")
        self.context.status.emit(f"Exported {len(paths)} synthetic images")
        return paths
