"""Fuzzing the DICOM reader, importer and series loader with mutated real files.

Property: whatever the bytes, reading one file either succeeds or raises the
reader's own, user-facing errors; an import of a folder of mutants never raises
and reports every file it could not read; each file takes bounded time and memory.

A short budget runs in the suite; the long one is
``MEDGAN_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/core/test_fuzz_dicom.py``.
A mutant that crashes is kept in the test's temporary folder (or ``$MEDGAN_FUZZ_KEEP``),
never in the source tree; the shapes of input that once crashed a reader are rebuilt from
synthetic slices by ``tests/fixtures/make_fuzz_fixtures.py``, shipped in
``tests/fixtures/fuzz`` and replayed by :func:`test_crash_fixtures_stay_fixed`.
"""

from __future__ import annotations

import contextlib
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.dicom.reader import DicomReadError, read_header
from medgan_desktop.core.dicom.series import GeometryError, MultipleSeriesError, load_series

EXAMPLES = int(os.environ.get("MEDGAN_FUZZ_EXAMPLES", "40"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"
GENERATOR = FIXTURES.parent / "make_fuzz_fixtures.py"
#: what a user may be shown for a bad file; anything else is a crash
EXPECTED = (DicomReadError, GeometryError, MultipleSeriesError)
PER_FILE_SECONDS = 5.0
PER_FILE_BYTES = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def seeds(shared_data: Path) -> list[bytes]:
    mr = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").iterdir())[40]
    ct = sorted((shared_data / "mridir_phantom" / "CT_DICOM_sample").iterdir())[0]
    j2k = sorted((shared_data / "dicom_series" / "totalsegmentator_ct_series").iterdir())[0]
    return [p.read_bytes() for p in (mr, ct, j2k) if p.is_file()]


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:  # bit flip
            buf[i] ^= 1 << (val % 8)
        elif kind == 1:  # overwrite a byte
            buf[i] = val % 256
        elif kind == 2:  # truncate
            del buf[i:]
        elif kind == 3:  # wreck a length field: 4 bytes of 0xff
            buf[i : i + 4] = b"\xff\xff\xff\xff"
        elif kind == 4:  # duplicate a chunk (wrong lengths downstream)
            buf[i:i] = buf[i : i + (val % 64)]
    return bytes(buf)


def _read_bounded(path: Path) -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        read_header(path)
        with contextlib.suppress(EXPECTED):
            load_series([path])
    except EXPECTED:
        pass
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < PER_FILE_SECONDS, f"{path.name} took {elapsed:.1f} s"
    assert peak < PER_FILE_BYTES, f"{path.name} peaked at {peak / 1e6:.0f} MB"


ops_strategy = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6
)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 2), ops=ops_strategy)
def test_mutated_files_never_crash_the_reader(
    seeds: list[bytes], tmp_path: Path, which: int, ops: list[tuple[int, int, int]]
) -> None:
    path = tmp_path / "mutant.dcm"
    path.write_bytes(_mutate(seeds[which % len(seeds)], ops))
    try:
        _read_bounded(path)
    except Exception as exc:  # keep the input for a new fixture, then fail
        import hashlib

        where = Path(os.environ.get("MEDGAN_FUZZ_KEEP", str(tmp_path)))
        where.mkdir(parents=True, exist_ok=True)
        keep = where / f"crash_{hashlib.sha1(path.read_bytes()).hexdigest()[:10]}.dcm"
        keep.write_bytes(path.read_bytes())
        raise AssertionError(f"{type(exc).__name__}: {exc} (kept as {keep}; add its shape to "
                             f"{GENERATOR.name})") from exc


def _generator() -> dict[str, bytes]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fuzz_fixtures", GENERATOR)
    assert spec is not None and spec.loader is not None, f"{GENERATOR} is missing"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built: dict[str, bytes] = mod.build()
    return built


def test_crash_fixtures_stay_fixed() -> None:
    """The shipped fixtures are what the generator makes, and none crashes the reader."""
    built = _generator()
    shipped = {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.dcm"))}
    assert len(shipped) >= 10, f"the regression fixtures are missing from {FIXTURES}"
    assert shipped == built, "tests/fixtures/fuzz differs from make_fuzz_fixtures.py: rerun it"
    for path in sorted(FIXTURES.glob("*.dcm")):
        _read_bounded(path)


def _bomb(seed: bytes, tmp_path: Path) -> Path:
    """A small file claiming a gigantic image (decompression-bomb shape)."""
    import io

    ds = pydicom.dcmread(io.BytesIO(seed))
    ds.Rows = 65535
    ds.Columns = 65535
    ds.NumberOfFrames = 1000
    path = tmp_path / "bomb.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path


def test_import_of_a_folder_of_mutants_reports_every_bad_file(
    seeds: list[bytes], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "mutants"
    folder.mkdir()
    for n in range(30):
        ops = [(int(rng.integers(0, 5)), int(rng.integers(0, 1 << 20)), int(rng.integers(0, 256)))
               for _ in range(int(rng.integers(1, 5)))]
        (folder / f"m{n:02d}.dcm").write_bytes(_mutate(seeds[n % len(seeds)], ops))
    (folder / "good.dcm").write_bytes(seeds[0])
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "text.dcm").write_bytes(b"not a dicom file at all\n" * 10)
    _bomb(seeds[0], folder)
    index = StudyIndex(tmp_path / "index.sqlite")
    try:
        report = index.import_paths([folder])
    finally:
        index.close()
    d = report.to_dict()
    files = len(list(folder.iterdir()))
    assert d["instances"] + d["skipped"] + d["errors"] == files
    assert d["instances"] >= 1  # the intact file made it in
    assert d["errors"] >= 2  # at least the empty and text files
    reported = {Path(p.path).name for p in report.problems}
    assert {"empty.dcm", "text.dcm"} <= reported
    assert all(p.reason for p in report.problems)


def test_decompression_bomb_is_refused_before_decoding(seeds: list[bytes], tmp_path: Path) -> None:
    path = _bomb(seeds[0], tmp_path)
    tracemalloc.start()
    with pytest.raises(DicomReadError, match=r"too large|decompression"):
        load_series([path])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_corrupt_length_field_does_not_allocate_gigabytes(seeds: list[bytes], tmp_path: Path) -> None:
    """Regression (found by the fuzzer): a 0xFFFFFFF0 length made read() allocate ~4 GB."""
    data = bytearray(seeds[0])
    at = data.find(b"OB\x00\x00")
    assert at > 0
    data[at + 4 : at + 8] = (0xFFFFFFF0).to_bytes(4, "little")
    path = tmp_path / "long_length.dcm"
    path.write_bytes(bytes(data))
    _read_bounded(path)
