"""The Sample panel: generate images from a run or a shipped model, same seed -> same images.

Calls :func:`medgan_desktop.core.inference.sample.sample` / ``interpolate`` in a worker (the
``medgan sample`` CLI calls the same functions); exports PNG or synthetic Secondary Capture
DICOM. Shipped and imported models are loaded through the model registry, which checks
their weights against the manifest's sha256 first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.progress import CancelToken, ProgressCallback, no_progress
from medgan_desktop.core.training.run import WEIGHTS, LoadedModel, load_run
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.model_choice import (
    card_text,
    load_ref,
    model_ref,
    ref_folder,
    ref_name,
    run_ref,
    show_card_dialog,
)
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)


def _pixmap(img: np.ndarray) -> QPixmap:
    from medgan_desktop.core.inference.sample import to_display

    arr = np.ascontiguousarray(to_display(img))
    fmt = QImage.Format.Format_Grayscale8 if arr.ndim == 2 else QImage.Format.Format_RGB888
    return QPixmap.fromImage(QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], fmt).copy())


def _is_conditional(method: str, num_classes: int) -> bool:
    from medgan_desktop.core.gan.methods.base import get_method

    try:
        cls = get_method(method)
    except KeyError:
        return False
    return num_classes > 0 and bool(getattr(cls, "conditional", False))


def sample_job(
    ref: str,
    mode: str,
    params: dict[str, Any],
    cache: dict[str, LoadedModel],
    paths: AppPaths,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Load (once) and sample or interpolate; returns ``(n, C, H, W)`` in [-1, 1].

    Args:
        ref: ``"model:<id>"`` (verified against the manifest's sha256 before loading) or
            ``"run:<folder>"`` (a training run, loaded directly).
    """
    from medgan_desktop.core.inference.sample import interpolate, sample

    model = cache.get(ref)
    if model is None:
        model = load_ref(ref, paths, "cpu")
        cache.clear()
        cache[ref] = model
    if mode == "interpolate":
        return interpolate(model, params["seed_a"], params["seed_b"], params["steps"], label=params.get("label"))
    return sample(model, params["n"], seed=params["seed"], label=params.get("label"), truncation=params.get("truncation"))


class SamplePanel(QWidget):
    """Pick a model, generate with a seed, interpolate, enlarge, export PNG/DICOM."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.images: np.ndarray | None = None
        self.worker: Worker | None = None
        self._cache: dict[str, LoadedModel] = {}
        self._last_params: dict[str, Any] = {}
        self._busy = False
        self._build()
        context.models_changed.connect(self.refresh_models)
        self.refresh_models()

    def _build(self) -> None:
        form_box = QGroupBox("Model and sampling")
        f = QFormLayout(form_box)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(28)
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
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 256)
        self.n_spin.setValue(16)
        f.addRow("Images", self.n_spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed always gives the same images.")
        f.addRow("Seed", self.seed_spin)
        self.label_combo = QComboBox()
        self.label_combo.setToolTip("Class of conditional models (random when 'any').")
        f.addRow("Class", self.label_combo)
        self.trunc_check = QCheckBox("Truncation")
        self.trunc_spin = QDoubleSpinBox()
        self.trunc_spin.setRange(0.1, 3.0)
        self.trunc_spin.setSingleStep(0.1)
        self.trunc_spin.setValue(1.0)
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
        self.seed_a = QSpinBox()
        self.seed_a.setRange(0, 2**31 - 1)
        self.seed_b = QSpinBox()
        self.seed_b.setRange(0, 2**31 - 1)
        self.seed_b.setValue(1)
        self.interp_steps = QSpinBox()
        self.interp_steps.setRange(2, 64)
        self.interp_steps.setValue(8)
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
        left.addStretch(1)

        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(128, 128))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.itemClicked.connect(self._enlarge)
        self.grid.setToolTip("Click an image to enlarge it.")

        lay = QHBoxLayout(self)
        lw = QWidget()
        lw.setLayout(left)
        lay.addWidget(lw)
        lay.addWidget(self.grid, 1)
        self._update_buttons()

    # -- models ------------------------------------------------------------------------------
    def refresh_models(self, *_: object) -> None:
        """Runs with weights under the data dir, then shipped/imported synthesis models."""
        current = self.model_combo.currentData()
        self._cache.clear()  # an imported model may have replaced one with the same id
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        runs = self.context.paths.runs_dir
        if runs.is_dir():
            for d in sorted(runs.iterdir(), reverse=True):
                if (d / "run.json").is_file() and (d / WEIGHTS).is_file():
                    try:
                        info = load_run(d)
                    except Exception:  # damaged runs are simply not offered
                        continue
                    if info.task == "synthesis":
                        self.model_combo.addItem(f"run: {d.name} ({info.method})", run_ref(d))
        try:
            from medgan_desktop.core.models.registry import ModelRegistry

            for e in ModelRegistry(self.context.paths).find(task="synthesis"):
                self.model_combo.addItem(f"model: {e.label}", model_ref(e.id))
        except Exception as exc:  # a broken catalogue must not hide the runs
            log.warning("model catalogue unavailable: %s", exc)
        self.model_combo.blockSignals(False)
        i = self.model_combo.findData(current) if current else -1
        self.model_combo.setCurrentIndex(i if i >= 0 else (0 if self.model_combo.count() else -1))
        self._on_model_changed()

    def current_ref(self) -> str | None:
        """``"model:<id>"`` or ``"run:<folder>"`` of the chosen entry (None when empty)."""
        ref = self.model_combo.currentData()
        return str(ref) if ref else None

    def current_model_dir(self) -> Path | None:
        """The chosen model's folder, for its description only (loading verifies it)."""
        return ref_folder(self.current_ref(), self.context.paths)

    def card_text(self) -> str:
        return card_text(self.current_ref(), self.context.paths)

    def show_card(self) -> QDialog:
        self._card_dialog = show_card_dialog(self, self.card_text())
        return self._card_dialog

    def _on_model_changed(self, *_: object) -> None:
        self.model_combo.setToolTip(self.model_combo.currentText())
        self.label_combo.clear()
        d = self.current_model_dir()
        if d is None:
            self.info_label.setText("No trained synthesis model yet: train one in the Train panel.")
            self._update_buttons()
            return
        try:
            info = load_run(d)
        except Exception as exc:
            self.info_label.setText(f"Cannot read this model: {exc}")
            self._update_buttons()
            return
        pre = info.preprocessing
        self.info_label.setText(f"{info.method}, {pre.size} px, {pre.channels} channel(s), {pre.modality_out}")
        conditional = _is_conditional(info.method, info.method_config.num_classes)
        self._set_truncation_range(info.method)
        self.label_combo.setEnabled(conditional)
        if conditional:
            self.label_combo.addItem("any", None)
            names = pre.class_names or tuple(str(i) for i in range(info.method_config.num_classes))
            for i, n in enumerate(names):
                self.label_combo.addItem(n, i)
        self._update_buttons()

    def _set_truncation_range(self, method: str) -> None:
        from medgan_desktop.core.gan.methods.base import get_method
        from medgan_desktop.core.inference.sample import truncation_mode

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
        has_model = self.current_model_dir() is not None
        self.card_button.setEnabled(has_model)
        self.generate_btn.setEnabled(has_model and not busy)
        self.interp_btn.setEnabled(has_model and not busy)
        has_images = self.images is not None
        self.export_png_btn.setEnabled(has_images and not busy)
        self.export_dcm_btn.setEnabled(has_images and not busy)

    # -- work --------------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {
            "n": self.n_spin.value(),
            "seed": self.seed_spin.value(),
            "label": self.label_combo.currentData() if self.label_combo.isEnabled() else None,
            "truncation": self.trunc_spin.value() if self.trunc_check.isChecked() else None,
        }

    def generate(self) -> None:
        self._run("sample", self._params())

    def interpolate(self) -> None:
        p = {
            "seed_a": self.seed_a.value(),
            "seed_b": self.seed_b.value(),
            "steps": self.interp_steps.value(),
            "label": self.label_combo.currentData() if self.label_combo.isEnabled() else None,
        }
        self._run("interpolate", p)

    def _run(self, mode: str, params: dict[str, Any]) -> None:
        ref = self.current_ref()
        if ref is None:
            QMessageBox.information(self, "Sample", "No model selected: train one in the Train panel first.")
            return
        if self._busy:
            return
        self._busy = True
        self._last_params = {"mode": mode, **params}
        w = Worker(sample_job, ref, mode, params, self._cache, self.context.paths, name="Sampling")
        w.finished.connect(self._on_images)
        w.failed.connect(self._on_failed)
        w.done.connect(self._on_done)
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

    def _on_images(self, images: np.ndarray) -> None:
        self.images = images
        self.grid.clear()
        for i, img in enumerate(images):
            it = QListWidgetItem(QIcon(_pixmap(img)), str(i))
            it.setData(Qt.ItemDataRole.UserRole, i)
            self.grid.addItem(it)
        p = self._last_params
        what = (
            f"seeds {p['seed_a']}→{p['seed_b']}" if p.get("mode") == "interpolate" else f"seed {p.get('seed')}"
        )
        self.status_label.setText(f"{len(images)} images ({what})")
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
        """Write the current images as PNG (one per image) or synthetic Secondary Capture DICOM."""
        if self.images is None:
            QMessageBox.information(self, "Export", "Generate images first.")
            return []
        if out_dir is None:
            chosen = QFileDialog.getExistingDirectory(self, "Export to folder")
            if not chosen:
                return []
            out_dir = Path(chosen) / ("synthetic_dicom" if fmt == "dicom" else "synthetic_png")
        try:
            if fmt == "png":
                from medgan_desktop.core.inference.sample import save_pngs

                seed = self._last_params.get("seed", self._last_params.get("seed_a", 0))
                paths = save_pngs(self.images, out_dir, prefix=f"seed{seed}")
            else:
                from medgan_desktop.core.dicom.write import write_secondary_capture

                d = self.current_model_dir()
                info = load_run(d) if d else None
                grey = [img.mean(axis=0) for img in self.images]
                paths = list(
                    write_secondary_capture(
                        grey,
                        out_dir,
                        description=f"{info.method if info else 'GAN'} seed {self._last_params.get('seed', '')}",
                        model_id=ref_name(self.current_ref()),
                        value_range=(-1.0, 1.0),
                    )
                )
        except Exception as exc:  # shown to the user, not swallowed
            QMessageBox.warning(self, "Export failed", str(exc))
            return []
        self.status_label.setText(f"Exported {len(paths)} {fmt.upper()} files to {out_dir}")
        self.context.status.emit(f"Exported {len(paths)} synthetic images")
        return paths
