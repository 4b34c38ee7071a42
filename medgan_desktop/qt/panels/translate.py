"""The Translate panel: a series in, a synthetic image beside it in the comparison viewer.

The panel builds a :class:`~medgan_desktop.core.jobs.translate.TranslateSpec` and runs
:func:`~medgan_desktop.core.jobs.translate.run_translate` in a worker: the job of
``medgan translate``. When a series is chosen, the models are ranked by how well they fit
it (modality, MR weighting, body part, field of view, orientation); the best fit is
selected unless the user picked one, and a warning bar says when the chosen model does
not fit. Running a model that does not fit asks first. Loader warnings (resampled
geometry, slices left out) are shown in the same bar.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.dicom.reader import DicomReadError
from medgan_desktop.core.io import UnsupportedFileError, guess_modality, open_volume
from medgan_desktop.core.jobs.base import ModelMismatchError
from medgan_desktop.core.jobs.translate import (
    TranslateResult,
    TranslateSpec,
    fits_for_series,
    rank_models,
    run_translate,
    translation_models,
    uncertainty_sentence,
)
from medgan_desktop.core.models.fit import Fit, Ranked
from medgan_desktop.core.progress import NoticeEvent, Progress
from medgan_desktop.core.training.devices import list_devices
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.dialogs import open_file_name
from medgan_desktop.qt.panels.model_choice import ModelCardMixin
from medgan_desktop.qt.widgets import NoticeBar, spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)


class TranslatePanel(ModelCardMixin, QWidget):
    """Source series -> synthetic image (MR -> CT and the other tasks): source, model (with its
    card), run/cancel, compare, export."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.source: tuple[str, str] | None = None
        self.source_modality = ""
        self.worker: Worker | None = None
        self.result: TranslateResult | None = None
        self._busy = False
        self._ranked: Ranked | None = None
        self._user_model = ""  # a model the user picked (kept when the series changes)
        self._loading_models = False
        self._rerun_forced = False
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
        src = QGroupBox("Source")
        sl = QHBoxLayout(src)
        self.source_label = QLabel("Select a series in the browser (MR for MR -> CT), or open a file.")
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
        self.model_combo.activated.connect(self._on_model_picked)
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
        self.uncertainty_check = QCheckBox("Uncertainty map")
        self.uncertainty_check.setToolTip(
            "Also translate under mirroring and small source noise (four predictions, about 4x the "
            "time) and show their per-voxel standard deviation over the synthetic image in Compare "
            "(with a colour bar); the share of body voxels above 50 HU is given here, and the map "
            "is written beside the export (<name>_uncertainty).")
        form.addRow(self.uncertainty_check)
        self.batch_spin = spin_box(1, 64, 8)
        form.addRow("Batch (slices)", self.batch_spin)
        self.device_combo = QComboBox()
        for d in list_devices():
            self.device_combo.addItem(d.label, d.key)
        form.addRow("Device", self.device_combo)
        self.fit_label = QLabel("")
        self.fit_label.setWordWrap(True)
        self.fit_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        form.addRow(self.fit_label)
        lay.addWidget(mdl)
        self.notice_bar = NoticeBar()
        lay.addWidget(self.notice_bar)

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
        except Exception as exc:  # noqa: BLE001 - the browser may hand over non-DICOM keys
            log.debug("series %s not in the index: %s", uid, exc)
        if rec is None:
            return
        self.source = ("series", uid)
        self.source_modality = str(rec.modality or "").upper()
        desc = rec.description or uid
        mark = "SYNTHETIC " if rec.synthetic else ""
        self.source_label.setText(f"{mark}{self.source_modality} series: {desc} ({rec.instance_count} images)")
        try:
            self._ranked = fits_for_series(self.context.index, uid, self.context.paths)
        except Exception:  # noqa: BLE001 - ranking is advice; translating still checks the fit
            log.warning("could not rank the models for %s", uid, exc_info=True)
            self._ranked = None
        self.notice_bar.show_lines(["this series is synthetic: translating it again compounds "
                                    "model errors"] if rec.synthetic else [])
        self.refresh_models()

    def _volume_opened(self, volume: object) -> None:
        """A series opened in the viewer becomes the source, unless work is running."""
        uid = getattr(getattr(volume, "source", None), "series_instance_uid", "")
        if uid and not self._busy and not getattr(volume, "synthetic", False):
            self.set_source_series(uid)

    def set_source_file(self, path: Path) -> None:
        """Use a volume file, DICOM folder, or PNG/JPEG slices (the fit is checked on Translate)."""
        self.source = ("file", str(path))
        self.source_modality = guess_modality(Path(path).name)
        if self.source_modality == "OT":
            self.source_modality = ""
        self.source_label.setText(f"File: {path}")
        self.notice_bar.show_lines([])
        try:  # read it once to rank the models by fit (translating reads it again)
            vol = open_volume(Path(path))
            self._ranked = rank_models(vol, self.context.paths)
            self.notice_bar.show_lines(list(vol.warnings))
        except (UnsupportedFileError, FileNotFoundError, DicomReadError, OSError, ValueError) as exc:
            self._ranked = None
            self.notice_bar.show_lines([f"cannot read {Path(path).name}: {exc}"])
        self.refresh_models()

    def choose_file(self) -> None:
        path = open_file_name(
            self, "Open an MR volume or 2D slices",
            "Volumes and images (*.nii *.nii.gz *.mha *.mhd *.nrrd *.dcm *.png *.jpg *.jpeg);;All files (*)",
        )
        if path:
            self.set_source_file(Path(path))

    # -- models ---------------------------------------------------------------------------
    def refresh_models(self, *_: object) -> None:
        """Catalogue models and local runs, filtered by modality, best fit first selected."""
        current = self._user_model or self.model_combo.currentData()
        self._loading_models = True
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        want = "" if self.all_models.isChecked() else self.source_modality
        for ref, app, label in translation_models(self.context.paths):
            if want and app.modality and app.modality != want:
                continue
            self.model_combo.addItem(label, ref)
        self.model_combo.blockSignals(False)
        best = self._ranked.best if self._ranked is not None else None
        choice = current if self._user_model else (best.model if best is not None else current)
        i = self.model_combo.findData(choice) if choice else -1
        self.model_combo.setCurrentIndex(i if i >= 0 else (0 if self.model_combo.count() else -1))
        self._loading_models = False
        self._on_model_changed()

    def _on_model_picked(self, _index: int) -> None:
        """The user chose a model: keep it when the series changes."""
        self._user_model = str(self.model_combo.currentData() or "")

    def current_fit(self) -> Fit | None:
        """How the chosen model fits the chosen series (None when unknown)."""
        if self._ranked is None:
            return None
        ref = self.current_ref()
        return next((f for f in self._ranked.fits if f.model == ref), None)

    def current_ref(self) -> str | None:
        """``"model:<id>"`` or ``"run:<folder>"`` of the chosen entry (None when empty)."""
        ref = self.model_combo.currentData()
        return str(ref) if ref else None

    def _on_model_changed(self, *_: object) -> None:
        self.model_combo.setToolTip(self.model_combo.currentText())
        fit = self.current_fit()
        if fit is None:
            self.fit_label.setText("")
        elif fit.ok:
            why = self._ranked.why() if self._ranked is not None and self._ranked.best is fit else fit.sentence()
            self.fit_label.setStyleSheet("")
            self.fit_label.setText(why)
        else:
            self.fit_label.setStyleSheet("background: #fff3cd; color: #5c4400; padding: 4px;")
            self.fit_label.setText("⚠ " + fit.sentence())
        self._update_buttons()


    # -- running --------------------------------------------------------------------------
    def _update_buttons(self, *_: object) -> None:
        busy = self._busy
        has_model = self.current_ref() is not None
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

    def run(self, force: bool = False) -> None:
        model = self.current_ref()
        if self.source is None or model is None:
            QMessageBox.warning(self, "Translate", "Choose an MR source and a model first.")
            return
        fit = self.current_fit()
        if fit is not None and not fit.ok and not force:
            if not self._confirm_mismatch(fit.sentence()):
                return
            force = True
        kind, ref = self.source
        spec = TranslateSpec(
            source=ref, from_index=kind == "series", index_db=str(self.context.paths.index_db),
            model=model, tta=self.tta_check.isChecked(), batch=self.batch_spin.value(),
            uncertainty=self.uncertainty_check.isChecked(),
            device=str(self.device_combo.currentData()), compare_real=True, force=force,
        )
        self.result = None
        self.metrics_label.setText("")
        self.progress_bar.setRange(0, 0)
        self.status_label.setText("Translating…")
        keep = self.notice_bar.lines()[:1] if kind == "series" else []
        self.notice_bar.show_lines(keep)
        w = Worker(run_translate, spec, self.context.paths, name="Translation").connect_slots(
            progress=self._on_progress, finished=self._on_finished, failed=self._on_failed,
            cancelled=self._on_cancelled, done=self._on_done)
        self.worker = w
        self._busy = True
        self.context.workers.submit(w)
        self._update_buttons()

    def _confirm_mismatch(self, sentence: str) -> bool:
        answer = QMessageBox.question(
            self, "Model does not fit",
            f"{sentence}\n\nThe result may be wrong in ways that are hard to see. Translate anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_done(self) -> None:
        self._busy = False
        self._update_buttons()
        if self._rerun_forced:
            self._rerun_forced = False
            self.run(force=True)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("Cancelling…")

    def _on_progress(self, p: Progress) -> None:
        if isinstance(p.event, NoticeEvent):
            self.notice_bar.add(p.event.text)
            return
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
        self.status_label.setText(f"{result.synthetic.description}: done in {result.seconds:.1f} s. "
                                  f"{result.note}")
        self.notice_bar.show_lines([*self.notice_bar.lines(), *result.warnings])
        lines = []
        if result.metrics:
            lines.append("Against the registered real CT: "
                         + ", ".join(f"{k} {v:.3g}" for k, v in result.metrics.items()))
        if result.uncertainty is not None:
            lines.append(_sentence_case(uncertainty_sentence(result.uncertainty_summary))
                         + "; shown over the synthetic image in Compare.")
        self.metrics_label.setText("\n".join(lines))
        self.context.status.emit(f"Synthetic {result.synthetic.modality} ready ({result.synthetic.shape[0]} slices)")
        self.context.uncertainty_ready.emit(result.uncertainty)
        self.context.compare_requested.emit(vols)
        self._update_buttons()

    def _on_failed(self, message: str, _tb: str) -> None:
        error = self.worker.error if self.worker is not None else None
        self.result = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label.setText(message)
        if isinstance(error, ModelMismatchError):
            self._rerun_forced = self._confirm_mismatch(str(error))  # run again when this one is done
            return
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
        dlg = ExportDialog(self.context, volume=self.result.synthetic, parent=self,
                           uncertainty=self.result.uncertainty)
        dlg.exec()


def _sentence_case(text: str) -> str:
    """``text`` with its first letter upper case (the rest, units included, as it was)."""
    return text[:1].upper() + text[1:]
