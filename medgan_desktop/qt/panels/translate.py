"""The Translate panel: an MR series in, a synthetic CT beside it in the comparison viewer.

The work runs in a :class:`Worker` calling :func:`translate_job`, which uses the same
core functions as ``medgan translate``: load the series (study index or file),
:func:`~medgan_desktop.core.inference.translate.translate`, and, when the index holds
a CT of the same patient, register it onto the MR and score the synthetic CT
(SynthRAD MAE/PSNR/SSIM). Shipped and imported models are loaded through the model
registry, which checks their weights against the manifest's sha256 first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.training.run import WEIGHTS, load_run
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.model_choice import (
    card_text,
    load_ref,
    model_ref,
    ref_folder,
    run_ref,
    show_card_dialog,
)
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)


@dataclass
class TranslateResult:
    """What a finished translation hands back to the panel."""

    source: Volume
    synthetic: Volume
    real: Volume | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _load_source(source: tuple[str, str], index: Any, progress: ProgressCallback, cancel: CancelToken | None) -> Volume:
    kind, ref = source
    if kind == "series":
        from medgan_desktop.core.dicom.series import load_series_from_index

        return load_series_from_index(index, ref, progress=progress, cancel=cancel)
    from medgan_desktop.core.training.paired import read_any

    return read_any(Path(ref))


def find_real_ct(index: Any, volume: Volume) -> str | None:
    """A CT series of the same patient (same study preferred) in the index, or None."""
    if index is None:
        return None
    pid = volume.source.patient_id
    study = volume.source.study_instance_uid
    if not pid and not study:
        return None
    cands = [
        r
        for r in index.all_series()
        if str(r.modality).upper() == "CT"
        and r.series_uid != volume.source.series_instance_uid
        and ((pid and r.patient_id == pid) or (study and r.study_uid == study))
    ]
    if not cands:
        return None
    cands.sort(key=lambda r: (r.study_uid != study, -int(r.instance_count or 0)))
    return str(cands[0].series_uid)


def translate_job(
    source: tuple[str, str],
    model: str,
    paths: AppPaths,
    index: Any = None,
    tta: bool = False,
    batch_size: int = 8,
    device: str = "cpu",
    compare_real: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> TranslateResult:
    """Load the source, translate it, and compare with a registered real CT when one exists.

    Args:
        model: ``"model:<id>"`` (weights checked against the manifest's sha256 before they
            are loaded; a mismatch raises ModelError) or ``"run:<folder>"`` (a training run).
    """
    from medgan_desktop.core.inference.translate import translate

    progress(Progress(0, 0, "checking and loading the model"))
    loaded = load_ref(model, paths, device)
    progress(Progress(0, 0, "loading the source"))
    vol = _load_source(source, index, no_progress, cancel)
    syn = translate(vol, loaded, progress=progress, cancel=cancel, batch_size=batch_size, tta_flip=tta)
    result = TranslateResult(source=vol, synthetic=syn)
    uid = find_real_ct(index, vol) if compare_real else None
    if uid is None:
        result.note = "No CT of this patient in the index: nothing to compare with."
        return result
    from medgan_desktop.core.dicom.series import load_series_from_index
    from medgan_desktop.core.imaging.registration import register_volumes

    progress(Progress(0, 0, "registering the real CT onto the MR"))
    real = load_series_from_index(index, uid, cancel=cancel)
    reg = register_volumes(vol, real, try_orientations=True, iterations=60, max_size=96, cancel=cancel)
    result.real = reg.resampled
    progress(Progress(0, 0, "scoring the synthetic CT"))
    try:
        from medgan_desktop.core.metrics.paired import evaluate_pair
        from medgan_desktop.core.training.paired import ct_body_mask, volume_slab

        mask = ct_body_mask(reg.resampled)
        ks = [int(k) for k in range(mask.shape[0]) if mask[k].any()]
        if not ks:
            raise ValueError("the registered CT does not overlap the MR")
        k0, k1 = ks[0], ks[-1] + 1  # score only the slices the real CT covers
        rep = evaluate_pair(
            volume_slab(syn, range(k0, k1)),
            volume_slab(reg.resampled, range(k0, k1)),
            mask=mask[k0:k1],
            cancel=cancel,
        )
        result.metrics = {"MAE (HU)": rep.mae, "PSNR (dB)": rep.psnr, "SSIM": rep.ssim}
    except ImportError:
        import numpy as np

        m = reg.resampled.array > -500
        result.metrics = {"MAE (HU)": float(np.abs(syn.array - reg.resampled.array)[m].mean())}
    except ValueError as exc:  # empty overlap after registration
        result.note = f"Real CT found but not comparable: {exc}"
    result.note = result.note or f"Compared with CT series {uid} (rigid registration, MI {reg.quality.final_mi:.3f})."
    return result


class TranslatePanel(QWidget):
    """MR -> synthetic CT: source, model (with its card), run/cancel, compare, export."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.source: tuple[str, str] | None = None
        self.source_modality = ""
        self.worker: Worker | None = None
        self.result: TranslateResult | None = None
        self._busy = False
        self._build()
        context.series_selected.connect(self.set_source_series)
        context.volume_opened.connect(self._volume_opened)
        context.index_changed.connect(self.refresh_models)
        context.models_changed.connect(self.refresh_models)
        self.refresh_models()

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        # Everything stacks vertically and wraps, so the panel fits a dock about 320 px wide;
        # the result itself is shown in the central comparison viewer.
        lay = QVBoxLayout(self)
        src = QGroupBox("Source (MR)")
        sl = QHBoxLayout(src)
        self.source_label = QLabel("Select an MR series in the browser, or open a file.")
        self.source_label.setWordWrap(True)
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.source_label.setMinimumWidth(120)
        self.open_button = QPushButton("Open file…")
        self.open_button.clicked.connect(self.choose_file)
        sl.addWidget(self.source_label, 1)
        sl.addWidget(self.open_button)
        lay.addWidget(src)

        mdl = QGroupBox("Model")
        form = QFormLayout(mdl)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.card_button = QPushButton("Model card")
        self.card_button.setToolTip("What the model was trained on, how it was measured, and its intended use.")
        self.card_button.clicked.connect(self.show_card)
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.card_button)
        form.addRow("Model", row)
        self.all_models = QCheckBox("Show models for other modalities")
        self.all_models.toggled.connect(self.refresh_models)
        form.addRow(self.all_models)
        self.tta_check = QCheckBox("Flip test-time augmentation")
        self.tta_check.setToolTip("Also translate the left-right mirrored slices and average: slower, smoother.")
        form.addRow(self.tta_check)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 64)
        self.batch_spin.setValue(8)
        form.addRow("Batch (slices)", self.batch_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItem("CPU", "cpu")
        try:
            import torch

            if torch.cuda.is_available():
                self.device_combo.addItem("CUDA GPU", "cuda")
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        form.addRow("Device", self.device_combo)
        lay.addWidget(mdl)

        run = QHBoxLayout()
        self.run_button = QPushButton("Translate")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export DICOM…")
        self.export_button.clicked.connect(self.export)
        for b in (self.run_button, self.cancel_button, self.export_button):
            run.addWidget(b)
        lay.addLayout(run)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        lay.addWidget(self.progress_bar)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.metrics_label)
        lay.addStretch(1)
        self._update_buttons()

    # -- source ---------------------------------------------------------------------------
    def set_source_series(self, uid: str) -> None:
        """Use an indexed series (the browser's selection)."""
        rec = None
        try:
            rec = self.context.index.series(uid)
        except Exception as exc:  # the browser may hand over non-DICOM keys
            log.debug("series %s not in the index: %s", uid, exc)
        if rec is None:
            return
        self.source = ("series", uid)
        self.source_modality = str(rec.modality or "").upper()
        desc = rec.description or uid
        self.source_label.setText(f"{self.source_modality} series: {desc} ({rec.instance_count} images)")
        self.refresh_models()

    def _volume_opened(self, volume: object) -> None:
        """An MR series opened in the viewer becomes the source, unless work is running."""
        uid = getattr(getattr(volume, "source", None), "series_instance_uid", "")
        if uid and not self._busy and not getattr(volume, "synthetic", False):
            self.set_source_series(uid)

    def set_source_file(self, path: Path) -> None:
        """Use a volume file or DICOM folder."""
        from medgan_desktop.core.io import guess_modality

        self.source = ("file", str(path))
        self.source_modality = guess_modality(Path(path).name)
        if self.source_modality == "OT":
            self.source_modality = ""
        self.source_label.setText(f"File: {path}")
        self.refresh_models()

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an MR volume", "", "Volumes (*.nii *.nii.gz *.mha *.mhd *.nrrd *.dcm);;All files (*)"
        )
        if path:
            self.set_source_file(Path(path))

    # -- models ---------------------------------------------------------------------------
    def refresh_models(self, *_: object) -> None:
        """Translation runs under the data dir and shipped/imported models, filtered by modality."""
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        want = "" if self.all_models.isChecked() else self.source_modality
        runs = self.context.paths.runs_dir
        if runs.is_dir():
            for d in sorted(runs.iterdir(), reverse=True):
                if not ((d / "run.json").is_file() and (d / WEIGHTS).is_file()):
                    continue
                try:
                    info = load_run(d)
                except Exception:  # damaged runs are simply not offered
                    continue
                mod_in = (info.preprocessing.modality_in or "").upper()
                if info.task == "translation" and (not want or not mod_in or mod_in == want):
                    self.model_combo.addItem(
                        f"run: {d.name} ({mod_in or '?'}→{info.preprocessing.modality_out}, {info.method})", run_ref(d)
                    )
        try:
            from medgan_desktop.core.models.registry import ModelRegistry

            for e in ModelRegistry(self.context.paths).find(task="translation", modality_in=want or None):
                self.model_combo.addItem(f"model: {e.label}", model_ref(e.id))
        except Exception as exc:  # a broken catalogue must not hide the runs
            log.warning("model catalogue unavailable: %s", exc)
        self.model_combo.blockSignals(False)
        i = self.model_combo.findData(current) if current else -1
        self.model_combo.setCurrentIndex(i if i >= 0 else (0 if self.model_combo.count() else -1))
        self._update_buttons()

    def current_ref(self) -> str | None:
        """``"model:<id>"`` or ``"run:<folder>"`` of the chosen entry (None when empty)."""
        ref = self.model_combo.currentData()
        return str(ref) if ref else None

    def current_model_dir(self) -> Path | None:
        """The chosen model's folder, for its description only (loading verifies it)."""
        return ref_folder(self.current_ref(), self.context.paths)

    def _on_model_changed(self, *_: object) -> None:
        self.model_combo.setToolTip(self.model_combo.currentText())
        self._update_buttons()

    def card_text(self) -> str:
        """The model card (card.md) or, for a plain run, a summary of its run.json."""
        return card_text(self.current_ref(), self.context.paths)

    def show_card(self) -> QDialog:
        self._card_dialog = show_card_dialog(self, self.card_text())
        return self._card_dialog

    # -- running --------------------------------------------------------------------------
    def _update_buttons(self, *_: object) -> None:
        busy = self._busy
        has_model = self.current_model_dir() is not None
        self.run_button.setEnabled(not busy and has_model and self.source is not None)
        self.cancel_button.setEnabled(busy)
        self.card_button.setEnabled(has_model)
        self.export_button.setEnabled(not busy and self.result is not None)
        no_model = (
            "No translation model for this modality: train one (medgan translate-train) or tick "
            "'Show models for other modalities'."
        )
        if not has_model:
            self.status_label.setText(no_model)
        elif self.status_label.text() == no_model:
            self.status_label.setText("")

    def run(self) -> None:
        model = self.current_ref()
        if self.source is None or model is None:
            QMessageBox.warning(self, "Translate", "Choose an MR source and a model first.")
            return
        index = None
        try:
            index = self.context.index
        except Exception as exc:  # no index: translate without comparison
            log.warning("study index unavailable: %s", exc)
        self.result = None
        self.metrics_label.setText("")
        self.progress_bar.setRange(0, 0)
        self.status_label.setText("Translating…")
        w = Worker(
            translate_job,
            self.source,
            model,
            self.context.paths,
            index,
            self.tta_check.isChecked(),
            self.batch_spin.value(),
            str(self.device_combo.currentData()),
            name="Translation",
        )
        w.progress.connect(self._on_progress)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self.worker = w
        self._busy = True
        self.context.workers.submit(w)
        self._update_buttons()

    def _on_done(self) -> None:
        self._busy = False
        self._update_buttons()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("Cancelling…")

    def _on_progress(self, p: Progress) -> None:
        if p.total > 0:
            self.progress_bar.setRange(0, p.total)
            self.progress_bar.setValue(p.done)
        else:
            self.progress_bar.setRange(0, 0)
        self.status_label.setText(p.message)

    def _on_finished(self, result: TranslateResult) -> None:
        self.result = result
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        vols = [result.source, result.synthetic] + ([result.real] if result.real is not None else [])
        self.status_label.setText(f"{result.synthetic.description}: done. {result.note}")
        if result.metrics:
            self.metrics_label.setText(
                "Against the registered real CT: " + ", ".join(f"{k} {v:.3g}" for k, v in result.metrics.items())
            )
        self.context.status.emit(f"Synthetic CT ready ({result.synthetic.shape[0]} slices)")
        self.context.compare_requested.emit(vols)
        self._update_buttons()

    def _on_failed(self, message: str, _tb: str) -> None:
        self.result = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label.setText(message)
        QMessageBox.warning(self, "Translate", message)

    def _on_cancelled(self) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label.setText("Cancelled: nothing was produced.")

    # -- export ---------------------------------------------------------------------------
    def export(self) -> None:
        if self.result is None:
            return
        try:
            from medgan_desktop.qt.panels.export_dialog import ExportDialog
        except ImportError:
            QMessageBox.information(self, "Export", "DICOM export is not available in this build.")
            return
        dlg = ExportDialog(self.context, volume=self.result.synthetic, parent=self)
        dlg.exec()
