"""Helpers shared by the DICOM tests (real data paths, malformed file builders)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_files


def mr_dir(shared: Path) -> Path:
    return shared / "mridir_phantom" / "MR_T2_DICOM"


def ct_dir(shared: Path) -> Path:
    return shared / "mridir_phantom" / "CT_DICOM_sample"


def j2k_dir(shared: Path) -> Path:
    return shared / "dicom_series" / "totalsegmentator_ct_series"


def dcm_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in
                  ("LICENSE", "PROVENANCE.txt"))


def shipped_file(name: str) -> Path:
    """A file that ships with pydicom / pydicom-data (never downloaded)."""
    for f in get_testdata_files():
        if Path(f).name == name:
            return Path(f)
    raise AssertionError(f"{name} is not shipped with pydicom or pydicom-data")


def tree_hash(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def copy_files(files: list[Path], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        target = dest / f"{f.parent.name}_{f.name}"
        shutil.copyfile(f, target)
        out.append(target)
    return out


def make_malformed(dest: Path, good: Path) -> dict[str, Path]:
    """Truncated, random-bytes and bad-VR files next to each other."""
    dest.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    truncated = dest / "truncated.dcm"
    truncated.write_bytes(data[:300])
    rnd = dest / "random.bin"
    rnd.write_bytes(hashlib.sha512(b"noise").digest() * 40)
    empty = dest / "empty.dcm"
    empty.write_bytes(b"")
    bad_vr = dest / "badvr.dcm"
    # DICM preamble + a file meta group with a nonsense element length
    bad_vr.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"x" * 64)
    return {"truncated": truncated, "random": rnd, "empty": empty, "bad_vr": bad_vr}


def rewrite(src: Path, dest: Path, **changes: object) -> Path:
    ds = pydicom.dcmread(src)
    for k, v in changes.items():
        setattr(ds, k, v)
    ds.save_as(dest)
    return dest
