"""Every write of the product is all-or-nothing, and its failure is one plain sentence.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: a file, written to a temp file in
  the same folder, flushed to disk and renamed over the target.
* :func:`atomic_output_file`: a temp path for writers that want a file name (SimpleITK's
  NIfTI writer, an HTML report); renamed into place only when the block succeeds.
* :func:`atomic_output_dir`: a whole folder (a DICOM series, a PNG sample set, an export),
  built in a hidden temp folder beside the target and moved into place when complete.

On any failure (an ``OSError``, a cancel, Ctrl-C, a bug) the temp file or folder is removed
and the target is left as it was. OS errors come back as :class:`WriteError`, whose message
names the cause (disk full, read-only, permission) in one sentence, without a traceback.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class WriteError(OSError):
    """Writing failed; nothing partial was left at the target. The message says why."""


def why(exc: OSError) -> str:
    """The cause of an OS error in words a user understands."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is read-only or access was denied"
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc)


def write_error(exc: OSError, target: Path | str, what: str = "") -> WriteError:
    """A :class:`WriteError` for ``exc`` while writing ``target`` (``what`` names it)."""
    label = what or str(target)
    return WriteError(
        exc.errno, f"could not write {label}: {why(exc)}. Nothing was written to {target}."
    )


def writable_target(path: Path) -> bool:
    """Whether ``path`` could be created: its nearest existing ancestor is a writable folder."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    return False


def _remove(path: Path) -> None:
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def _removed_on_failure(tmp: Path, target: Path, what: str) -> Iterator[None]:
    """Remove ``tmp`` when the block fails; an OS error comes out as a :class:`WriteError`."""
    try:
        yield
    except OSError as exc:
        _remove(tmp)
        if isinstance(exc, WriteError):
            raise
        raise write_error(exc, target, what) from exc
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then ``os.replace``.

    Raises:
        OSError: the write failed (the target is unchanged, no temp file is left).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        _remove(Path(tmp))
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_output_file(path: Path, what: str = "") -> Iterator[Path]:
    """Yield a temp file name beside ``path``; on success it replaces ``path``.

    The temp name keeps the target's suffixes (``.nii.gz``), so writers that choose the
    format by extension still work. OS errors are raised as :class:`WriteError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path, what) from exc
    tmp = path.parent / f".{secrets.token_hex(4)}.partial-{path.name}"
    with _removed_on_failure(tmp, path, what):
        yield tmp
        if not tmp.is_file():
            raise WriteError(errno.EIO, f"could not write {what or path}: the writer produced no file.")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)


def check_output_dir(out_dir: Path, *, source_dirs: tuple[Path, ...] = ()) -> Path:
    """Validate an output folder before any work starts.

    Args:
        out_dir: where the output should end up; must not exist or be empty.
        source_dirs: folders nothing may be written into (the sources).

    Returns:
        The resolved output path.

    Raises:
        ValueError: the output is a source folder or inside one.
        FileExistsError: the output folder exists and is not empty (or is a file).
    """
    out = Path(out_dir).expanduser().resolve()
    for src in source_dirs:
        s = Path(src).expanduser().resolve()
        if out == s or out.is_relative_to(s):
            raise ValueError(
                f"the output folder {out} is inside the source folder {s}: "
                "choose a folder outside it (nothing is ever written into the source)"
            )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"the output folder {out} already exists and is not empty")
    return out


@contextmanager
def atomic_output_dir(
    out_dir: Path, *, source_dirs: tuple[Path, ...] = (), what: str = ""
) -> Iterator[Path]:
    """Yield a temp folder beside ``out_dir``; on success it becomes ``out_dir``.

    ``out_dir`` must not exist or be empty (see :func:`check_output_dir`). On any error or
    cancellation the temp folder is removed and ``out_dir`` is left as it was; OS errors
    are raised as :class:`WriteError`.
    """
    out = check_output_dir(out_dir, source_dirs=source_dirs)
    label = what or "the output"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise write_error(exc, out, label) from exc
    with _removed_on_failure(tmp, out, label):
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.replace(out)


@contextmanager
def atomic_files_into(out_dir: Path, names: list[str], *, what: str = "") -> Iterator[Path]:
    """Yield a temp folder; on success its files ``names`` are moved into ``out_dir``.

    For a set of files added to a folder that may already hold others (a PNG sample set):
    a name that already exists there is refused before anything is written (nothing is
    ever overwritten), and on failure nothing of the set is left, neither in ``out_dir``
    nor beside it. The moves are renames within one file system, which need no space.

    Raises:
        FileExistsError: a file of the set already exists in ``out_dir``.
        WriteError: writing failed (nothing of the set remains).
    """
    out = Path(out_dir).expanduser()
    label = what or f"the files in {out}"
    clash = [n for n in names if (out / n).exists()]
    if clash:
        raise FileExistsError(
            f"{out} already holds {clash[0]}" + (f" and {len(clash) - 1} more of the files"
                                                 if len(clash) > 1 else "")
            + ": nothing is overwritten; choose another folder or name"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise write_error(exc, out, label) from exc
    moved: list[Path] = []
    try:
        yield tmp
        missing = [n for n in names if not (tmp / n).is_file()]
        if missing:
            raise WriteError(errno.EIO, f"could not write {label}: {missing[0]} was not produced.")
        for n in names:
            (tmp / n).replace(out / n)
            moved.append(out / n)
        tmp.rmdir()
    except BaseException as exc:
        for p in moved:
            _remove(p)
        _remove(tmp)
        if created:
            with suppress(OSError):
                out.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise write_error(exc, out, label) from exc
        raise
