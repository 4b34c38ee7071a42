"""The sample study: built from Debian's mricron-data + invesalius-examples, read back."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.jobs.sample_study import (
    CT_SOURCE,
    MR_SOURCE,
    PATIENT_NAME,
    STAMP_NAME,
    SampleSources,
    SampleStudyUnavailable,
    build_sample_study,
    ensure_sample_study,
    is_complete,
)
from medgan_desktop.core.progress import Cancelled, CancelToken


@pytest.fixture(scope="module")
def sources() -> SampleSources:
    """The Debian source files; fails loudly when the packages are not installed."""
    missing = SampleSources().missing()
    if missing:
        pytest.fail(f"install the Debian packages (bootstrap.sh does): missing {missing}")
    return SampleSources()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sources: SampleSources) -> tuple[Path, float]:
    data = tmp_path_factory.mktemp("ss-data")
    paths = AppPaths(data_dir=data, install_dir=tmp_path_factory.mktemp("no-install"))
    t0 = time.perf_counter()
    folder = ensure_sample_study(paths)
    return folder, time.perf_counter() - t0


def _read_series(folder: Path) -> tuple[sitk.Image, list[str]]:
    reader = sitk.ImageSeriesReader()
    ids = reader.GetGDCMSeriesIDs(str(folder))
    assert len(ids) == 1, f"{folder} should hold exactly one series, found {ids}"
    files = list(reader.GetGDCMSeriesFileNames(str(folder), ids[0]))
    reader.SetFileNames(files)
    return reader.Execute(), files


def test_study_has_two_series_of_the_fake_patient(built: tuple[Path, float]) -> None:
    folder, _ = built
    assert is_complete(folder) and (folder / STAMP_NAME).is_file()
    files = sorted(folder.rglob("*.dcm"))
    heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    series = {h.SeriesInstanceUID: h for h in heads}
    assert len(series) == 2
    assert {h.Modality for h in series.values()} == {"MR", "CT"}
    assert {h.SOPClassUID for h in series.values()} == {
        "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2"}
    assert {str(h.PatientName) for h in heads} == {PATIENT_NAME}
    assert len({h.StudyInstanceUID for h in heads}) == 1
    # two different people on two scanners: one Frame of Reference per series
    assert len({h.FrameOfReferenceUID for h in series.values()}) == 2
    assert all(h.ImageOrientationPatient == [1, 0, 0, 0, 1, 0] for h in heads)


def test_ct_is_in_plausible_hounsfield_units(built: tuple[Path, float]) -> None:
    img, files = _read_series(built[0] / "CT")
    hu = sitk.GetArrayFromImage(img)
    assert hu.shape == (108, 256, 256)
    assert hu.min() <= -1000 and np.percentile(hu, 5) < -900  # air around the head
    assert hu.max() > 700 and (hu > 700).sum() > 10_000  # skull
    brain = hu[54, 100:160, 100:160]
    assert 10 < np.median(brain) < 60  # grey/white matter
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.RescaleType == "HU"


def test_ct_anterior_is_row_zero(built: tuple[Path, float]) -> None:
    """The InVesalius rows are flipped back: the frontal sinus (air) is anterior (low j)."""
    from scipy import ndimage

    img, _ = _read_series(built[0] / "CT")
    hu = sitk.GetArrayFromImage(img)[54]
    labels, _ = ndimage.label(ndimage.binary_fill_holes(hu > -300))
    head = labels == np.bincount(labels.ravel())[1:].argmax() + 1  # not the head rest
    head = ndimage.binary_fill_holes(head)
    air = head & (hu < -500)  # air enclosed by the head: the frontal sinus
    rows = np.flatnonzero(head.any(axis=1))
    mid = (rows[0] + rows[-1]) // 2
    assert air[:mid].sum() > 100 and air[mid:].sum() < air[:mid].sum() / 10


def test_mr_is_a_real_head(built: tuple[Path, float]) -> None:
    img, _ = _read_series(built[0] / "MR")
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    nk, nj, ni = a.shape
    assert 90 <= nk <= 110 and 128 <= nj <= 160 and 110 <= ni <= 160
    assert a.std() > 20 and (a > 50).mean() > 0.2
    centre = a[nk // 2, nj // 2 - 10: nj // 2 + 10, ni // 2 - 10: ni // 2 + 10]
    assert centre.mean() > 40  # brain, not background


def test_geometry_round_trips_through_simpleitk(built: tuple[Path, float]) -> None:
    mr, _ = _read_series(built[0] / "MR")
    ct, _ = _read_series(built[0] / "CT")
    np.testing.assert_allclose(mr.GetSpacing(), (1.5, 1.5, 1.8), atol=1e-4)
    np.testing.assert_allclose(mr.GetOrigin(), (-90.0, -91.0, -71.0), atol=1e-3)
    np.testing.assert_allclose(ct.GetSpacing(), (0.957031, 0.957031, 1.5), atol=1e-4)
    np.testing.assert_allclose(ct.GetDirection(), np.eye(3).ravel(), atol=1e-6)
    np.testing.assert_allclose(mr.GetDirection(), np.eye(3).ravel(), atol=1e-6)
    # both heads are centred near the LPS origin
    for img in (mr, ct):
        centre = img.TransformContinuousIndexToPhysicalPoint(
            [(n - 1) / 2 for n in img.GetSize()])
        assert np.linalg.norm(centre) < 60


def test_second_call_reuses_the_build(built: tuple[Path, float], tmp_path: Path) -> None:
    folder, first = built
    paths = AppPaths(data_dir=folder.parent, install_dir=tmp_path)
    before = (folder / STAMP_NAME).stat().st_mtime_ns
    t0 = time.perf_counter()
    again = ensure_sample_study(paths)
    second = time.perf_counter() - t0
    assert again == folder
    assert (folder / STAMP_NAME).stat().st_mtime_ns == before
    assert second < 0.5 and second < first / 5


def test_prebuilt_copy_is_used_without_sources(built: tuple[Path, float], tmp_path: Path) -> None:
    install = tmp_path / "install"
    (install / "resources").mkdir(parents=True)

    shutil.copytree(built[0], install / "resources" / "sample_study")
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=install)
    nothing = SampleSources(mr=tmp_path / "no.nii.gz", ct=tmp_path / "no.inv3")
    folder = ensure_sample_study(paths, sources=nothing)
    assert folder == paths.sample_study_dir and is_complete(folder)
    assert len(list((folder / "CT").glob("*.dcm"))) == 108


def test_missing_sources_name_the_debian_packages(tmp_path: Path) -> None:
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=tmp_path / "install")
    nothing = SampleSources(mr=tmp_path / "no.nii.gz", ct=tmp_path / "no.inv3")
    with pytest.raises(SampleStudyUnavailable) as err:
        ensure_sample_study(paths, sources=nothing)
    msg = str(err.value)
    assert "mricron-data" in msg and "invesalius-examples" in msg
    assert not paths.sample_study_dir.exists()


def test_cancel_leaves_nothing_behind(sources: SampleSources, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    out = tmp_path / "study"
    with pytest.raises(Cancelled):
        build_sample_study(out, sources=sources, cancel=token)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(sources: SampleSources, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_sample_study(out, sources=sources)
    assert (out / "notes.txt").read_text() == "keep me"


def test_cli_prints_the_folder(built: tuple[Path, float], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan_desktop.cli import main

    monkeypatch.setenv("MEDGAN_DATA_DIR", str(built[0].parent))
    assert main(["sample-study", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(built[0])


def test_source_paths_are_the_debian_ones() -> None:
    assert Path("/usr/share/mricron/templates/ch2.nii.gz") == MR_SOURCE
    assert CT_SOURCE.name == "Cranium.inv3"
