"""The study index and opening images: ``medgan import``, ``medgan ls`` and the Browser.

* :func:`run_import`: index DICOM files and folders (headers only; never copied or changed).
* :func:`index_listing`: the patients -> studies -> series tree as plain data, with each
  series' provenance (``synthetic``), as ``medgan ls --json`` prints it.
* :func:`open_series` / :func:`open_file`: load an indexed series or any file/folder as
  volumes, with every loader warning (the viewers show them in a bar).
* :func:`thumbnails` and :func:`header_rows`: what the Browser shows beside the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from medgan_desktop.core.dicom.index import ImportReport, IndexError_, PatientNode, StudyIndex
from medgan_desktop.core.dicom.reader import DicomReadError
from medgan_desktop.core.dicom.series import load_series, load_series_from_index
from medgan_desktop.core.io import UnsupportedFileError, open_path
from medgan_desktop.core.jobs.base import JobError, warn_all
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume

THUMB_SIZE = 64


@dataclass(frozen=True)
class ImportSpec:
    """Files and folders to index into the study index at ``db``."""

    paths: tuple[Path, ...]
    db: Path


@dataclass(frozen=True)
class ImportResult:
    """What an import added; ``failed`` when files were given but nothing could be indexed."""

    report: ImportReport

    @property
    def failed(self) -> bool:
        return self.report.nothing_imported


def run_import(spec: ImportSpec, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None, index: StudyIndex | None = None) -> ImportResult:
    """Index every DICOM file under the paths; bad files are recorded as problems.

    Args:
        index: an open index to use (the GUI's); else ``spec.db`` is opened and closed here.

    Raises:
        JobError: a path does not exist or cannot be read, or the index cannot be written.
    """
    for p in spec.paths:
        if not Path(p).exists():
            raise JobError(f"no such file or folder: {p}")
    own = index is None
    try:
        idx = index if index is not None else StudyIndex(spec.db)
    except IndexError_ as exc:
        raise JobError(str(exc)) from exc
    try:
        report = idx.import_paths([Path(p) for p in spec.paths], progress=progress, cancel=cancel)
    except (FileNotFoundError, PermissionError, IndexError_) as exc:
        raise JobError(str(exc)) from exc
    finally:
        if own:
            idx.close()
    return ImportResult(report)


def listing(tree: Sequence[PatientNode]) -> list[dict[str, Any]]:
    """The index tree as plain data (``medgan ls --json``): every series with its modality,
    description, image count, body part and whether it is ``synthetic``."""
    return [
        {
            "patient_id": p.patient_id,
            "patient_name": p.patient_name,
            "studies": [
                {
                    "study_uid": s.study_uid,
                    "date": s.date,
                    "description": s.description,
                    "series": [
                        {
                            "series_uid": r.series_uid,
                            "modality": r.modality,
                            "date": r.date,
                            "description": r.description,
                            "number": r.number,
                            "instances": r.instance_count,
                            "body_part": r.body_part,
                            "synthetic": r.synthetic,
                        }
                        for r in s.series
                    ],
                }
                for s in p.studies
            ],
        }
        for p in tree
    ]


def index_listing(db: Path) -> list[dict[str, Any]]:
    """:func:`listing` of the index at ``db``.

    Raises:
        JobError: the index cannot be opened.
    """
    try:
        with StudyIndex(db) as index:
            return listing(index.tree())
    except IndexError_ as exc:
        raise JobError(str(exc)) from exc


# -- opening ------------------------------------------------------------------------------------
def open_series(index: StudyIndex, uid: str, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> Volume:
    """Load an indexed series; its warnings are reported as notices.

    Raises:
        JobError: the series cannot be read.
    """
    try:
        vol = load_series_from_index(index, uid, progress=progress, cancel=cancel)
    except (DicomReadError, ValueError, OSError) as exc:
        raise JobError(f"cannot open the series: {exc}") from exc
    warn_all(progress, vol.warnings)
    return vol


def open_file(path: Path, progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> list[Volume]:
    """Every volume at ``path`` (DICOM series, NIfTI/MHA/NRRD, images); warnings as notices.

    Raises:
        JobError: nothing can be opened there.
    """
    try:
        vols = open_path(Path(path), progress=progress, cancel=cancel)
    except (UnsupportedFileError, FileNotFoundError, DicomReadError, OSError) as exc:
        raise JobError(f"cannot open {path}: {exc}") from exc
    for v in vols:
        warn_all(progress, v.warnings, f"{v.description}: " if len(vols) > 1 else "")
    return vols


def thumbnails(index: StudyIndex, uids: list[str], progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> dict[str, NDArray[np.uint8]]:
    """Middle-image thumbnails (uint8, at most :data:`THUMB_SIZE` px) per series UID.

    Series that cannot be decoded are left out (the tree shows no icon for them).
    """
    out: dict[str, NDArray[np.uint8]] = {}
    for n, uid in enumerate(uids):
        if cancel is not None:
            cancel.check()
        files = index.series_files(uid)
        if not files:
            continue
        try:
            vol = load_series([files[len(files) // 2]], series_uid=uid)
        except Exception:  # noqa: BLE001 - no thumbnail, not an error
            continue
        img = vol.array[vol.shape[0] // 2]
        step = max(1, int(np.ceil(max(img.shape) / THUMB_SIZE)))
        small = img[::step, ::step]
        lo, hi = np.percentile(small, [1, 99])
        scaled = np.clip((small - lo) / max(hi - lo, 1e-6), 0, 1)
        out[uid] = np.ascontiguousarray((scaled * 255).astype(np.uint8))
        progress(Progress(n + 1, len(uids), "thumbnails"))
    return out


def header_rows(path: Path) -> list[tuple[str, str, str, str]]:
    """The header of one file as ``(tag, name, VR, value)`` rows (values shortened).

    Raises:
        JobError: the file cannot be read.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - the file may have moved or be damaged
        raise JobError(f"cannot read {path}: {exc}") from exc
    rows: list[tuple[str, str, str, str]] = []
    for elem in ds.iterall():
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.name
        if elem.tag.is_private:
            creator = getattr(elem, "private_creator", None)
            name = f"[private{': ' + creator if creator else ''}] {elem.name}"
        if elem.VR == "SQ":
            value = f"sequence of {len(elem.value)} item(s)"
        elif isinstance(elem.value, bytes | bytearray):
            value = f"<{len(elem.value)} bytes>"
        else:
            value = str(elem.value)
            if len(value) > 200:
                value = value[:200] + "…"
        rows.append((tag, name, str(elem.VR), value))
    return rows
