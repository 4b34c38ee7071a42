"""Blinded reader-study sessions stored in SQLite.

A session is a pool of real and synthetic images copied into the database (so a
session file can travel to an offline workstation). Each reader sees every item
once, in an order randomised from the session seed and the reader's name; items
reach the UI as :class:`ReviewItem` with an opaque id and the pixels only: no file
name, header or truth. Answers (real/synthetic, confidence, Likert quality,
comment) are stored per reader; a reader can stop and resume at any time.

Items are 2D images or whole series. With ``series=True`` (the default) a DICOM
series (several slices sharing a SeriesInstanceUID, or one multi-frame object) and a
NIfTI/MHA/NRRD volume each become one *series item*, stored as a stack of slices in
the plane it was acquired in, in radiological display order, with its spacing; every
stack is put in that same canonical orientation so a file format's axis convention
cannot tell the reader where an item came from. Items are read one at a time while a
session is created and loaded one at a time while reading (memory holds one item).

Sessions export to a single zip (``session.json`` + ``items/<id>.npy``) and import
on another workstation; importing a session that already exists merges the answers
(the later answer wins for the same reader and item).
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import sqlite3
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.imaging.orientation import ViewAxis, axis_permutation, slice_mapping
from medgan_desktop.core.metrics.images import RASTER_SUFFIXES, list_images, load_image
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import PixelArray
from medgan_desktop.core.volume import Volume

SCHEMA_VERSION = 2  # 2: items.meta (JSON: kind, spacing, plane, hu)
#: Export format written when every item is 2D (readable by older versions); series need 2.
EXPORT_FORMAT_2D = 1
EXPORT_FORMAT = 2
#: Largest stored item (SQLite refuses blobs above about 1 GB).
MAX_ITEM_BYTES = 900_000_000
#: The window every item of an all-CT session opens with (soft tissue, lo/hi in HU), so
#: that a per-item automatic window cannot hint at where an item came from.
HU_WINDOW = (-160.0, 240.0)

_VOLUME_NAME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
# direction (columns i, j, k in LPS) of a stack stored in display order for each plane
_PLANE_DIRECTIONS: dict[ViewAxis, tuple[tuple[float, float, float], ...]] = {
    ViewAxis.AXIAL: ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    ViewAxis.CORONAL: ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    ViewAxis.SAGITTAL: ((0, 1, 0), (0, 0, -1), (1, 0, 0)),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL, seed INTEGER NOT NULL,
    confidence_max INTEGER NOT NULL, confidence_min INTEGER NOT NULL, notes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL, truth TEXT NOT NULL, source TEXT NOT NULL,
    image BLOB NOT NULL, win_lo REAL NOT NULL, win_hi REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, item_id)
);
CREATE TABLE IF NOT EXISTS readers (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    reader TEXT NOT NULL, item_order TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0,
    started TEXT NOT NULL, PRIMARY KEY (session_id, reader)
);
CREATE TABLE IF NOT EXISTS answers (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL, reader TEXT NOT NULL, answer TEXT NOT NULL,
    confidence INTEGER NOT NULL, quality INTEGER, comment TEXT NOT NULL,
    answered_at TEXT NOT NULL, PRIMARY KEY (session_id, item_id, reader)
);
"""


class Truth(StrEnum):
    REAL = "real"
    SYNTHETIC = "synthetic"


Answer = Truth


class ReviewError(Exception):
    """A user-facing reader-study error (unknown session, invalid answer, bad file)."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    name: str
    created: str
    seed: int
    confidence_min: int
    confidence_max: int
    n_items: int
    n_real: int
    n_synthetic: int
    readers: tuple[str, ...]


@dataclass(frozen=True)
class ReviewItem:
    """What a reader sees: an opaque id, the pixels and how to show them. Nothing else.

    Args:
        item_id: opaque id.
        image: ``(rows, cols)`` for a 2D image; ``(slices, rows, cols)`` for a series, in
            display order for ``plane`` (rows top to bottom, radiological convention,
            slice index increasing towards patient left, posterior or superior).
        window: default window ``(lo, hi)``.
        position: 0-based index in this reader's order.
        total: number of items in this reader's order.
        spacing: ``(column, row, slice)`` spacing in mm (1 mm for 2D images).
        plane: the plane a series is shown in (the plane it was acquired in).
        units: ``"HU"`` when every item of the session is CT in HU (CT window presets),
            else ``""``; decided per session so the viewer's menus look the same for
            every item.
    """

    item_id: str
    image: NDArray[np.float32]
    window: tuple[float, float]
    position: int
    total: int
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    plane: str = ViewAxis.AXIAL.value
    units: str = ""

    @property
    def is_series(self) -> bool:
        """True for a stack of slices (a volume), False for a 2D image."""
        return self.image.ndim == 3

    @property
    def n_slices(self) -> int:
        return int(self.image.shape[0]) if self.image.ndim == 3 else 1

    def to_volume(self) -> Volume:
        """The pixels as an anonymous volume whose ``plane`` view shows them as stored.

        No description, no source, not flagged synthetic: nothing but pixels and grid.
        """
        arr = self.image if self.image.ndim == 3 else self.image[None]
        plane = ViewAxis(self.plane)
        direction = np.array(_PLANE_DIRECTIONS[plane], dtype=np.float64).T
        hu = self.units == "HU"
        return Volume(array=arr, spacing=self.spacing, direction=direction,
                      modality="CT" if hu else "OT", units="HU" if hu else "", description="")


@dataclass(frozen=True)
class Rating:
    """One stored answer joined with the item's truth (for scoring, never for the UI)."""

    item_id: str
    reader: str
    truth: Truth
    answer: Truth
    confidence: int
    quality: int | None
    comment: str
    source: str
    answered_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _encode(img: PixelArray) -> bytes:
    """``.npy`` bytes; int16 when that is lossless (HU, 8/12-bit pixels), else float32."""
    a = np.asarray(img, dtype=np.float32)
    if a.size and np.isfinite(a).all() and a.min() >= -32768 and a.max() <= 32767 \
            and np.array_equal(np.rint(a), a):
        a = a.astype(np.int16)
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _decode(blob: bytes) -> NDArray[np.float32]:
    arr = np.load(io.BytesIO(blob), allow_pickle=False)
    return np.asarray(arr, dtype=np.float32)


def read_review_image(path: Path) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """Pixels for display in their own units (HU for CT DICOM) and a default window."""
    suf = path.suffix.lower()
    if suf in (".dcm", ".dicom", ""):
        try:
            import pydicom

            ds = pydicom.dcmread(str(path))
            arr = np.asarray(ds.pixel_array, dtype=np.float32)
            if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) > 1:
                arr = arr[..., :3].mean(axis=-1)
            elif arr.ndim == 3:
                arr = arr[arr.shape[0] // 2]
            arr = arr * float(getattr(ds, "RescaleSlope", 1) or 1) + float(
                getattr(ds, "RescaleIntercept", 0) or 0)
            if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
                arr = arr.max() + arr.min() - arr
            lo, hi = np.percentile(arr, [0.5, 99.5])
            return arr.astype(np.float32), (float(lo), float(max(hi, lo + 1)))
        except Exception as exc:  # undecodable DICOM: a clear reason
            raise ReviewError(f"cannot read {path.name}: {exc}") from exc
    name = path.name.lower()
    if name.endswith(_VOLUME_NAME_SUFFIXES):
        try:  # keep the volume's own units (HU for CT) so window/level means something
            import SimpleITK as sitk

            arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)
        except Exception as exc:  # unreadable volume: a clear reason
            raise ReviewError(f"cannot read {path.name}: {exc}") from exc
        if arr.ndim == 4:
            arr = arr.mean(axis=-1)
        if arr.ndim == 3:
            arr = arr[arr.shape[0] // 2]
        lo, hi = np.percentile(arr, [0.5, 99.5])
        return arr, (float(lo), float(max(hi, lo + 1)))
    try:
        img = load_image(path) * 255.0
    except ValueError as exc:
        raise ReviewError(str(exc)) from exc
    return img.astype(np.float32), (0.0, 255.0)


def _window(arr: PixelArray) -> tuple[float, float]:
    """The 0.5..99.5 percentile window (on a subsample of large stacks)."""
    flat = arr.reshape(-1)
    flat = flat[:: max(1, flat.size // 2_000_000)]
    lo, hi = (float(v) for v in np.percentile(flat, [0.5, 99.5]))
    return lo, max(hi, lo + 1.0)


def _looks_hu(arr: PixelArray) -> bool:
    """CT in Hounsfield units, for files that do not say so: air (about -1000) or the
    scanner's padding outside the field of view (-1024 to -3024) among the darkest voxels."""
    flat = arr.reshape(-1)
    flat = flat[:: max(1, flat.size // 2_000_000)]
    return bool(-3100.0 <= float(np.percentile(flat, 0.5)) <= -700.0)


def display_stack(volume: Volume) -> tuple[NDArray[np.float32], tuple[float, float, float], ViewAxis]:
    """A volume as slices in its acquisition plane, in radiological display order.

    The plane is the one the volume's k axis is normal to; slices are ordered towards
    patient left (sagittal), posterior (coronal) or superior (axial), whatever the
    file's own axis order and signs, so DICOM and NIfTI volumes come out alike.

    Returns:
        ``(stack, spacing, plane)``: ``stack`` is ``(slices, rows, cols)`` float32 (a
        copy), ``spacing`` is ``(column, row, slice)`` in mm.
    """
    perm, signs = axis_permutation(volume.direction)
    plane = {2: ViewAxis.AXIAL, 1: ViewAxis.CORONAL, 0: ViewAxis.SAGITTAL}[perm[2]]
    m = slice_mapping(volume.shape, volume.spacing, volume.direction, plane)
    arr = np.transpose(volume.array, (m.slice_axis, m.row_axis, m.col_axis))
    if m.flip_rows:
        arr = arr[:, ::-1, :]
    if m.flip_cols:
        arr = arr[:, :, ::-1]
    if signs[2] < 0:  # k runs towards R, A or I: reverse so the index runs to L, P, S
        arr = arr[::-1]
    stack = np.ascontiguousarray(arr, dtype=np.float32)
    return stack, (m.col_spacing, m.row_spacing, m.slice_spacing), plane


@dataclass(frozen=True)
class _Source:
    """One item to be: a 2D image file, a volume file or the files of one DICOM series."""

    kind: str  # "image" | "volume" | "dicom_series"
    files: tuple[Path, ...]
    series_uid: str = ""

    @property
    def label(self) -> str:
        """What the organiser sees in ``source`` (never the reader)."""
        if len(self.files) == 1:
            return str(self.files[0])
        parents = {f.parent for f in self.files}
        where = str(parents.pop()) if len(parents) == 1 else str(self.files[0])
        return f"{where} (series, {len(self.files)} files)"


def _pool_sources(files: Sequence[Path], series: bool) -> list[_Source]:
    """Group a pool's files into items (see the module docs)."""
    if not series:
        return [_Source("image", (f,)) for f in files]
    from medgan_desktop.core.dicom.reader import DicomReadError, read_header

    out: list[_Source] = []
    groups: dict[str, list[tuple[Path, Any]]] = {}
    for f in files:
        name = f.name.lower()
        if name.endswith(_VOLUME_NAME_SUFFIXES):
            out.append(_Source("volume", (f,)))
            continue
        if f.suffix.lower() in RASTER_SUFFIXES:
            out.append(_Source("image", (f,)))
            continue
        try:
            h = read_header(f)
        except (DicomReadError, OSError):
            out.append(_Source("image", (f,)))  # read later, failing with a clear reason
            continue
        groups.setdefault(h.series_instance_uid, []).append((f, h))
    for uid, members in groups.items():
        stackable = all(h.image_position is not None for _f, h in members)
        if (len(members) > 1 and stackable) or (len(members) == 1 and members[0][1].frames > 1):
            out.append(_Source("dicom_series", tuple(f for f, _h in members), uid))
        else:  # projection images (CR/DX) sharing a series, or single slices
            out.extend(_Source("image", (f,)) for f, _h in members)
    return sorted(out, key=lambda s: s.label)


def _read_source(src: _Source) -> tuple[NDArray[np.float32], tuple[float, float], dict[str, Any]]:
    """Pixels, default window and item meta of one source."""
    if src.kind == "image":
        img, win = read_review_image(src.files[0])
        hu = _image_is_hu(src.files[0], img)
        return img, win, {"kind": "image", "hu": hu}
    try:
        if src.kind == "volume":
            from medgan_desktop.core.io import read_volume_file

            vol = read_volume_file(src.files[0])
        else:
            from medgan_desktop.core.dicom.series import load_series

            vol = load_series(list(src.files), series_uid=src.series_uid or None)
    except Exception as exc:  # any reader failure: one clear reason for this item
        raise ReviewError(f"cannot read {src.files[0].name}: {exc}") from exc
    n_bytes = int(np.prod(vol.shape)) * 4
    if n_bytes > MAX_ITEM_BYTES:
        raise ReviewError(f"{src.label}: {vol.shape} is too large for a review item "
                          f"({n_bytes / 1e9:.1f} GB as float32); crop it first")
    stack, spacing, plane = display_stack(vol)
    hu = vol.modality.upper() == "CT" or vol.units.upper() == "HU" or _looks_hu(stack)
    del vol
    meta = {"kind": "series", "spacing": list(spacing), "plane": plane.value, "hu": hu}
    if stack.shape[0] == 1:  # a one-slice volume is a 2D image
        return stack[0], _window(stack), {**meta, "kind": "image"}
    return stack, _window(stack), meta


def _image_is_hu(path: Path, img: PixelArray) -> bool:
    suf = path.suffix.lower()
    if path.name.lower().endswith(_VOLUME_NAME_SUFFIXES):
        from medgan_desktop.core.io import guess_modality

        return guess_modality(path.name) == "CT" or _looks_hu(img)
    if suf in RASTER_SUFFIXES:
        return False
    try:
        from medgan_desktop.core.dicom.reader import read_header

        return read_header(path).modality.upper() == "CT"
    except Exception:  # not readable as DICOM here: not HU
        return False


class ReviewStore:
    """The reader-study database (``AppPaths.data_dir / "review.sqlite"`` by default)."""

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            from medgan_desktop.core.config import AppPaths

            paths = AppPaths.default().ensure()
            path = paths.data_dir / "review.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise ReviewError(f"{self.path} was written by a newer version (schema {row[0]})")
        with self._tx() as db:
            cols = {r[1] for r in db.execute("PRAGMA table_info(items)")}
            if "meta" not in cols:  # schema 1: items were 2D images only
                db.execute("ALTER TABLE items ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
            self._db.commit()
        except Exception:
            self._db.rollback()
            raise

    # -- sessions -------------------------------------------------------------------
    def create_session(
        self,
        name: str,
        real: Sequence[Path | str] | Path | str,
        synthetic: Sequence[Path | str] | Path | str,
        seed: int | None = None,
        confidence_scale: tuple[int, int] = (1, 5),
        limit_per_pool: int | None = None,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
        series: bool = True,
    ) -> str:
        """Copy two pools of images (files or folders) into a new session; returns its id.

        Args:
            name: a label for the study.
            real: real images or series (files and/or folders).
            synthetic: synthetic images or series (files and/or folders).
            seed: seed for the per-reader orders (random when None).
            confidence_scale: ``(1, 5)`` or ``(0, 100)``.
            limit_per_pool: take at most this many items from each pool.
            progress: progress callback.
            cancel: cancel token checked between items.
            series: a DICOM series or a volume file is one scrollable item (default);
                False makes every file one 2D image (a volume's middle slice).

        Raises:
            ReviewError: when the name is empty or already used by another session, a
                pool is empty or an image cannot be read.
        """
        name = name.strip()
        if not name:
            raise ReviewError("a session name is required")
        if self._ids_named(name):
            raise ReviewError(f"a review session named {name!r} already exists; "
                              "choose another name")
        pools: dict[Truth, list[_Source]] = {}
        for truth, spec in ((Truth.REAL, real), (Truth.SYNTHETIC, synthetic)):
            specs = [spec] if isinstance(spec, str | Path) else list(spec)
            files: list[Path] = []
            for s in specs:
                try:
                    files.extend(list_images(s))
                except FileNotFoundError as exc:
                    raise ReviewError(str(exc)) from exc
            sources = _pool_sources(files, series)
            if limit_per_pool is not None:
                sources = sources[:limit_per_pool]
            if not sources:
                raise ReviewError(f"the {truth} pool holds no images")
            pools[truth] = sources
        sid = secrets.token_hex(8)
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        total = sum(len(v) for v in pools.values())
        done = 0
        with self._tx() as db:
            db.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?)",
                       (sid, name, _now(), seed, confidence_scale[1], confidence_scale[0], ""))
            for truth, sources in pools.items():
                for src in sources:  # one item in memory at a time
                    if cancel is not None:
                        cancel.check()
                    img, (lo, hi), meta = _read_source(src)
                    db.execute(
                        "INSERT INTO items (session_id, item_id, truth, source, image, win_lo, "
                        "win_hi, meta) VALUES (?,?,?,?,?,?,?,?)",
                        (sid, secrets.token_hex(6), str(truth), src.label, _encode(img), lo, hi,
                         json.dumps(meta)))
                    del img
                    done += 1
                    progress(Progress(done, total, f"adding images {done}/{total}"))
        return sid

    def sessions(self) -> list[SessionInfo]:
        out = []
        for (sid,) in self._db.execute("SELECT id FROM sessions ORDER BY created, id").fetchall():
            out.append(self.session(sid))
        return out

    def _ids_named(self, name: str) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM sessions WHERE name=? ORDER BY created, id", (name,))]

    def resolve_session(self, ref: str) -> str:
        """The id of the session whose id is ``ref``, or else whose unique name is ``ref``.

        Raises:
            ReviewError: when no session matches, or several sessions carry that name
                (possible after importing sessions from other workstations).
        """
        if self._db.execute("SELECT 1 FROM sessions WHERE id=?", (ref,)).fetchone():
            return ref
        ids = self._ids_named(ref) or self._ids_named(ref.strip())
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise ReviewError(f"{len(ids)} review sessions are named {ref!r} "
                              f"(ids {', '.join(ids)}); give the id instead")
        raise ReviewError(f"no review session with the id or name {ref!r}")

    def session(self, session_id: str) -> SessionInfo:
        row = self._db.execute(
            "SELECT id, name, created, seed, confidence_min, confidence_max FROM sessions "
            "WHERE id=?", (session_id,)).fetchone()
        if row is None:
            raise ReviewError(f"no review session {session_id!r}")
        counts = dict(self._db.execute(
            "SELECT truth, COUNT(*) FROM items WHERE session_id=? GROUP BY truth",
            (session_id,)).fetchall())
        readers = tuple(r for (r,) in self._db.execute(
            "SELECT reader FROM readers WHERE session_id=? ORDER BY reader", (session_id,)))
        n_real, n_syn = int(counts.get("real", 0)), int(counts.get("synthetic", 0))
        return SessionInfo(row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]),
                           n_real + n_syn, n_real, n_syn, readers)

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    # -- reading ----------------------------------------------------------------------
    def _order(self, session_id: str, reader: str) -> list[str]:
        row = self._db.execute("SELECT item_order FROM readers WHERE session_id=? AND reader=?",
                               (session_id, reader)).fetchone()
        if row is not None:
            order: list[str] = json.loads(row[0])
            # items merged in later (import) go to the end, in a seeded order
            known = set(order)
            extra = sorted(i for (i,) in self._db.execute(
                "SELECT item_id FROM items WHERE session_id=?", (session_id,)) if i not in known)
            return order + extra
        info = self.session(session_id)
        ids = sorted(i for (i,) in self._db.execute(
            "SELECT item_id FROM items WHERE session_id=?", (session_id,)))
        digest = hashlib.sha256(f"{info.seed}:{reader}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        order = [ids[i] for i in rng.permutation(len(ids))]
        with self._tx() as db:
            db.execute("INSERT INTO readers VALUES (?,?,?,0,?)",
                       (session_id, reader, json.dumps(order), _now()))
        return order

    def start(self, session_id: str, reader: str) -> tuple[int, int]:
        """Register (or resume) a reader; returns ``(answered, total)``."""
        reader = reader.strip()
        if not reader:
            raise ReviewError("a reader name is required")
        self.session(session_id)
        self._order(session_id, reader)
        self.set_paused(session_id, reader, False)
        return self.progress(session_id, reader)

    def order(self, session_id: str, reader: str) -> list[str]:
        """The reader's item order (opaque ids)."""
        return self._order(session_id, reader)

    def _answered(self, session_id: str, reader: str) -> set[str]:
        return {i for (i,) in self._db.execute(
            "SELECT item_id FROM answers WHERE session_id=? AND reader=?", (session_id, reader))}

    def progress(self, session_id: str, reader: str) -> tuple[int, int]:
        order = self._order(session_id, reader)
        return len(self._answered(session_id, reader) & set(order)), len(order)

    def next_item(self, session_id: str, reader: str) -> ReviewItem | None:
        """The reader's first unanswered item in their order, or None when finished."""
        order = self._order(session_id, reader)
        answered = self._answered(session_id, reader)
        for pos, item_id in enumerate(order):
            if item_id not in answered:
                return self.item(session_id, item_id, pos, len(order))
        return None

    def all_hu(self, session_id: str) -> bool:
        """True when every item of the session is CT in HU (the viewer offers CT presets)."""
        metas = [json.loads(m) for (m,) in self._db.execute(
            "SELECT meta FROM items WHERE session_id=?", (session_id,))]
        return bool(metas) and all(bool(m.get("hu")) for m in metas)

    def item(self, session_id: str, item_id: str, position: int = 0, total: int = 0) -> ReviewItem:
        """Load one item (only this one: a series is decoded when it is asked for)."""
        row = self._db.execute(
            "SELECT image, win_lo, win_hi, meta FROM items WHERE session_id=? AND item_id=?",
            (session_id, item_id)).fetchone()
        if row is None:
            raise ReviewError(f"no item {item_id!r} in session {session_id!r}")
        meta = json.loads(row[3] or "{}")
        hu = self.all_hu(session_id)
        window = HU_WINDOW if hu else (float(row[1]), float(row[2]))
        image = _decode(row[0])
        spacing = tuple(float(v) for v in meta.get("spacing", (1.0, 1.0, 1.0)))
        if image.ndim == 2:
            spacing = (1.0, 1.0, 1.0)
        plane = str(meta.get("plane", ViewAxis.AXIAL.value))
        return ReviewItem(item_id, image, window, position, total,
                          (spacing[0], spacing[1], spacing[2]), ViewAxis(plane).value,
                          "HU" if hu else "")

    def answer(
        self,
        session_id: str,
        reader: str,
        item_id: str,
        answer: Truth | str,
        confidence: int,
        quality: int | None = None,
        comment: str = "",
    ) -> None:
        """Store (or replace) a reader's answer for one item.

        Raises:
            ReviewError: for an unknown item or values outside the session's scales.
        """
        info = self.session(session_id)
        try:
            ans = Truth(answer)
        except ValueError as exc:
            raise ReviewError(f"answer must be 'real' or 'synthetic', not {answer!r}") from exc
        if not info.confidence_min <= int(confidence) <= info.confidence_max:
            raise ReviewError(f"confidence must be {info.confidence_min}..{info.confidence_max}")
        if quality is not None and not 1 <= int(quality) <= 5:
            raise ReviewError("quality must be 1..5 (Likert)")
        if self._db.execute("SELECT 1 FROM items WHERE session_id=? AND item_id=?",
                            (session_id, item_id)).fetchone() is None:
            raise ReviewError(f"no item {item_id!r} in session {session_id!r}")
        self._order(session_id, reader)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?)",
                       (session_id, item_id, reader, str(ans), int(confidence),
                        None if quality is None else int(quality), comment, _now()))

    def set_paused(self, session_id: str, reader: str, paused: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE readers SET paused=? WHERE session_id=? AND reader=?",
                       (int(paused), session_id, reader))

    def is_paused(self, session_id: str, reader: str) -> bool:
        row = self._db.execute("SELECT paused FROM readers WHERE session_id=? AND reader=?",
                               (session_id, reader)).fetchone()
        return bool(row and row[0])

    def ratings(self, session_id: str) -> list[Rating]:
        """Every answer with the item's truth (for scoring and CSV export)."""
        self.session(session_id)
        rows = self._db.execute(
            "SELECT a.item_id, a.reader, i.truth, a.answer, a.confidence, a.quality, a.comment, "
            "i.source, a.answered_at FROM answers a JOIN items i "
            "ON a.session_id=i.session_id AND a.item_id=i.item_id WHERE a.session_id=? "
            "ORDER BY a.reader, a.answered_at, a.item_id", (session_id,)).fetchall()
        return [Rating(r[0], r[1], Truth(r[2]), Truth(r[3]), int(r[4]),
                       None if r[5] is None else int(r[5]), r[6], r[7], r[8]) for r in rows]

    def truths(self, session_id: str) -> dict[str, tuple[Truth, str]]:
        """item id -> (truth, source) for every item."""
        return {r[0]: (Truth(r[1]), r[2]) for r in self._db.execute(
            "SELECT item_id, truth, source FROM items WHERE session_id=?", (session_id,))}

    # -- exchange ------------------------------------------------------------------------
    def export_session(self, session_id: str, path: Path | str, include_answers: bool = True) -> Path:
        """Write one zip with the session, its images and (optionally) its answers."""
        info = self.session(session_id)
        out = Path(path)
        items = self._db.execute(
            "SELECT item_id, truth, source, image, win_lo, win_hi, meta FROM items "
            "WHERE session_id=? ORDER BY item_id", (session_id,)).fetchall()
        metas = [json.loads(r[6] or "{}") for r in items]
        has_series = any(m.get("kind") == "series" for m in metas)
        readers = self._db.execute(
            "SELECT reader, item_order, paused, started FROM readers WHERE session_id=?",
            (session_id,)).fetchall()
        answers = self._db.execute(
            "SELECT item_id, reader, answer, confidence, quality, comment, answered_at "
            "FROM answers WHERE session_id=?", (session_id,)).fetchall() if include_answers else []
        doc = {
            "format": EXPORT_FORMAT if has_series else EXPORT_FORMAT_2D,
            "kind": "medgan-review-session",
            "session": {"id": info.id, "name": info.name, "created": info.created,
                        "seed": info.seed, "confidence_min": info.confidence_min,
                        "confidence_max": info.confidence_max},
            "items": [{"item_id": r[0], "truth": r[1], "source": Path(r[2]).name,
                       "window": [r[4], r[5]], "meta": m} for r, m in zip(items, metas, strict=True)],
            "readers": [{"reader": r[0], "order": json.loads(r[1]), "paused": bool(r[2]),
                         "started": r[3]} for r in readers],
            "answers": [dict(zip(("item_id", "reader", "answer", "confidence", "quality",
                                  "comment", "answered_at"), r, strict=True)) for r in answers],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("session.json", json.dumps(doc, indent=1))
            for r in items:
                zf.writestr(f"items/{r[0]}.npy", r[3])
        return out

    def import_session(self, path: Path | str) -> str:
        """Import a session zip; merges answers into an existing copy. Returns the id.

        Raises:
            ReviewError: when the file is not a session export.
        """
        try:
            zf = zipfile.ZipFile(Path(path))
        except (OSError, zipfile.BadZipFile) as exc:
            raise ReviewError(f"{Path(path).name} is not a review session file: {exc}") from exc
        with zf:
            try:
                doc = json.loads(zf.read("session.json"))
            except (KeyError, ValueError) as exc:
                raise ReviewError(f"{Path(path).name} has no valid session.json") from exc
            if doc.get("kind") != "medgan-review-session" or int(doc.get("format", 0)) > EXPORT_FORMAT:
                raise ReviewError(f"{Path(path).name} is not a supported review session file")
            s = doc["session"]
            sid = str(s["id"])
            with self._tx() as db:
                db.execute("INSERT OR IGNORE INTO sessions VALUES (?,?,?,?,?,?,?)",
                           (sid, s["name"], s["created"], int(s["seed"]),
                            int(s["confidence_max"]), int(s["confidence_min"]), ""))
                for it in doc["items"]:
                    blob = zf.read(f"items/{it['item_id']}.npy")
                    if _decode(blob).ndim not in (2, 3):  # validate: plain 2D/3D arrays only
                        raise ReviewError(f"{Path(path).name}: item {it['item_id']} is not an image")
                    meta = it.get("meta") or {}
                    if not isinstance(meta, dict):
                        raise ReviewError(f"{Path(path).name}: bad meta for item {it['item_id']}")
                    db.execute(
                        "INSERT OR IGNORE INTO items (session_id, item_id, truth, source, image, "
                        "win_lo, win_hi, meta) VALUES (?,?,?,?,?,?,?,?)",
                        (sid, it["item_id"], Truth(it["truth"]).value, it["source"], blob,
                         float(it["window"][0]), float(it["window"][1]), json.dumps(meta)))
                for r in doc.get("readers", []):
                    db.execute("INSERT OR IGNORE INTO readers VALUES (?,?,?,?,?)",
                               (sid, r["reader"], json.dumps(r["order"]), int(r["paused"]),
                                r["started"]))
                for a in doc.get("answers", []):
                    old = db.execute("SELECT answered_at FROM answers WHERE session_id=? AND "
                                     "item_id=? AND reader=?",
                                     (sid, a["item_id"], a["reader"])).fetchone()
                    if old is not None and old[0] >= a["answered_at"]:
                        continue
                    db.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?)",
                               (sid, a["item_id"], a["reader"], Truth(a["answer"]).value,
                                int(a["confidence"]), a["quality"], a["comment"],
                                a["answered_at"]))
        return sid
