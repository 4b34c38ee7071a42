"""The study index: patients -> studies -> series -> instances in one SQLite file.

The index stores *references* to DICOM files (never copies, never writes them),
read from headers only. It is safe to use from two threads at once (a worker
importing while the GUI reads): one connection guarded by a re-entrant lock.
The schema is versioned with ``PRAGMA user_version`` and upgraded by the
ordered :data:`MIGRATIONS` list.

Counts in an :class:`ImportReport` are of what the import *added*: importing the
same folder twice reports zero new instances the second time, and those files
count as ``skipped``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medgan_desktop.core.dicom.reader import (
    DicomReadError,
    HeaderInfo,
    dicomdir_files,
    is_dicomdir,
    looks_like_non_dicom,
    read_ahead,
    read_header,
    walk_files,
)
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # v1: the initial schema
    """
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL,
        patient_name TEXT NOT NULL,
        birth_date TEXT NOT NULL DEFAULT '',
        sex TEXT NOT NULL DEFAULT '',
        UNIQUE (patient_id, patient_name)
    );
    CREATE TABLE studies (
        study_uid TEXT PRIMARY KEY,
        patient_pk INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        study_date TEXT NOT NULL DEFAULT '',
        study_time TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        accession TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE series (
        series_uid TEXT PRIMARY KEY,
        study_uid TEXT NOT NULL REFERENCES studies(study_uid) ON DELETE CASCADE,
        modality TEXT NOT NULL DEFAULT '',
        series_date TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        number INTEGER,
        frame_of_reference_uid TEXT NOT NULL DEFAULT '',
        uids_derived INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY,
        sop_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL REFERENCES series(series_uid) ON DELETE CASCADE,
        path TEXT NOT NULL,
        instance_number INTEGER,
        sop_class_uid TEXT NOT NULL DEFAULT '',
        transfer_syntax_uid TEXT NOT NULL DEFAULT '',
        rows INTEGER NOT NULL DEFAULT 0,
        columns INTEGER NOT NULL DEFAULT 0,
        frames INTEGER NOT NULL DEFAULT 1,
        size INTEGER NOT NULL DEFAULT 0,
        mtime REAL NOT NULL DEFAULT 0,
        UNIQUE (sop_uid, path)
    );
    CREATE INDEX instances_series ON instances(series_uid);
    CREATE INDEX instances_path ON instances(path);
    CREATE INDEX series_study ON series(study_uid);
    CREATE INDEX studies_patient ON studies(patient_pk);
    CREATE TABLE problems (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        reason TEXT NOT NULL,
        seen REAL NOT NULL,
        UNIQUE (path)
    );
    """,
    # v2: provenance (synthetic series) and the body part, per series
    """
    ALTER TABLE series ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE series ADD COLUMN body_part TEXT NOT NULL DEFAULT '';
    CREATE INDEX instances_sop ON instances(sop_uid);
    """,
)


@dataclass(frozen=True)
class Problem:
    """A file that could not be imported, and why."""

    path: str
    reason: str


@dataclass
class ImportReport:
    """What one import added (see module docs for the counting rules)."""

    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    skipped: int = 0
    errors: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    files_seen: int = 0
    duplicates: int = 0

    @property
    def nothing_imported(self) -> bool:
        """True when files were given but none was indexed and none was already known."""
        return self.instances == 0 and self.skipped == 0 and self.errors > 0

    def to_dict(self) -> dict[str, object]:
        counts = ("patients", "studies", "series", "instances", "skipped", "errors", "duplicates")
        return {**{k: getattr(self, k) for k in counts}, "problems": [asdict(p) for p in self.problems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class SeriesRecord:
    """One indexed series."""

    series_uid: str
    study_uid: str
    modality: str
    date: str
    description: str
    number: int | None
    instance_count: int
    frame_of_reference_uid: str = ""
    uids_derived: bool = False
    patient_id: str = ""
    patient_name: str = ""
    study_description: str = ""
    synthetic: bool = False
    body_part: str = ""


@dataclass(frozen=True)
class StudyNode:
    study_uid: str
    date: str
    description: str
    accession: str
    series: list[SeriesRecord]


@dataclass(frozen=True)
class PatientNode:
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    studies: list[StudyNode]

    @property
    def label(self) -> str:
        name = self.patient_name or "(no name)"
        return f"{name} [{self.patient_id}]" if self.patient_id else name


#: A header to insert, with the file's size and modification time when it was read.
_Row = tuple[HeaderInfo, int, float]


class IndexError_(Exception):
    """The index database could not be opened or written."""


class StudyIndex:
    """An embedded SQLite index of DICOM files.

    Args:
        db_path: the database file (created with its folder when missing).
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.RLock()
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(
                str(self.db_path), check_same_thread=False, timeout=30.0, isolation_level=None
            )
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA foreign_keys=ON")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise IndexError_(f"cannot open the study index {self.db_path}: {exc}") from exc

    # -- schema ------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            version = int(self._con.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise IndexError_(
                    f"index schema v{version} is newer than this program (v{len(MIGRATIONS)})"
                )
            for v in range(version, len(MIGRATIONS)):
                self._con.execute("BEGIN")
                try:
                    for stmt in MIGRATIONS[v].split(";"):
                        if stmt.strip():
                            self._con.execute(stmt)
                    self._con.execute(f"PRAGMA user_version={v + 1}")
                    self._con.execute("COMMIT")
                except sqlite3.Error:
                    self._con.execute("ROLLBACK")
                    raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._con.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> StudyIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- import ------------------------------------------------------------------------
    def import_paths(
        self,
        paths: Sequence[Path],
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> ImportReport:
        """Index every DICOM file under ``paths`` (folders walked recursively, DICOMDIRs
        followed). Bad files are recorded as problems and the import goes on.

        Raises:
            FileNotFoundError: a root path does not exist or cannot be read.
            IndexError_: the database could not be written.
        """
        t0 = time.perf_counter()
        roots = [Path(p) for p in paths]
        for r in roots:
            if not r.exists():
                raise FileNotFoundError(f"no such file or folder: {r}")
            if r.is_dir():
                try:
                    next(iter(r.iterdir()), None)
                except OSError as exc:
                    raise FileNotFoundError(f"cannot read folder {r}: {exc}") from exc
        progress(Progress(0, 0, "listing files"))
        files: list[Path] = []
        seen: set[str] = set()
        for f in walk_files(roots):
            key = str(f.absolute())
            if key not in seen:
                seen.add(key)
                files.append(f)
            if cancel is not None and len(files) % 2000 == 0:
                cancel.check()
        # DICOMDIRs may reference files outside the walked folders: add them.
        for f in list(files):
            if is_dicomdir(f):
                try:
                    refs = dicomdir_files(f)
                except DicomReadError as exc:
                    log.info("%s: %s", f, exc)
                    continue
                for r in refs:
                    key = str(r.absolute())
                    if key not in seen:
                        seen.add(key)
                        files.append(r)
        report = ImportReport(files_seen=len(files))
        known = self._known_files()
        batch: list[_Row] = []
        total = len(files)
        with closing(read_ahead(lambda f: self._read_one(f, known), files)) as outcomes:
            for n, outcome in enumerate(outcomes):
                if cancel is not None:
                    cancel.check()
                self._tally(outcome, batch, report)
                if len(batch) >= 256:
                    self._write_batch(batch, report)
                    batch.clear()
                if n % 16 == 0 or n + 1 == total:
                    progress(Progress(n + 1, total, f"{n + 1}/{total} files"))
        if batch:
            self._write_batch(batch, report)
        self._record_problems(report.problems)
        report.seconds = time.perf_counter() - t0
        return report

    def _known_files(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            rows = self._con.execute("SELECT path, size, mtime FROM instances").fetchall()
        return {str(p): (int(s), float(m)) for p, s, m in rows}

    @staticmethod
    def _read_one(f: Path, known: dict[str, tuple[int, float]]) -> _Row | Problem | None:
        """One file's row, its problem, or ``None`` to skip it (runs in read-ahead threads:
        only reads ``known``, the files already indexed with their size and mtime)."""
        if is_dicomdir(f) or looks_like_non_dicom(f):
            return None
        path = f.absolute()
        key = str(path)
        try:
            st = path.stat()
        except OSError as exc:
            return Problem(key, f"cannot access file: {exc}")
        if known.get(key) == (st.st_size, st.st_mtime):
            return None
        try:
            info = read_header(path)
        except DicomReadError as exc:
            return Problem(key, str(exc))
        except Exception as exc:  # noqa: BLE001 - never let one file stop an import
            return Problem(key, f"unexpected error: {type(exc).__name__}: {exc}")
        return (info, st.st_size, st.st_mtime)

    @staticmethod
    def _tally(outcome: _Row | Problem | None, batch: list[_Row], report: ImportReport) -> None:
        if outcome is None:
            report.skipped += 1
        elif isinstance(outcome, Problem):
            report.errors += 1
            report.problems.append(outcome)
        else:
            batch.append(outcome)

    def _write_batch(self, batch: list[_Row], report: ImportReport) -> None:
        try:
            with self._lock:
                cur = self._con.cursor()
                cur.execute("BEGIN")
                try:
                    for h, size, mtime in batch:
                        self._insert(cur, h, size, mtime, report)
                    cur.execute("COMMIT")
                except Exception:
                    cur.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise IndexError_(f"cannot write to the study index: {exc}") from exc

    def _insert(
        self, cur: sqlite3.Cursor, h: HeaderInfo, size: int, mtime: float, report: ImportReport
    ) -> None:
        row = cur.execute(
            "SELECT id FROM patients WHERE patient_id=? AND patient_name=?",
            (h.patient_id, h.patient_name),
        ).fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO patients(patient_id, patient_name, birth_date, sex) VALUES (?,?,?,?)",
                (h.patient_id, h.patient_name, h.patient_birth_date, h.patient_sex),
            )
            patient_pk = cur.lastrowid
            report.patients += 1
        else:
            patient_pk = row[0]
        cur.execute(
            "INSERT OR IGNORE INTO studies(study_uid, patient_pk, study_date, study_time, "
            "description, accession) VALUES (?,?,?,?,?,?)",
            (h.study_instance_uid, patient_pk, h.study_date, h.study_time,
             h.study_description, h.accession_number),
        )
        report.studies += cur.rowcount
        cur.execute(
            "INSERT OR IGNORE INTO series(series_uid, study_uid, modality, series_date, "
            "description, number, frame_of_reference_uid, uids_derived, synthetic, body_part) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (h.series_instance_uid, h.study_instance_uid, h.modality, h.series_date,
             h.series_description, h.series_number, h.frame_of_reference_uid,
             int(h.uids_derived), int(h.synthetic), h.body_part),
        )
        report.series += cur.rowcount
        if h.synthetic:  # one synthetic instance marks its series
            cur.execute("UPDATE series SET synthetic=1 WHERE series_uid=?", (h.series_instance_uid,))
        # The same instance reached through another path (a link, a copy on a second
        # mount) is one image, not two: keep the path indexed first while it exists.
        other = cur.execute(
            "SELECT path FROM instances WHERE sop_uid=? AND series_uid=? AND path<>?",
            (h.sop_instance_uid, h.series_instance_uid, str(h.path)),
        ).fetchall()
        if any(Path(str(o[0])).exists() for o in other):
            report.skipped += 1
            report.duplicates += 1
            cur.execute("DELETE FROM problems WHERE path=?", (str(h.path),))
            return
        if other:
            cur.execute("DELETE FROM instances WHERE sop_uid=? AND series_uid=?",
                        (h.sop_instance_uid, h.series_instance_uid))
        # A file whose content changed: replace its old row.
        cur.execute("DELETE FROM instances WHERE path=? AND sop_uid<>?",
                    (str(h.path), h.sop_instance_uid))
        exists = cur.execute(
            "SELECT id FROM instances WHERE sop_uid=? AND path=?", (h.sop_instance_uid, str(h.path))
        ).fetchone()
        if exists is not None:
            cur.execute("UPDATE instances SET size=?, mtime=? WHERE id=?", (size, mtime, exists[0]))
            report.skipped += 1
        else:
            cur.execute(
                "INSERT INTO instances(sop_uid, series_uid, path, instance_number, "
                "sop_class_uid, transfer_syntax_uid, rows, columns, frames, size, mtime) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (h.sop_instance_uid, h.series_instance_uid, str(h.path), h.instance_number,
                 h.sop_class_uid, h.transfer_syntax_uid, h.rows, h.columns, h.frames,
                 size, mtime),
            )
            report.instances += 1
        cur.execute("DELETE FROM problems WHERE path=?", (str(h.path),))

    def _record_problems(self, problems: Iterable[Problem]) -> None:
        rows = [(p.path, p.reason, time.time()) for p in problems]
        if not rows:
            return
        with self._lock:
            self._con.execute("BEGIN")
            self._con.executemany(
                "INSERT INTO problems(path, reason, seen) VALUES (?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET reason=excluded.reason, seen=excluded.seen",
                rows,
            )
            self._con.execute("COMMIT")

    # -- queries -----------------------------------------------------------------------
    _SERIES_SQL = (
        "SELECT s.series_uid, s.study_uid, s.modality, s.series_date, s.description, s.number, "
        "(SELECT COUNT(*) FROM instances i WHERE i.series_uid=s.series_uid), "
        "s.frame_of_reference_uid, s.uids_derived, p.patient_id, p.patient_name, st.description, "
        "s.synthetic, s.body_part "
        "FROM series s JOIN studies st ON st.study_uid=s.study_uid "
        "JOIN patients p ON p.id=st.patient_pk"
    )

    @staticmethod
    def _series_record(row: Sequence[object]) -> SeriesRecord:
        return SeriesRecord(
            series_uid=str(row[0]),
            study_uid=str(row[1]),
            modality=str(row[2]),
            date=str(row[3]),
            description=str(row[4]),
            number=None if row[5] is None else int(str(row[5])),
            instance_count=int(str(row[6])),
            frame_of_reference_uid=str(row[7]),
            uids_derived=bool(row[8]),
            patient_id=str(row[9]),
            patient_name=str(row[10]),
            study_description=str(row[11]),
            synthetic=bool(row[12]),
            body_part=str(row[13]),
        )

    def tree(self) -> list[PatientNode]:
        """Patients -> studies -> series, sorted by name, date and series number."""
        with self._lock:
            patients = self._con.execute(
                "SELECT id, patient_id, patient_name, birth_date, sex FROM patients "
                "ORDER BY patient_name, patient_id"
            ).fetchall()
            studies = self._con.execute(
                "SELECT study_uid, patient_pk, study_date, description, accession FROM studies "
                "ORDER BY study_date, study_time"
            ).fetchall()
            series = self._con.execute(
                self._SERIES_SQL + " ORDER BY s.number IS NULL, s.number, s.description"
            ).fetchall()
        by_study: dict[str, list[SeriesRecord]] = {}
        for row in series:
            rec = self._series_record(row)
            by_study.setdefault(rec.study_uid, []).append(rec)
        by_patient: dict[int, list[StudyNode]] = {}
        for uid, pk, date, desc, acc in studies:
            node = StudyNode(uid, date, desc, acc, by_study.get(uid, []))
            by_patient.setdefault(pk, []).append(node)
        return [
            PatientNode(pid, name, bd, sex, by_patient.get(pk, []))
            for pk, pid, name, bd, sex in patients
        ]

    def series(self, uid: str) -> SeriesRecord | None:
        with self._lock:
            row = self._con.execute(self._SERIES_SQL + " WHERE s.series_uid=?", (uid,)).fetchone()
        return None if row is None else self._series_record(row)

    def all_series(self) -> list[SeriesRecord]:
        with self._lock:
            rows = self._con.execute(self._SERIES_SQL).fetchall()
        return [self._series_record(r) for r in rows]

    def series_files(self, uid: str) -> list[Path]:
        """The files of a series, in instance-number order (ties by path)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT path FROM instances WHERE series_uid=? "
                "ORDER BY instance_number IS NULL, instance_number, path",
                (uid,),
            ).fetchall()
        return [Path(r[0]) for r in rows]

    def problems(self) -> list[Problem]:
        with self._lock:
            rows = self._con.execute("SELECT path, reason FROM problems ORDER BY path").fetchall()
        return [Problem(str(p), str(r)) for p, r in rows]

    def clear_problems(self) -> None:
        with self._lock:
            self._con.execute("DELETE FROM problems")

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                t: int(self._con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in ("patients", "studies", "series", "instances")
            }

    # -- removal -----------------------------------------------------------------------
    def remove_series(self, uid: str) -> None:
        """Forget a series (its files stay on disk); empty studies/patients go too."""
        with self._lock:
            self._con.execute("BEGIN")
            self._con.execute("DELETE FROM instances WHERE series_uid=?", (uid,))
            self._con.execute("DELETE FROM series WHERE series_uid=?", (uid,))
            self._prune()
            self._con.execute("COMMIT")

    def remove_study(self, uid: str) -> None:
        """Forget a study and its series (files stay on disk)."""
        with self._lock:
            self._con.execute("BEGIN")
            self._con.execute(
                "DELETE FROM instances WHERE series_uid IN "
                "(SELECT series_uid FROM series WHERE study_uid=?)",
                (uid,),
            )
            self._con.execute("DELETE FROM series WHERE study_uid=?", (uid,))
            self._con.execute("DELETE FROM studies WHERE study_uid=?", (uid,))
            self._prune()
            self._con.execute("COMMIT")

    def _prune(self) -> None:
        self._con.execute(
            "DELETE FROM studies WHERE study_uid NOT IN (SELECT DISTINCT study_uid FROM series)"
        )
        self._con.execute(
            "DELETE FROM patients WHERE id NOT IN (SELECT DISTINCT patient_pk FROM studies)"
        )
