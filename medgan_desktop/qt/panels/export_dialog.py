"""Export dialog: anonymise an indexed series or study, or write a synthetic volume, then send.

The work runs in a :class:`~medgan_desktop.qt.workers.base.Worker` calling the same core
functions as ``medgan anonymize`` / ``medgan send`` (:func:`run_export`). A study (or all of
a patient's studies) is exported as one anonymisation job, exactly as ``medgan anonymize``
treats a folder tree: one UID mapping, one pseudonym and one date shift per patient, one
report, written to a temporary folder and moved into place only when complete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop import __version__
from medgan_desktop.core.dicom.anonymize import (
    AnonymizeOptions,
    Anonymizer,
    AnonymizeReport,
    BurnedInAnnotationError,
    burned_in_reason,
)
from medgan_desktop.core.dicom.pacs import DicomNode, SendReport, echo_message, send_files
from medgan_desktop.core.dicom.write import write_synthetic_series
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

BURNED_IN_WARNING = (
    "Ultrasound, screen captures, angiography and some scanned images can show the "
    "patient's name or ID inside the pixels. The anonymiser only cleans the header; it "
    "cannot remove text burned into the image. Such images are refused unless you tick "
    "this box after checking every image yourself."
)


@dataclass(frozen=True)
class SeriesGroup:
    """One series of a study export: a label for messages and the report, and its files."""

    label: str
    files: tuple[Path, ...]


def study_series_groups(index: Any, study_uids: Sequence[str]) -> tuple[list[str], list[SeriesGroup]]:
    """The series of the given indexed studies, in the browser's order.

    Returns:
        (one line per study found, the series groups of all those studies).
    """
    wanted = set(study_uids)
    studies: list[str] = []
    groups: list[SeriesGroup] = []
    for patient in index.tree():
        for st in patient.studies:
            if st.study_uid not in wanted:
                continue
            date = st.date
            date = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else date
            studies.append(f"{st.description or '(study)'}{' ' + date if date else ''}")
            prefix = f"{st.description or 'study'}: " if len(wanted) > 1 else ""
            for se in st.series:
                num = "" if se.number is None else f"#{se.number} "
                label = (f"{prefix}{num}{se.description or '(no description)'}"
                         f" ({se.modality or '?'})")
                files = tuple(index.series_files(se.series_uid))
                if files:
                    groups.append(SeriesGroup(label, files))
    return studies, groups


def burned_in_series(groups: Sequence[SeriesGroup], progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> list[str]:
    """One line per series holding images that may show identity in their pixels."""
    total = sum(len(g.files) for g in groups)
    done = 0
    found: list[str] = []
    for g in groups:
        reasons: dict[str, int] = {}
        for f in g.files:
            if cancel is not None:
                cancel.check()
            done += 1
            progress(Progress(done, total, "checking for burned-in annotation"))
            try:
                head = pydicom.dcmread(f, stop_before_pixels=True)
            except (OSError, ValueError, EOFError, pydicom.errors.InvalidDicomError):
                continue  # reported as skipped by the anonymiser
            reason = burned_in_reason(head)
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
        if reasons:
            n = sum(reasons.values())
            found.append(f"{g.label}: {n} of {len(g.files)} image(s), "
                         + "; ".join(sorted(reasons)))
    return found


def _source_names(groups: Sequence[SeriesGroup]) -> dict[Path, str]:
    """Report names ``<series label>/<file name>`` (file names repeat across series)."""
    names: dict[Path, str] = {}
    for g in groups:
        for f in g.files:
            names[Path(f)] = f"{g.label}/{Path(f).name}"
    return names


@dataclass
class ExportResult:
    """What an export job produced."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    report: AnonymizeReport | None = None
    send: SendReport | None = None

    def summary(self) -> str:
        lines = [f"Exported {len(self.files)} file(s) to {self.out_dir}"]
        if self.report is not None:
            lines.append(self.report.summary_text())
        if self.send is not None:
            lines.append(self.send.summary())
            lines += [f"  {f.status}: {Path(f.path).name} {f.message}" for f in self.send.files
                      if f.status != "ok"]
        return "\n".join(lines)


def run_export(
    *,
    out_dir: Path,
    options: AnonymizeOptions,
    files: list[Path] | None = None,
    series: Sequence[SeriesGroup] | None = None,
    volume: Volume | None = None,
    within_source_study: bool = False,
    node: DicomNode | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Anonymise ``files`` or write ``volume`` as a synthetic series, then optionally send.

    Args:
        out_dir: the folder to create.
        options: anonymiser options.
        files: source DICOM files of a series (anonymised copies are written).
        series: the series of a study (or of several studies) to anonymise together as
            one job; images that may show burned-in text are refused per series (all
            offending series are named) unless ``options.accept_burned_in``.
        volume: a synthetic volume (written with :func:`write_synthetic_series`).
        within_source_study: for a volume: keep the source study and patient.
        node: a PACS to C-STORE the written files to.
    """
    result = ExportResult(out_dir=Path(out_dir))
    if series:
        if not options.accept_burned_in:
            refused = burned_in_series(series, progress=progress, cancel=cancel)
            if refused:
                raise BurnedInAnnotationError(
                    f"{len(refused)} of {len(series)} series may show patient details burned "
                    "into the pixels, which the anonymiser cannot remove:\n  "
                    + "\n  ".join(refused)
                    + "\nNothing was exported. Check the images of these series and accept "
                    "the risk explicitly to export the study.")
        all_files = [f for g in series for f in g.files]
        report = Anonymizer(options).anonymize_files(
            all_files, out_dir, source_names=_source_names(series), progress=progress,
            cancel=cancel)
        result.report = report
        result.files = sorted(Path(report.out_dir).rglob("*.dcm"))
    elif files:
        report = Anonymizer(options).anonymize_files(files, out_dir, progress=progress,
                                                     cancel=cancel)
        result.report = report
        result.files = sorted(Path(report.out_dir).rglob("*.dcm"))
    elif volume is not None:
        sources = []
        for f in volume.source.files:
            try:
                sources.append(pydicom.dcmread(f, stop_before_pixels=True))
            except (OSError, pydicom.errors.InvalidDicomError) as exc:
                log.warning("source header %s unreadable: %s", f, exc)
        result.files = write_synthetic_series(
            volume, out_dir, source_datasets=sources or None,
            model_id=str(volume.meta.get("model_id", "unknown-model")),
            model_version=str(volume.meta.get("model_version", "unknown")),
            software_version=__version__, within_source_study=within_source_study,
            anonymize=options, progress=progress, cancel=cancel)
    else:
        raise ValueError("nothing to export: no series files and no volume")
    if node is not None:
        result.send = send_files(node, result.files, progress=progress, cancel=cancel)
    return result


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
                 study_uids: Sequence[str] | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.series_uid = series_uid
        self.volume = volume
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
        form = QFormLayout(opts)
        self.pseudonym_name = QLineEdit()
        self.pseudonym_name.setPlaceholderText("generated when empty")
        self.pseudonym_id = QLineEdit()
        self.pseudonym_id.setPlaceholderText("generated when empty")
        form.addRow("Pseudonym name", self.pseudonym_name)
        form.addRow("Pseudonym ID", self.pseudonym_id)
        self.retain_dates = QCheckBox("Retain dates, shifted by one offset per patient")
        self.date_offset = QSpinBox()
        self.date_offset.setRange(-36500, 36500)
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
        form.addRow(warn)
        form.addRow(self.accept_burned_in)
        self.within_study = QCheckBox("Write into the source study (keeps patient identity; "
                                      "for PACS review only)")
        self.within_study.setVisible(volume is not None)
        self.within_study.toggled.connect(lambda on: opts_enabled(not on))
        form.addRow(self.within_study)
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
        self.pacs_port = QSpinBox()
        self.pacs_port.setRange(1, 65535)
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
        chosen = QFileDialog.getExistingDirectory(self, "Choose the export folder")
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
        kwargs: dict[str, Any] = {"out_dir": Path(out), "options": self.options(), "node": node}
        if self.series_groups:
            kwargs["series"] = self.series_groups
        elif self.files:
            kwargs["files"] = self.files
        else:
            kwargs["volume"] = self.volume
            kwargs["within_source_study"] = self.within_study.isChecked()
        self.worker = Worker(run_export, name="export", **kwargs)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(lambda: self.status.setText(
            "Export cancelled; nothing was written."))
        self.worker.done.connect(self._on_done)
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
        ok = result.send is None or result.send.ok
        self.status.setText("Export complete." if ok else "Exported, but sending failed.")
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
        path, _ = QFileDialog.getSaveFileName(self, "Save the anonymisation report",
                                              str(self.export_result.out_dir) + "_report.json",
                                              "JSON (*.json);;CSV (*.csv)")
        if path:
            try:
                self.export_result.report.save(Path(path))
            except OSError as exc:
                QMessageBox.warning(self, "Save report", f"Could not save the report: {exc}")
                return
            self.status.setText(f"Report saved to {path}")
