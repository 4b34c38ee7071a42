"""DICOM leaving the workstation: anonymise, write synthetic series, send to a PACS.

``medgan anonymize`` / ``medgan send`` and the Export dialog run these jobs:

* :func:`run_anonymize`: a folder, a list of files, an indexed series, or whole studies
  (every series of each, as one job: one UID mapping, one pseudonym and one date shift per
  patient), de-identified by the PS3.15 profile into a new folder written all or nothing.
  Images that may show identity burned into their pixels are refused per series unless
  the user accepts the risk; unreadable files are reported and skipped.
* :func:`run_export`: the same for an anonymised copy, or a synthetic volume written as a
  marked, anonymised CT/MR series; then, optionally, C-STORE to a PACS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from medgan_desktop.core.dicom.anonymize import (
    AnonymizeOptions,
    Anonymizer,
    AnonymizeReport,
    BurnedInAnnotationError,
    burned_in_reason,
)
from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.dicom.pacs import DicomNode, SendReport, send_files
from medgan_desktop.core.dicom.write import GeometryUnknownError, read_source_headers, write_synthetic_series
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume


@dataclass(frozen=True)
class SeriesGroup:
    """One series of a study export: a label for messages and the report, and its files."""

    label: str
    files: tuple[Path, ...]


def study_series_groups(index: StudyIndex, study_uids: Sequence[str]) -> tuple[list[str], list[SeriesGroup]]:
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
            except Exception:  # noqa: BLE001 - unreadable files are reported by the anonymiser
                continue
            reason = burned_in_reason(head)
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
        if reasons:
            n = sum(reasons.values())
            found.append(f"{g.label}: {n} of {len(g.files)} image(s), " + "; ".join(sorted(reasons)))
    return found


def _source_names(groups: Sequence[SeriesGroup]) -> dict[Path, str]:
    """Report names ``<series label>/<file name>`` (file names repeat across series)."""
    return {Path(f): f"{g.label}/{Path(f).name}" for g in groups for f in g.files}


@dataclass(frozen=True)
class ExportSpec:
    """One export.

    Args:
        out_dir: the folder to create (new or empty; never inside a source folder).
        options: anonymiser options.
        folder: a folder of DICOM files to anonymise (``medgan anonymize``).
        files: the files of one series to anonymise.
        series: the series of one or more studies, anonymised as one job.
        volume: a synthetic volume to write as a marked, anonymised series.
        model_version: the version of the model that made ``volume``.
        within_source_study: for a volume: keep the source study and patient (no
            anonymisation; an explicit choice for review beside the source).
        node: a PACS to C-STORE the written files to.
        uncertainty: the volume's uncertainty map, written with it as a second derived
            series (``<out_dir>_uncertainty``, same anonymised study); both or neither.
    """

    out_dir: Path
    options: AnonymizeOptions = field(default_factory=AnonymizeOptions)
    folder: Path | None = None
    files: tuple[Path, ...] = ()
    series: tuple[SeriesGroup, ...] = ()
    volume: Volume | None = None
    within_source_study: bool = False
    node: DicomNode | None = None
    uncertainty: Volume | None = None


@dataclass
class ExportResult:
    """What an export job produced."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    report: AnonymizeReport | None = None
    send: SendReport | None = None

    @property
    def complete(self) -> bool:
        """Everything was written (and sent): no file was skipped, no send failed."""
        skipped = self.report is not None and self.report.skipped > 0
        return not skipped and (self.send is None or self.send.ok)

    def summary(self) -> str:
        lines = [f"Exported {len(self.files)} file(s) to {self.out_dir}"]
        if self.report is not None:
            lines.append(self.report.summary_text())
            lines += [f"  skipped: {f.source}: {f.reason}" for f in self.report.files
                      if f.status == "skipped"][:20]
        if self.send is not None:
            lines.append(self.send.summary())
            lines += [f"  {f.status}: {Path(f.path).name} {f.message}" for f in self.send.files
                      if f.status != "ok"]
        return "\n".join(lines)


def _refuse_burned_in(series: Sequence[SeriesGroup], options: AnonymizeOptions,
                      progress: ProgressCallback, cancel: CancelToken | None) -> None:
    if options.accept_burned_in:
        return
    refused = burned_in_series(series, progress=progress, cancel=cancel)
    if refused:
        raise JobError(
            f"{len(refused)} of {len(series)} series may show patient details burned into the "
            "pixels, which the anonymiser cannot remove:\n  " + "\n  ".join(refused)
            + "\nNothing was exported. Check the images of these series and accept the risk "
            "explicitly to export the study.")


def run_export(spec: ExportSpec, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> ExportResult:
    """Anonymise what ``spec`` names, or write its synthetic volume, then optionally send.

    Raises:
        JobError: nothing to export, an output inside a source, an existing folder, images
            with burned-in text not accepted, a volume without patient geometry.
        WriteError: writing failed (disk full, read-only); nothing was left behind.
    """
    result = ExportResult(out_dir=Path(spec.out_dir))
    job = Anonymizer(spec.options)
    try:
        if spec.series:
            _refuse_burned_in(spec.series, spec.options, progress, cancel)
            all_files = [f for g in spec.series for f in g.files]
            report = job.anonymize_files(all_files, spec.out_dir,
                                         source_names=_source_names(spec.series),
                                         progress=progress, cancel=cancel)
        elif spec.files:
            report = job.anonymize_files(list(spec.files), spec.out_dir, progress=progress,
                                         cancel=cancel)
        elif spec.folder is not None:
            report = job.anonymize_folder(spec.folder, spec.out_dir, progress=progress,
                                          cancel=cancel)
        elif spec.volume is not None:
            report = None
            vol = spec.volume
            headers = read_source_headers(vol.source.files)

            def write(v: Volume, out: Path, label: str = "", number: int | None = None) -> list[Path]:
                return write_synthetic_series(
                    v, out, source_datasets=headers,
                    model_id=str(vol.meta.get("model_id", "unknown-model")),
                    model_version=str(vol.meta.get("model_version") or "unversioned"),
                    within_source_study=spec.within_source_study, anonymize=spec.options,
                    anonymizer=job, progress=progress, cancel=cancel, label=label, series_number=number)

            existed = Path(spec.out_dir).exists()
            result.files = write(vol, spec.out_dir)
            if spec.uncertainty is not None:
                out_u = Path(spec.out_dir).with_name(Path(spec.out_dir).name + "_uncertainty")
                try:
                    result.files += write(spec.uncertainty, out_u, "UNCERTAINTY SD",
                                          2000 + (vol.source.series_number or 0))
                except BaseException:  # the series and its map, or neither
                    for f in result.files:
                        f.unlink(missing_ok=True)
                    if not existed:
                        with contextlib.suppress(OSError):
                            Path(spec.out_dir).rmdir()
                    raise
        else:
            raise JobError("nothing to export: no folder, files, series or volume")
    except (BurnedInAnnotationError, GeometryUnknownError, FileExistsError,
            FileNotFoundError) as exc:
        raise JobError(str(exc)) from exc
    except ValueError as exc:  # an output inside a source folder
        if isinstance(exc, JobError):
            raise
        raise JobError(str(exc)) from exc
    if report is not None:
        result.report = report
        result.files = sorted(Path(report.out_dir).rglob("*.dcm")) if report.out_dir else []
    if spec.node is not None and result.files:
        result.send = send_files(spec.node, result.files, progress=progress, cancel=cancel)
    return result


def series_files(index: StudyIndex, series_uid: str) -> list[Path]:
    """The files of an indexed series (for exporting one series)."""
    return list(index.series_files(series_uid))


def run_send(folder: Path, node: DicomNode, retries: int = 2,
             progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> SendReport:
    """C-STORE every file under ``folder`` to ``node`` (``medgan send``).

    Raises:
        JobError: not a folder, or no files in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise JobError(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise JobError(f"no files under {folder}")
    return send_files(node, files, retries=retries, progress=progress, cancel=cancel)
