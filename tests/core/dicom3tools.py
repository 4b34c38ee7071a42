"""Run dicom3tools' ``dciodvfy`` / ``dcentvfy`` on written files and keep only unexpected findings.

Each allowed finding is listed with the reason it is acceptable; anything else (every
``Error``, any other ``Warning``) fails the calling test.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: (regex, reason). Matched against each "Warning - ..." line.
ALLOWED_WARNINGS: tuple[tuple[str, str], ...] = (
    (r"Attribute is not present in standard DICOM IOD",
     "standard-extended SOP class: source attributes (e.g. GE Stack ID) or PS3.15 marking "
     "attributes in modules the IOD does not list"),
    (r"Dicom dataset contains attributes not present in standard DICOM IOD",
     "summary line of the warning above"),
    (r"Unrecognized defined term <\w*GEMS>",
     "GE vendor-specific Scan Options defined terms copied from the real source"),
    (r"Missing attribute or value that would be needed to build DICOMDIR - Study ID",
     "StudyID is Type 2 and emptied by the Basic Profile (Z); DICOMDIR is not our concern"),
    (r"needed to build DICOMDIR - Study (Date|Time)",
     "StudyDate/StudyTime are Type 2 and emptied by the Basic Profile (Z)"),
    (r"should be absent \(not empty\) if an unpaired body part.*<Laterality>",
     "empty Laterality copied from the real GE source"),
    (r"Retired Person Name form",
     "dicom3tools dislikes PN values without '^' (our pseudonyms, real source names)"),
    (r"Unrecognized tag|not in dictionary|Synthetic Data",
     "an older dicom3tools dictionary may not know SyntheticData (0008,001C)"),
    (r"Value dubious for this VR - \(0x0010,0x0010\)",
     "pseudonym PN without component separator"),
)
#: (regex, reason). Matched against each "Error - ..." line: only dictionary gaps.
ALLOWED_ERRORS: tuple[tuple[str, str], ...] = (
    (r"even group number is not a recognized standard attribute - \(0x0008,0x001c\)",
     "the installed dicom3tools dictionary predates SyntheticData (0008,001C), added to "
     "PS3.6 in 2021; pydicom's dictionary knows it (VR CS)"),
)
ALLOWED_DCENTVFY: tuple[tuple[str, str], ...] = ()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} (Debian package dicom3tools) is required for DICOM validation")
    return path


def _problems(lines: Iterable[str], allowed: tuple[tuple[str, str], ...]) -> list[str]:
    out = []
    for raw in lines:
        line = raw.strip()
        if not line.startswith(("Error", "Warning")):
            continue
        if line.startswith("Warning") and any(re.search(p, line) for p, _ in allowed):
            continue
        if line.startswith("Error") and any(re.search(p, line) for p, _ in ALLOWED_ERRORS):
            continue
        out.append(line)
    return out


def dciodvfy(path: Path) -> list[str]:
    """Unexpected ``dciodvfy`` findings for one file (empty = valid)."""
    r = subprocess.run([_tool("dciodvfy"), str(path)], capture_output=True, text=True,
                       timeout=60, check=False)
    return _problems((r.stdout + r.stderr).splitlines(), ALLOWED_WARNINGS)


def dcentvfy(paths: Iterable[Path]) -> list[str]:
    """Unexpected ``dcentvfy`` findings (entity consistency across files of a set)."""
    files = [str(p) for p in paths]
    r = subprocess.run([_tool("dcentvfy"), *files], capture_output=True, text=True,
                       timeout=120, check=False)
    return _problems((r.stdout + r.stderr).splitlines(), ALLOWED_DCENTVFY)


def assert_valid(paths: Iterable[Path]) -> None:
    """Every file passes dciodvfy (allowed warnings only) and the set passes dcentvfy."""
    paths = list(paths)
    assert paths, "no files to validate"
    bad = {str(p): f for p in paths if (f := dciodvfy(p))}
    assert not bad, f"dciodvfy: {bad}"
    ent = dcentvfy(paths)
    assert not ent, f"dcentvfy: {ent}"


ORTHANC = "/usr/sbin/Orthanc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orthanc_rest(port: int, path: str) -> object:
    """GET a JSON resource from the test Orthanc (loopback only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


@contextmanager
def orthanc_server(root: Path, aet: str) -> Iterator[tuple[int, int]]:
    """Start a private Orthanc (storage in ``root``, free ports, loopback, no auth).

    Yields (dicom_port, http_port); stops it on exit. Every wait is bounded.
    """
    if shutil.which(ORTHANC) is None:
        pytest.fail("Orthanc (Debian package 'orthanc') is required for the PACS tests")
    dicom_port, http_port = free_port(), free_port()
    cfg = {
        "Name": "medgan-test", "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"), "DicomAet": aet, "DicomPort": dicom_port,
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowEcho": True, "Plugins": [], "StableAge": 1,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "cfg.json").write_text(json.dumps(cfg), encoding="utf-8")
    log = (root / "orthanc.log").open("w")
    proc = subprocess.Popen([ORTHANC, str(root / "cfg.json")], stdout=log,
                            stderr=subprocess.STDOUT, cwd=root)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                orthanc_rest(http_port, "/system")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Orthanc did not start: "
                                + (root / "orthanc.log").read_text()[-2000:])
                # wait a little (and notice if Orthanc died) before polling again
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
        yield dicom_port, http_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
