"""The uncertainty map of a synthetic CT: computed by test-time augmentation, summarised,
written beside the result in every format (marked synthetic, same anonymised study), never
half-written, and measured against a real error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medgan_desktop.cli import main
from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.inference.uncertainty import calibration, summary
from medgan_desktop.core.jobs import translate as jobs_translate
from medgan_desktop.core.jobs.translate import OutputFormat, TranslateSpec, run_translate, uncertainty_path
from medgan_desktop.core.volume import Volume


@pytest.fixture(scope="module")
def phantom_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MRI-DIR phantom T2 series cut to 8 slices (DICOM, its own geometry)."""
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").iterdir())
    out = tmp_path_factory.mktemp("mr") / "MR"
    out.mkdir()
    dss = sorted((pydicom.dcmread(f) for f in files if f.suffix == ".dcm"), key=lambda d: int(d.InstanceNumber))
    for ds in dss[40:48]:
        ds.save_as(out / f"{int(ds.InstanceNumber):03d}.dcm")
    return out


def test_nifti_and_dicom_maps_beside_the_result(phantom_small: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sct.nii.gz"
    assert main(["translate", "--input", str(phantom_small), "--out", str(out), "--uncertainty"]) == 0
    printed = capsys.readouterr().out
    assert "uncertainty: " in printed and "% of body voxels above 50 HU" in printed
    unc = tmp_path / "sct_uncertainty.nii.gz"
    a, u = sitk.ReadImage(str(out)), sitk.ReadImage(str(unc))
    assert a.GetSize() == u.GetSize() and a.GetSpacing() == u.GetSpacing() and a.GetOrigin() == u.GetOrigin()
    arr = sitk.GetArrayFromImage(u)
    assert arr.min() >= 0 and arr.max() > 0  # a standard deviation in HU, not all zero
    side = json.loads((tmp_path / "sct_uncertainty.json").read_text())
    assert side["SyntheticData"] == "YES" and side["description"].startswith("UNCERTAINTY SD of a SYNTHETIC CT")

    res = run_translate(TranslateSpec(source=str(phantom_small), out=str(tmp_path / "dcm"),
                                      format=OutputFormat.DICOM, uncertainty=True))
    main_ds = pydicom.dcmread(next((tmp_path / "dcm").rglob("*.dcm")))
    unc_ds = pydicom.dcmread(next((tmp_path / "dcm_uncertainty").rglob("*.dcm")))
    for ds in (main_ds, unc_ds):
        assert ds.SyntheticData == "YES" and ds.ImageType[0] == "DERIVED"
    assert "UNCERTAINTY SD" in unc_ds.SeriesDescription and "UNCERTAINTY" not in main_ds.SeriesDescription
    assert unc_ds.StudyInstanceUID == main_ds.StudyInstanceUID  # one anonymised study
    assert unc_ds.SeriesInstanceUID != main_ds.SeriesInstanceUID
    assert res.uncertainty is not None and res.uncertainty.shape == res.synthetic.shape
    assert set(res.uncertainty_summary) >= {"share_above", "median", "p95", "threshold"}


def test_a_failed_map_write_leaves_nothing(phantom_small: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = jobs_translate.write_nifti
    calls: list[Path] = []

    def second_fails(volume: Volume, path: Path, prov: dict) -> list[Path]:
        calls.append(path)
        if len(calls) == 2:
            raise WriteError(f"cannot write {path}: no space left on device")
        return real(volume, path, prov)

    monkeypatch.setattr(jobs_translate, "write_nifti", second_fails)
    out = tmp_path / "o" / "sct.nii.gz"
    out.parent.mkdir()
    with pytest.raises(WriteError):
        run_translate(TranslateSpec(source=str(phantom_small), out=str(out), format=OutputFormat.NIFTI,
                                    uncertainty=True))
    assert list(out.parent.iterdir()) == []  # the result without its map is not left behind


def test_paths_and_calibration() -> None:
    assert uncertainty_path(Path("/x/a.nii.gz"), OutputFormat.NIFTI) == Path("/x/a_uncertainty.nii.gz")
    assert uncertainty_path(Path("/x/out"), OutputFormat.DICOM) == Path("/x/out_uncertainty")
    assert uncertainty_path(Path("/x/s.png"), OutputFormat.PNG) == Path("/x/s_uncertainty.png")
    rng = np.random.default_rng(0)
    shape = (4, 32, 32)
    ref = np.full(shape, 40.0, np.float32)
    sd = rng.uniform(1, 100, shape).astype(np.float32)
    syn = ref + (rng.normal(0, 1, shape) * sd).astype(np.float32)
    vol = lambda a: Volume(a, modality="CT", units="HU")  # noqa: E731
    cal = calibration(vol(sd), vol(syn), vol(ref), mask=np.ones(shape, bool))
    assert cal["spearman"] > 0.5 and 0.0 < cal["share_beyond_2sd"] < 0.1  # a calibrated map
    flat = calibration(vol(np.full(shape, 5.0, np.float32)), vol(syn), vol(ref), mask=np.ones(shape, bool))
    assert np.isnan(flat["spearman"]) and flat["share_beyond_2sd"] > 0.5
    s = summary(vol(sd), vol(np.full(shape, 40.0, np.float32)), threshold=50.0)
    assert s["units"] == "HU" and 0.3 < s["share_above"] < 0.7


def test_export_writes_the_map_as_a_second_series_of_the_same_study(phantom_small: Path, tmp_path: Path) -> None:
    from medgan_desktop.core.jobs.export import ExportSpec, run_export

    res = run_translate(TranslateSpec(source=str(phantom_small), uncertainty=True))
    assert res.written == () and res.uncertainty is not None  # nothing written without an output
    out = tmp_path / "exp"
    done = run_export(ExportSpec(out_dir=out, volume=res.synthetic, uncertainty=res.uncertainty))
    a = pydicom.dcmread(next(out.rglob("*.dcm")))
    b = pydicom.dcmread(next((tmp_path / "exp_uncertainty").rglob("*.dcm")))
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SeriesInstanceUID != b.SeriesInstanceUID
    assert "UNCERTAINTY SD" in b.SeriesDescription and b.SyntheticData == "YES"
    assert len(done.files) == 2 * res.synthetic.shape[0]
