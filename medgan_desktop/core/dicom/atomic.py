"""Write an output folder all-or-nothing: into a hidden temp folder, then move it in place."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medgan_desktop.core.progress import Cancelled


class ExportError(OSError):
    """Writing an export failed; nothing was left in the output folder."""


def check_output_dir(out_dir: Path, *, source_dirs: tuple[Path, ...] = ()) -> Path:
    """Validate an output folder before any work starts.

    Args:
        out_dir: where the export should end up; must not exist or be empty.
        source_dirs: folders nothing may be written into (the export's sources).

    Returns:
        The resolved output path.

    Raises:
        ValueError: the output is a source folder or inside one.
        FileExistsError: the output folder exists and is not empty.
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


def _explain(exc: OSError, out: Path) -> str:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "the folder is read-only or access was denied"
    else:
        why = exc.strerror or str(exc)
    return f"could not write the export to {out}: {why}. Nothing was written there."


@contextmanager
def atomic_output_dir(out_dir: Path, *, source_dirs: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Yield a temp folder beside ``out_dir``; on success it becomes ``out_dir``.

    On any error (or cancellation) the temp folder is removed and ``out_dir`` is left as
    it was. OS errors are re-raised as :class:`ExportError` with a plain explanation.
    """
    out = check_output_dir(out_dir, source_dirs=source_dirs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(exc.errno, _explain(exc, out)) from exc
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except (Cancelled, KeyboardInterrupt):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except ExportError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(exc.errno, _explain(exc, out)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
