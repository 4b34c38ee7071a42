"""StudyIndex: import, dedupe, bad files, DICOMDIR, removal, threads (real data)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from medgan_desktop.core.dicom.index import MIGRATIONS, ImportReport, StudyIndex
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress
from tests.core.dicom_helpers import (
    copy_files,
    ct_dir,
    dcm_files,
    j2k_dir,
    make_malformed,
    mr_dir,
    shipped_file,
    tree_hash,
)


@pytest.fixture()
def index(tmp_path: Path) -> StudyIndex:
    ix = StudyIndex(tmp_path / "db" / "index.sqlite")
    yield ix
    ix.close()


def test_import_mixed_folder_splits_series_and_is_idempotent(
    index: StudyIndex, shared_data: Path, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    copy_files(dcm_files(mr_dir(shared_data)), mixed)
    copy_files(dcm_files(ct_dir(shared_data)), mixed)
    before = tree_hash(mixed)
    seen: list[Progress] = []
    report = index.import_paths([mixed], progress=seen.append)
    assert (report.patients, report.studies, report.series) == (1, 2, 2)
    assert report.instances == 94 + 12
    assert report.errors == 0 and report.problems == []
    assert seen[-1].done == seen[-1].total == 106
    tree = index.tree()
    assert len(tree) == 1 and tree[0].patient_id == "MRI-DIR-zzmeatphantom"
    series = {s.modality: s for st in tree[0].studies for s in st.series}
    assert series["MR"].instance_count == 94 and series["MR"].description == "T2"
    assert series["CT"].instance_count == 12
    assert len(index.series_files(series["MR"].series_uid)) == 94
    rec = index.series(series["CT"].series_uid)
    assert rec is not None and rec.patient_name == "MRI-DIR-zzmeatphantom"

    again = index.import_paths([mixed])
    assert (again.patients, again.studies, again.series, again.instances) == (0, 0, 0, 0)
    assert again.skipped == 106
    assert index.counts()["instances"] == 106
    assert tree_hash(mixed) == before  # sources never modified


def test_bad_files_are_problems_and_import_continues(
    index: StudyIndex, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    good = copy_files(dcm_files(ct_dir(shared_data))[:3], folder)
    bad = make_malformed(folder / "sub", good[0])
    (folder / "notes.txt").write_text("not dicom")
    report = index.import_paths([folder])
    assert report.instances == 3
    assert report.errors == len(bad)
    problem_paths = {Path(p.path).name for p in report.problems}
    assert problem_paths == {p.name for p in bad.values()}
    assert all(p.reason for p in report.problems)
    assert report.skipped == 1  # notes.txt
    assert {Path(p.path).name for p in index.problems()} == problem_paths
    d = report.to_dict()
    assert set(d) == {"patients", "studies", "series", "instances", "skipped", "errors",
                      "duplicates", "problems"}
    assert all(isinstance(d[k], int) for k in d if k != "problems")


def test_pydicom_malformed_testfiles_do_not_stop_import(index: StudyIndex, tmp_path: Path) -> None:
    names = ["MR_truncated.dcm", "badVR.dcm", "rtplan_truncated.dcm", "CT_small.dcm",
             "no_meta.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"]
    files = [shipped_file(n) for n in names]
    report = index.import_paths(files)
    assert report.instances + report.errors + report.skipped == len(files)
    assert report.instances >= 2  # CT_small, badVR (a bad IS value only), no_meta
    assert any("truncated" in p.reason for p in report.problems)
    assert index.tree()


def test_stripped_header_series_gets_stable_keys(index: StudyIndex, shared_data: Path) -> None:
    report = index.import_paths([j2k_dir(shared_data)])
    assert (report.series, report.instances) == (1, 20)
    (rec,) = index.all_series()
    assert rec.uids_derived and rec.series_uid.startswith("2.25.")
    assert rec.modality == "CT" and rec.description == "CT Body 3.0"
    assert index.import_paths([j2k_dir(shared_data)]).instances == 0


def test_dicomdir_is_followed(index: StudyIndex) -> None:
    dicomdir = shipped_file("CT_small.dcm").parent / "dicomdirtests" / "DICOMDIR"
    assert dicomdir.is_file()
    report = index.import_paths([dicomdir])  # the file alone: its references are followed
    assert report.instances > 5
    assert report.patients >= 2


def test_remove_series_and_study_prunes(index: StudyIndex, shared_data: Path) -> None:
    index.import_paths([ct_dir(shared_data), mr_dir(shared_data)])
    ct, mr = sorted(index.all_series(), key=lambda s: s.modality)
    index.remove_series(ct.series_uid)
    assert index.series(ct.series_uid) is None
    assert index.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 94}
    index.remove_study(mr.study_uid)
    assert index.counts() == {"patients": 0, "studies": 0, "series": 0, "instances": 0}
    assert (ct_dir(shared_data) / "CT_0199.dcm").is_file()  # files untouched


def test_schema_version_and_reopen(tmp_path: Path, shared_data: Path) -> None:
    db = tmp_path / "i.sqlite"
    with StudyIndex(db) as ix:
        assert ix.schema_version == len(MIGRATIONS)
        ix.import_paths([ct_dir(shared_data)])
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with StudyIndex(db) as ix:
        assert ix.counts()["instances"] == 12


def test_unreadable_root_raises(index: StudyIndex, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        index.import_paths([tmp_path / "missing"])


def test_cancel_stops_import(index: StudyIndex, shared_data: Path) -> None:
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.done >= 10:
            token.cancel()

    with pytest.raises(Cancelled):
        index.import_paths([mr_dir(shared_data)], progress=progress, cancel=token)
    assert index.counts()["instances"] < 94


def test_reads_while_importing_from_another_thread(index: StudyIndex, shared_data: Path) -> None:
    result: list[ImportReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            result.append(index.import_paths([mr_dir(shared_data), ct_dir(shared_data)]))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    reads = 0
    while t.is_alive():
        index.tree()
        index.problems()
        reads += 1
    t.join()
    assert not errors and result[0].instances == 106
    assert reads > 0
