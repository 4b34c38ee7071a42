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

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.imaging.orientation import ViewAxis
from medgan_desktop.core.metrics.images import list_images
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.review.fairness import (
    GREY_DEPTH,
    HU_DEPTH,
    Equalisation,
    Fairness,
    display_size,
    native_side,
    pixel_statistics,
    separability,
    warnings_for,
)
from medgan_desktop.core.review.fairness import equalise as equalise_item
from medgan_desktop.core.review.sources import (
    MAX_ITEM_BYTES,
    ReviewError,
    Source,
    display_stack,
    pool_sources,
    read_review_image,
    read_source,
    window_of,
)
from medgan_desktop.core.types import PixelArray
from medgan_desktop.core.volume import Volume

__all__ = [
    "MAX_ITEM_BYTES", "Rating", "ReviewError", "ReviewItem", "ReviewStore", "SessionInfo",
    "Source", "Truth", "display_stack", "read_review_image",
]

SCHEMA_VERSION = 2  # 2: items.meta (JSON: kind, spacing, plane, hu)
#: Export format written when every item is 2D (readable by older versions); series need 2.
EXPORT_FORMAT_2D = 1
EXPORT_FORMAT = 2
#: The window every item of an all-CT session opens with (soft tissue, lo/hi in HU), so
#: that a per-item automatic window cannot hint at where an item came from.
HU_WINDOW = (-160.0, 240.0)

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
    fairness: Fairness | None = None


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
        equalise: bool = True,
        display_size: int = 0,
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
            equalise: show every item through one pipeline (same matrix, interpolation,
                bit depth and windowing; see :mod:`~medgan_desktop.core.review.fairness`).
            display_size: the display matrix side in px (0: the smaller pool's median).

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
        pools: dict[Truth, list[Source]] = {}
        for truth, spec in ((Truth.REAL, real), (Truth.SYNTHETIC, synthetic)):
            specs = [spec] if isinstance(spec, str | Path) else list(spec)
            files: list[Path] = []
            for s in specs:
                try:
                    files.extend(list_images(s))
                except FileNotFoundError as exc:
                    raise ReviewError(str(exc)) from exc
            sources = pool_sources(files, series)
            if limit_per_pool is not None:
                sources = sources[:limit_per_pool]
            if not sources:
                raise ReviewError(f"the {truth} pool holds no images")
            pools[truth] = sources
        sid = secrets.token_hex(8)
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        total = sum(len(v) for v in pools.values())
        done = 0
        stored: dict[Truth, list[tuple[str, int]]] = {Truth.REAL: [], Truth.SYNTHETIC: []}
        with self._tx() as db:
            db.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?)",
                       (sid, name, _now(), seed, confidence_scale[1], confidence_scale[0], ""))
            for truth, sources in pools.items():
                for src in sources:  # one item in memory at a time
                    if cancel is not None:
                        cancel.check()
                    img, (lo, hi), meta = read_source(src)
                    item_id = secrets.token_hex(6)
                    db.execute(
                        "INSERT INTO items (session_id, item_id, truth, source, image, win_lo, "
                        "win_hi, meta) VALUES (?,?,?,?,?,?,?,?)",
                        (sid, item_id, str(truth), src.label, _encode(img), lo, hi,
                         json.dumps(meta)))
                    stored[truth].append((item_id, native_side(img)))
                    del img
                    done += 1
                    progress(Progress(done, total, f"adding images {done}/{total}"))
            fair = self._make_fair(db, sid, stored, equalise, display_size, progress, cancel)
            db.execute("UPDATE sessions SET notes=? WHERE id=?",
                       (json.dumps({"fairness": fair.to_dict()}), sid))
        return sid

    def _make_fair(self, db: sqlite3.Connection, sid: str,
                   stored: dict[Truth, list[tuple[str, int]]], equalise: bool, size: int,
                   progress: ProgressCallback, cancel: CancelToken | None) -> Fairness:
        """Second pass over the stored items (one in memory at a time): put each through
        the session's display pipeline, and check what trivial statistics still tell."""
        eq: Equalisation | None = None
        if equalise:
            side = display_size([n for _i, n in stored[Truth.REAL]],
                                [n for _i, n in stored[Truth.SYNTHETIC]], size)
            eq = Equalisation(side, int(np.median([n for _i, n in stored[Truth.REAL]])),
                              int(np.median([n for _i, n in stored[Truth.SYNTHETIC]])),
                              bit_depth=HU_DEPTH if self.all_hu(sid) else GREY_DEPTH,
                              chosen_by="chosen for this study" if size else
                              "automatic: the smaller pool's median size")
        hu = self.all_hu(sid)
        stats: dict[Truth, list[dict[str, float]]] = {Truth.REAL: [], Truth.SYNTHETIC: []}
        total = sum(len(v) for v in stored.values())
        done = 0
        for truth, items in stored.items():
            for item_id, _side in items:
                if cancel is not None:
                    cancel.check()
                blob, meta_text = db.execute(
                    "SELECT image, meta FROM items WHERE session_id=? AND item_id=?",
                    (sid, item_id)).fetchone()
                img = _decode(blob)
                if eq is not None:
                    img, scale = equalise_item(img, eq.display_size, hu)
                    meta = json.loads(meta_text or "{}")
                    if "spacing" in meta:
                        sp = list(meta["spacing"])
                        meta["spacing"] = [sp[0] * scale, sp[1] * scale, sp[2]]
                    lo, hi = window_of(img) if hu else (0.0, 255.0)
                    db.execute("UPDATE items SET image=?, win_lo=?, win_hi=?, meta=? "
                               "WHERE session_id=? AND item_id=?",
                               (_encode(img), lo, hi, json.dumps(meta), sid, item_id))
                stats[truth].append(pixel_statistics(img))
                del img
                done += 1
                progress(Progress(done, total, f"preparing images for display {done}/{total}"))
        checks, note = separability(stats[Truth.REAL], stats[Truth.SYNTHETIC])
        return Fairness(eq, checks, note, warnings_for(checks))

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
                           n_real + n_syn, n_real, n_syn, readers, self._fairness(session_id))

    def _fairness(self, session_id: str) -> Fairness | None:
        row = self._db.execute("SELECT notes FROM sessions WHERE id=?", (session_id,)).fetchone()
        try:
            notes = json.loads(row[0]) if row and row[0] else {}
        except ValueError:  # free-text notes of an older session
            return None
        fair = notes.get("fairness") if isinstance(notes, dict) else None
        return Fairness.from_dict(fair) if isinstance(fair, dict) else None

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
                        "confidence_max": info.confidence_max,
                        "fairness": info.fairness.to_dict() if info.fairness else None},
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
                fair = s.get("fairness")
                notes = json.dumps({"fairness": fair}) if isinstance(fair, dict) else ""
                db.execute("INSERT OR IGNORE INTO sessions VALUES (?,?,?,?,?,?,?)",
                           (sid, s["name"], s["created"], int(s["seed"]),
                            int(s["confidence_max"]), int(s["confidence_min"]), notes))
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
