"""All-or-nothing writes: on success the target appears, on failure nothing is left."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from medgan_desktop.core.atomic import (
    WriteError,
    atomic_files_into,
    atomic_output_dir,
    atomic_output_file,
    atomic_write_text,
)


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_text_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert _left(tmp_path) == ["a.txt"]


def test_output_file_keeps_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "v.nii.gz"
    with atomic_output_file(target) as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    with pytest.raises(RuntimeError), atomic_output_file(tmp_path / "w.nii.gz") as tmp:
        tmp.write_bytes(b"y")
        raise RuntimeError("bug")
    assert _left(tmp_path) == ["v.nii.gz"]


def test_output_file_turns_os_errors_into_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="the disk is full") as info, \
            atomic_output_file(tmp_path / "f.png", "the image") as tmp:
        tmp.write_bytes(b"z")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "could not write the image" in str(info.value)
    assert _left(tmp_path) == []
    with pytest.raises(WriteError, match="produced no file"), atomic_output_file(tmp_path / "g"):
        pass
    assert _left(tmp_path) == []


def test_output_dir_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "series"
    with atomic_output_dir(out, what="the series") as tmp:
        (tmp / "1.dcm").write_bytes(b"1")
    assert _left(out) == ["1.dcm"]
    with pytest.raises(WriteError, match="could not write the copy"), \
            atomic_output_dir(tmp_path / "copy", what="the copy") as tmp:
        (tmp / "1.dcm").write_bytes(b"1")
        raise OSError(errno.EACCES, "Permission denied")
    assert _left(tmp_path) == ["series"]
    with pytest.raises(FileExistsError):
        atomic_output_dir(out).__enter__()


def test_files_into_refuses_a_clash_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "png"
    with atomic_files_into(out, ["a.png", "b.png"]) as tmp:
        (tmp / "a.png").write_bytes(b"a")
        (tmp / "b.png").write_bytes(b"b")
    assert _left(out) == ["a.png", "b.png"]
    with pytest.raises(FileExistsError, match=r"already holds a\.png"):
        atomic_files_into(out, ["a.png"]).__enter__()
    with pytest.raises(WriteError, match=r"c\.png was not produced"), \
            atomic_files_into(out, ["c.png"]):
        pass
    assert _left(out) == ["a.png", "b.png"]
    with pytest.raises(KeyboardInterrupt), atomic_files_into(tmp_path / "new", ["d.png"]) as tmp:
        (tmp / "d.png").write_bytes(b"d")
        raise KeyboardInterrupt
    assert _left(tmp_path) == ["png"]
