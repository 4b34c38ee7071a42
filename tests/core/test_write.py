"""Synthetic/plain DICOM writers: read back (HU, geometry), marking, dciodvfy/dcentvfy."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer
from medgan_desktop.core.dicom.write import (
    CT_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    SC_IMAGE_STORAGE,
    write_secondary_capture,
    write_synthetic_series,
    write_volume_series,
)
from medgan_desktop.core.volume import SourceInfo, Volume
from tests.core.dicom3tools import assert_valid

N_SLICES = 4


@pytest.fixture(scope="module")
def mr_and_ct(shared_data: Path) -> tuple[list[Dataset], Volume]:
    """Real MR source headers and the real CT (HU) registered onto the MR grid, same slices."""
    mr = [pydicom.dcmread(p) for p in sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM")
                                             .glob("*.dcm"))]
    mr.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    ct = Volume.from_sitk(
        sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz")),
        modality="CT", units="HU")
    k0 = 40
    z0 = ct.origin[2] + k0 * ct.spacing[2]
    start = next(i for i, d in enumerate(mr) if abs(float(d.ImagePositionPatient[2]) - z0) < 0.01)
    sources = mr[start:start + N_SLICES]
    arr = ct.array[k0:k0 + N_SLICES].astype(np.float32)
    arr[0, 0, 0] = 40000.0  # out of int16 range: must be clipped, not wrapped
    vol = Volume(arr, spacing=ct.spacing, origin=(ct.origin[0], ct.origin[1], z0),
                 direction=ct.direction, modality="CT", units="HU", synthetic=True,
                 source=SourceInfo(patient_id=str(sources[0].PatientID),
                                   study_instance_uid=str(sources[0].StudyInstanceUID),
                                   series_number=int(sources[0].SeriesNumber)))
    return sources, vol


def _read(files: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(f) for f in files]


def _check_geometry(ds_list: list[Dataset], vol: Volume) -> None:
    for k, ds in enumerate(ds_list):
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient],
                                   vol.index_to_lps((0, 0, k)), atol=1e-4)
        d = vol.direction
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient],
                                   [*d[:, 0], *d[:, 1]], atol=1e-6)
        row_sp, col_sp = (float(v) for v in ds.PixelSpacing)
        assert (row_sp, col_sp) == pytest.approx((vol.spacing[1], vol.spacing[0]))
        assert float(ds.SliceThickness) == pytest.approx(vol.spacing[2])
        assert (ds.Rows, ds.Columns) == vol.array.shape[1:]


def test_synthetic_ct_reads_back_marked_anonymised_and_valid(
    mr_and_ct: tuple[list[Dataset], Volume], tmp_path: Path
) -> None:
    sources, vol = mr_and_ct
    files = write_synthetic_series(vol, tmp_path / "syn", source_datasets=sources,
                                   model_id="mr2ct-pix2pix", model_version="1.2.0",
                                   software_version="0.1.0")
    assert [f.name for f in files] == [f"IM{n:05d}.dcm" for n in range(1, N_SLICES + 1)]
    out = _read(files)
    expected = np.clip(np.rint(vol.array), -32768, 32767)
    for k, ds in enumerate(out):
        assert ds.SOPClassUID == CT_IMAGE_STORAGE
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, expected[k])
        assert ds.pixel_array.dtype == np.int16
        assert ds.SyntheticData == "YES"
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert ds.SeriesDescription.startswith("SYNTHETIC")
        assert "mr2ct-pix2pix" in ds.DerivationDescription and "1.2.0" in ds.DerivationDescription
        eq = ds.ContributingEquipmentSequence[0]
        purpose = eq.PurposeOfReferenceCodeSequence[0]
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning) == (
            "109100", "DCM", "Synthesizing Equipment")
        assert "mr2ct-pix2pix 1.2.0" in list(eq.SoftwareVersions)
        assert len(ds.SourceImageSequence) == 1
        assert ds.PatientIdentityRemoved == "YES"
        # anonymised: nothing of the source study/patient survives
        assert ds.StudyInstanceUID != sources[0].StudyInstanceUID
        assert ds.FrameOfReferenceUID != sources[0].FrameOfReferenceUID
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID != sources[k].SOPInstanceUID
        assert str(sources[0].PatientID) not in str(ds.PatientID)
    assert out[0][0x7FE00010].value != out[1][0x7FE00010].value
    assert out[0].pixel_array[0, 0] == 32767  # clipped
    assert len({d.SeriesInstanceUID for d in out}) == 1
    assert len({d.FrameOfReferenceUID for d in out}) == 1
    _check_geometry(out, vol)
    for f in files:
        assert str(sources[0].PatientID).encode() not in f.read_bytes()
    assert_valid(files)


def test_synthetic_within_source_study_links_to_the_source(
    mr_and_ct: tuple[list[Dataset], Volume], tmp_path: Path
) -> None:
    sources, vol = mr_and_ct
    files = write_synthetic_series(vol, tmp_path / "in_study", source_datasets=sources,
                                   model_id="m", model_version="1", software_version="0.1.0",
                                   within_source_study=True)
    out = _read(files)
    for k, ds in enumerate(out):
        assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
        assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
        assert ds.PatientID == sources[0].PatientID
        assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == sources[k].SOPInstanceUID
        assert "PatientIdentityRemoved" not in ds
        assert ds.SeriesNumber == int(sources[0].SeriesNumber) + 1000
    assert_valid(files)


def test_shared_anonymizer_keeps_synthetic_and_source_linked(
    mr_and_ct: tuple[list[Dataset], Volume], tmp_path: Path
) -> None:
    sources, vol = mr_and_ct
    job = Anonymizer(AnonymizeOptions())
    files = write_synthetic_series(vol, tmp_path / "a", source_datasets=sources, model_id="m",
                                   model_version="1", anonymizer=job)
    anon_src = [job.anonymize_dataset(s)[0] for s in sources]
    out = _read(files)
    assert out[0].StudyInstanceUID == anon_src[0].StudyInstanceUID
    assert out[0].FrameOfReferenceUID == anon_src[0].FrameOfReferenceUID
    assert [d.SourceImageSequence[0].ReferencedSOPInstanceUID for d in out] == [
        s.SOPInstanceUID for s in anon_src]


def test_oblique_anisotropic_mr_geometry(tmp_path: Path) -> None:
    """si != sj and a rotated grid catch a swapped PixelSpacing or direction columns."""
    rng = np.random.default_rng(0)
    arr = rng.normal(300, 50, size=(3, 20, 30)).astype(np.float32)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
    vol = Volume(arr, spacing=(0.7, 1.3, 3.0), origin=(-10.0, 5.5, 20.25), direction=direction,
                 modality="MR", units="scanner")
    files = write_volume_series(vol, tmp_path / "mr", patient_name="Phantom^Test",
                                patient_id="PH1", series_description="T2 phantom")
    out = _read(files)
    assert out[0].SOPClassUID == MR_IMAGE_STORAGE
    assert list(out[0].ImageType) == ["ORIGINAL", "PRIMARY", "OTHER"]
    assert "SyntheticData" not in out[0]
    _check_geometry(out, vol)
    for k, ds in enumerate(out):
        np.testing.assert_array_equal(ds.pixel_array, np.rint(arr[k]))
    assert_valid(files)


def test_volume_series_shares_study_and_frame(tmp_path: Path) -> None:
    vol = Volume(np.zeros((2, 8, 8), np.float32) - 1000, modality="CT", units="HU")
    a = write_volume_series(vol, tmp_path / "a", patient_name="P^Q", patient_id="1",
                            study_uid="1.2.3.4", series_description="CT",
                            frame_of_reference_uid="1.2.3.5")
    b = write_volume_series(vol, tmp_path / "b", patient_name="P^Q", patient_id="1",
                            study_uid="1.2.3.4", series_description="sCT", synthetic=True,
                            frame_of_reference_uid="1.2.3.5", series_number=2)
    da, db = pydicom.dcmread(a[0]), pydicom.dcmread(b[0])
    assert da.StudyInstanceUID == db.StudyInstanceUID == "1.2.3.4"
    assert da.FrameOfReferenceUID == db.FrameOfReferenceUID == "1.2.3.5"
    assert db.SyntheticData == "YES" and db.SeriesDescription.startswith("SYNTHETIC")
    assert int(da.pixel_array.min()) == -1000
    assert_valid(a + b)


def test_secondary_capture_of_sampled_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    imgs = [np.tanh(rng.normal(size=(32, 48))).astype(np.float32) for _ in range(3)]
    files = write_secondary_capture(imgs, tmp_path / "sc", description="chest X-ray DCGAN",
                                    model_id="dcgan-cxr", model_version="0.3")
    out = _read(files)
    for img, ds in zip(imgs, out, strict=True):
        assert ds.SOPClassUID == SC_IMAGE_STORAGE
        assert ds.ConversionType == "SYN" and ds.SyntheticData == "YES"
        assert ds.SeriesDescription.startswith("SYNTHETIC")
        assert ds.ContributingEquipmentSequence[0].PurposeOfReferenceCodeSequence[
            0].CodeValue == "109100"
        expect = np.clip(np.rint((img.astype(np.float64) + 1) / 2 * 255), 0, 255)
        np.testing.assert_array_equal(ds.pixel_array, expect)
    assert len({d.SeriesInstanceUID for d in out}) == 1
    assert_valid(files)


def test_full_disk_leaves_no_partial_series(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = Volume(np.zeros((3, 8, 8), np.float32), modality="CT", units="HU")
    real = Dataset.save_as
    calls = {"n": 0}

    def failing(self: Dataset, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Dataset, "save_as", failing)
    with pytest.raises(WriteError, match="disk is full") as info:
        write_synthetic_series(vol, tmp_path / "out", source_datasets=None, model_id="m",
                               model_version="1")
    assert isinstance(info.value, OSError)
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_gives_clear_error(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root here, which ignores permission bits: simulate a read-only mount
    def ro_mkdir(self: Path, *a: object, **k: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", ro_mkdir)
    with pytest.raises(WriteError, match="read-only"):
        write_volume_series(Volume(np.zeros((1, 4, 4)), modality="CT"), tmp_path / "x",
                            patient_name="a", patient_id="b", series_description="c")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        write_volume_series(Volume(np.zeros((1, 4, 4)), modality="CT"), tmp_path / "o",
                            patient_name="a", patient_id="b", series_description="c")
    assert (tmp_path / "o" / "keep.txt").read_text() == "x"
