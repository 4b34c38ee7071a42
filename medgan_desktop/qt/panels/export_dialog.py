"""Export dialog: anonymise an indexed series or study, or write a synthetic volume, then send.

The dialog builds an :class:`~medgan_desktop.core.jobs.export.ExportSpec` and runs
:func:`~medgan_desktop.core.jobs.export.run_export` in a worker: the job of ``medgan
anonymize`` / ``medgan send``. A study (or all of a patient's studies) is exported as one
anonymisation job: one UID mapping, one pseudonym and one date shift per patient, one
report, written to a temporary folder and moved into place only when complete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.dicom.anonymize import AnonymizeOptions
from medgan_desktop.core.dicom.pacs import DicomNode, echo_message
from medgan_desktop.core.jobs.export import ExportResult, ExportSpec, SeriesGroup, run_export, study_series_groups
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.dialogs import existing_folder, save_file_name
from medgan_desktop.qt.widgets import spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

BURNED_IN_WARNING = (
    "Ultrasound, screen captures, angiography and some scanned images can show the "
    "patient's name or ID inside the pixels. The anonymiser only cleans the header; it "
    "cannot remove text burned into the image. Such images are refused unless you tick "
    "this box after checking every image yourself."
)


class ExportDialog(QDialog):
    """Export anonymised DICOM (a series or studies from the index, or a synthetic volume).

    Args:
        context: the application context.
        series_uid: an indexed series to export anonymised.
        volume: a synthetic volume to write as a DICOM series.
        study_uids: indexed studies to export anonymised as one job (every series of
            each; several studies when exporting all of a patient's studies).
    """

    def __init__(self, context: AppContext, series_uid: str | None = None,
                 volume: Volume | None = None, parent: QWidget | None = None, *,
                 study_uids: Sequence[str] | None = None, uncertainty: Volume | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.series_uid = series_uid
        self.volume = volume
        self.uncertainty = uncertainty  # written beside the volume as a second series
        self.worker: Worker | None = None
        self.export_result: ExportResult | None = None
        self.setWindowTitle("Export DICOM")
        self.files: list[Path] = []
        self.series_groups: list[SeriesGroup] = []
        if study_uids:
            studies, self.series_groups = study_series_groups(context.index, study_uids)
            self.files = [f for g in self.series_groups for f in g.files]
            head = (f"Study {studies[0]}" if len(studies) == 1
                    else f"{len(studies)} studies ({'; '.join(studies)})")
            what = (f"{head}: {len(self.series_groups)} series, {len(self.files)} file(s), "
                    "anonymised as one job (UIDs remapped consistently, one pseudonym and "
                    "one date shift per patient):\n" + "\n".join(
                        f"  • {g.label}, {len(g.files)} file(s)" for g in self.series_groups[:8]))
            if len(self.series_groups) > 8:
                what += f"\n  … and {len(self.series_groups) - 8} more series"
            self.setWindowTitle("Export study anonymised")
        elif series_uid is not None:
            self.files = list(context.index.series_files(series_uid))
            what = f"Series {series_uid} ({len(self.files)} file(s)), anonymised"
        elif volume is not None:
            what = (f"Synthetic {volume.modality} volume {volume.description or ''} "
                    f"({volume.shape[0]} slices), marked SYNTHETIC")
        else:
            what = "Nothing selected to export"
        lay = QVBoxLayout(self)
        self.what_label = QLabel(what)
        self.what_label.setWordWrap(True)
        lay.addWidget(self.what_label)

        opts = QGroupBox("Anonymisation (DICOM PS3.15 Basic Profile)")
        # the form sits in a box layout: a form layout does not give a wrapped label the
        # height its text needs (the burned-in warning was cut off mid-sentence)
        opts_box = QVBoxLayout(opts)
        form = QFormLayout()
        opts_box.addLayout(form)
        self.pseudonym_name = QLineEdit()
        self.pseudonym_name.setPlaceholderText("generated when empty")
        self.pseudonym_id = QLineEdit()
        self.pseudonym_id.setPlaceholderText("generated when empty")
        form.addRow("Pseudonym name", self.pseudonym_name)
        form.addRow("Pseudonym ID", self.pseudonym_id)
        self.retain_dates = QCheckBox("Retain dates, shifted by one offset per patient")
        self.date_offset = spin_box(-36500, 36500)
        self.date_offset.setSpecialValueText("random")
        self.date_offset.setMinimum(-36501)
        self.date_offset.setValue(-36501)
        self.date_offset.setSuffix(" days")
        self.date_offset.setToolTip("0 keeps the real dates")
        self.retain_chars = QCheckBox("Retain patient characteristics (age, sex, size, weight)")
        self.retain_device = QCheckBox("Retain device identity (serial numbers, station)")
        self.retain_private = QCheckBox("Retain safe private attributes")
        self.clean_desc = QCheckBox("Keep descriptions, cleaned of identifying text")
        form.addRow(self.retain_dates)
        form.addRow("Date shift", self.date_offset)
        for cb in (self.retain_chars, self.retain_device, self.retain_private, self.clean_desc):
            form.addRow(cb)
        self.accept_burned_in = QCheckBox("I checked the images: export even if text may be "
                                          "burned into the pixels")
        warn = QLabel(BURNED_IN_WARNING)
        warn.setWordWrap(True)
        warn.setStyleSheet("color: #c0392b;")
        warn.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        opts_box.addWidget(warn)
        opts_box.addWidget(self.accept_burned_in)
        self.within_study = QCheckBox("Write into the source study (keeps patient identity; "
                                      "for PACS review only)")
        self.within_study.setVisible(volume is not None)
        self.within_study.toggled.connect(lambda on: opts_enabled(not on))
        opts_box.addWidget(self.within_study)
        lay.addWidget(opts)

        def opts_enabled(on: bool) -> None:
            for w in (self.pseudonym_name, self.pseudonym_id, self.retain_dates,
                      self.date_offset, self.retain_chars, self.retain_device,
                      self.retain_private, self.clean_desc):
                w.setEnabled(on)

        out_row = QHBoxLayout()
        stamp = dt.datetime.now().strftime("%Y%m%d_%H%M%S")
        self.out_edit = QLineEdit(str(context.paths.exports_dir / f"export_{stamp}"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row.addWidget(QLabel("Output folder"))
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        lay.addLayout(out_row)

        self.pacs_box = QGroupBox("Send to PACS after export")
        self.pacs_box.setCheckable(True)
        self.pacs_box.setChecked(False)
        pform = QFormLayout(self.pacs_box)
        saved = self._load_node()
        self.pacs_aet = QLineEdit(saved.get("ae_title", ""))
        self.pacs_host = QLineEdit(saved.get("host", ""))
        self.pacs_port = spin_box(1, 65535)
        self.pacs_port.setValue(int(saved.get("port", 104)))
        self.calling_aet = QLineEdit(saved.get("calling_ae", "MEDGAN"))
        pform.addRow("Called AE title", self.pacs_aet)
        pform.addRow("Host", self.pacs_host)
        pform.addRow("Port", self.pacs_port)
        pform.addRow("Our AE title", self.calling_aet)
        self.test_btn = QPushButton("Test connection (C-ECHO)")
        self.test_btn.clicked.connect(self._test_connection)
        self.echo_label = QLabel("")
        self.echo_label.setWordWrap(True)
        pform.addRow(self.test_btn, self.echo_label)
        lay.addWidget(self.pacs_box)

        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(140)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.summary)
        buttons = QHBoxLayout()
        self.export_btn = QPushButton("Export")
        self.export_btn.setDefault(True)
        self.export_btn.clicked.connect(self.start_export)
        self.export_btn.setEnabled(bool(self.files) or volume is not None)
        self.cancel_btn = QPushButton("Cancel export")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self._cancel)
        self.report_btn = QPushButton("Save report…")
        self.report_btn.setEnabled(False)
        self.report_btn.clicked.connect(self._save_report)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.export_btn, self.cancel_btn, self.report_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay.addLayout(buttons)

    # -- values ------------------------------------------------------------------------
    def options(self) -> AnonymizeOptions:
        offset = self.date_offset.value()
        return AnonymizeOptions(
            pseudonym_name=self.pseudonym_name.text().strip() or None,
            pseudonym_id=self.pseudonym_id.text().strip() or None,
            retain_longitudinal=self.retain_dates.isChecked(),
            retain_patient_chars=self.retain_chars.isChecked(),
            retain_device=self.retain_device.isChecked(),
            retain_safe_private=self.retain_private.isChecked(),
            clean_descriptors=self.clean_desc.isChecked(),
            accept_burned_in=self.accept_burned_in.isChecked(),
            date_offset_days=None if offset == self.date_offset.minimum() else offset,
        )

    def node(self) -> DicomNode:
        """The PACS destination from the fields (ValueError when incomplete)."""
        host = self.pacs_host.text().strip()
        if not host:
            raise ValueError("enter the PACS host name or address")
        return DicomNode(self.pacs_aet.text().strip(), host, self.pacs_port.value(),
                         calling_ae=self.calling_aet.text().strip() or "MEDGAN")

    def _node_file(self) -> Path:
        return self.context.paths.data_dir / "pacs_node.json"

    def _load_node(self) -> dict[str, Any]:
        try:
            data = json.loads(self._node_file().read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save_node(self, node: DicomNode) -> None:
        try:
            self._node_file().parent.mkdir(parents=True, exist_ok=True)
            self._node_file().write_text(json.dumps(
                {"ae_title": node.ae_title, "host": node.host, "port": node.port,
                 "calling_ae": node.calling_ae}), encoding="utf-8")
        except OSError as exc:
            log.warning("could not save the PACS settings: %s", exc)

    # -- actions -----------------------------------------------------------------------
    def _browse(self) -> None:
        chosen = existing_folder(self, "Choose the export folder")
        if not chosen:
            return
        path = Path(chosen)
        if path.exists() and any(path.iterdir()):
            path = path / f"medgan_export_{dt.datetime.now().strftime('%Y%m%d_%H%M%S')}"
        self.out_edit.setText(str(path))

    def _test_connection(self) -> None:
        try:
            node = self.node()
        except ValueError as exc:
            self.echo_label.setText(str(exc))
            return
        self.test_btn.setEnabled(False)
        self.echo_label.setText(f"contacting {node.describe()}…")

        def job(progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> tuple[bool, str]:
            return echo_message(node)

        worker = Worker(job, name="C-ECHO")
        worker.finished.connect(self._echo_done)
        worker.failed.connect(lambda msg, _tb: self._echo_done((False, msg)))
        worker.done.connect(lambda: self.test_btn.setEnabled(True))
        self.echo_worker = worker
        self.context.workers.submit(worker)

    def _echo_done(self, result: object) -> None:
        ok, msg = bool(result[0]), str(result[1])  # type: ignore[index]
        self.echo_label.setText(("OK: " if ok else "Failed: ") + str(msg))
        if ok:
            self._save_node(self.node())

    def start_export(self) -> None:
        """Validate the fields and start the export worker."""
        out = self.out_edit.text().strip()
        if not out:
            QMessageBox.warning(self, "Export", "Choose an output folder.")
            return
        node = None
        if self.pacs_box.isChecked():
            try:
                node = self.node()
            except ValueError as exc:
                QMessageBox.warning(self, "Export", f"PACS destination: {exc}")
                return
        spec = ExportSpec(
            out_dir=Path(out), options=self.options(), node=node,
            series=tuple(self.series_groups), files=tuple(self.files) if not self.series_groups else (),
            volume=self.volume if not (self.series_groups or self.files) else None,
            within_source_study=self.within_study.isChecked() if self.volume is not None else False,
            uncertainty=self.uncertainty if self.volume is not None else None,
        )
        self.worker = Worker(run_export, spec, name="export").connect_slots(
            progress=self._on_progress, finished=self._on_finished, failed=self._on_failed,
            cancelled=lambda: self.status.setText("Export cancelled; nothing was written."),
            done=self._on_done)
        self.export_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.summary.clear()
        self.status.setText("Exporting…")
        self.context.workers.submit(self.worker)

    def _cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, p: Progress) -> None:
        self.progress.setMaximum(max(p.total, 1))
        self.progress.setValue(p.done)
        self.status.setText(p.message)

    def _on_finished(self, result: ExportResult) -> None:
        self.export_result = result
        self.summary.setPlainText(result.summary())
        if result.complete:
            self.status.setText("Export complete.")
        elif result.send is not None and not result.send.ok:
            self.status.setText("Exported, but sending failed.")
        else:
            self.status.setText("Exported with problems: some files were skipped (see the list).")
        self.report_btn.setEnabled(result.report is not None)
        if result.send is not None and result.send.ok and self.pacs_box.isChecked():
            self._save_node(self.node())
        self.context.status.emit(f"exported {len(result.files)} file(s) to {result.out_dir}")

    def _on_failed(self, message: str, _tb: str) -> None:
        self.status.setText("Export failed; nothing was written to the output folder.")
        self.summary.setPlainText(message)
        QMessageBox.warning(self, "Export failed", message)

    def _on_done(self) -> None:
        self.export_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _save_report(self) -> None:
        if self.export_result is None or self.export_result.report is None:
            return
        path = save_file_name(self, "Save the anonymisation report",
                              Path(str(self.export_result.out_dir) + "_report.json").name,
                              "JSON (*.json);;CSV (*.csv)")
        if path:
            try:
                self.export_result.report.save(Path(path))
            except OSError as exc:
                QMessageBox.warning(self, "Save report", f"Could not save the report: {exc}")
                return
            self.status.setText(f"Report saved to {path}")
