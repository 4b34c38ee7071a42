"""Writing an anonymised export: output names that never derive from sources, one file at a time.

Names are ``S001/SE001/IM00001.dcm``: study, series and instance numbers in the order the
job meets them (:class:`OutputLayout`). :func:`save_instance` writes one file and tells a
value the encoder refuses (that file is skipped) from a failing disk (the job stops).
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from medgan_desktop.core.dicom.anonymize_report import AnonymizeReport, FileResult

__all__ = ["OutputLayout", "save_instance"]


def save_instance(anon: Dataset, tmp: Path, out_rel: str, rel: str,
                  report: AnonymizeReport) -> bool:
    """Write one de-identified dataset to ``tmp/out_rel``.

    Args:
        anon: the de-identified dataset.
        tmp: the export folder being built.
        out_rel: its name there (from :meth:`OutputLayout.place`).
        rel: the source's name in the report.
        report: where a file that cannot be encoded is recorded as skipped.

    Returns:
        True when written; False when a value cannot be encoded (nothing is left behind).

    Raises:
        OSError: the output disk failed; the export is abandoned.
    """
    target = tmp / out_rel
    fresh = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        anon.save_as(target, enforce_file_format=True)
    except OSError:
        raise
    except Exception as exc:  # a value that cannot be encoded: this file only
        target.unlink(missing_ok=True)
        if fresh and not any(target.parent.iterdir()):
            target.parent.rmdir()
        reason = f"could not be encoded ({type(exc).__name__}: {exc})"
        report.files.append(FileResult(rel, None, "skipped", " ".join(reason.split())[:200]))
        return False
    return True


class OutputLayout:
    """Output names ``S001/SE001/IM00001.dcm`` by study, series and order (never sources)."""

    def __init__(self) -> None:
        self.studies: dict[str, int] = {}
        self.series: dict[str, tuple[int, int]] = {}
        self.counts: dict[str, int] = {}

    @staticmethod
    def _keys(ds: Dataset) -> tuple[str, str]:
        return str(ds.get("StudyInstanceUID", "none")), str(ds.get("SeriesInstanceUID", "none"))

    def place(self, ds: Dataset) -> str:
        """The name the dataset gets if it is written (nothing is recorded yet)."""
        st, se = self._keys(ds)
        si = self.studies.get(st, len(self.studies) + 1)
        nth = self.series.get(se, (si, sum(1 for v in self.series.values() if v[0] == si) + 1))
        return f"S{si:03d}/SE{nth[1]:03d}/IM{self.counts.get(se, 0) + 1:05d}.dcm"

    def commit(self, ds: Dataset) -> None:
        """Record that the dataset was written under the name :meth:`place` gave."""
        st, se = self._keys(ds)
        si = self.studies.setdefault(st, len(self.studies) + 1)
        if se not in self.series:
            self.series[se] = (si, sum(1 for v in self.series.values() if v[0] == si) + 1)
        self.counts[se] = self.counts.get(se, 0) + 1
