"""load_series against SimpleITK and known HU ranges, plus irregular geometry (real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.dicom.reader import DicomReadError
from medgan_desktop.core.dicom.series import (
    GeometryError,
    MultipleSeriesError,
    load_series,
    load_series_from_index,
    split_series,
)
from tests.core.dicom_helpers import copy_files, ct_dir, dcm_files, j2k_dir, mr_dir, rewrite, shipped_file


def _sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.mark.parametrize("which", ["mr", "ct", "j2k"])
def test_geometry_and_voxels_match_simpleitk(shared_data: Path, which: str) -> None:
    folder = {"mr": mr_dir, "ct": ct_dir, "j2k": j2k_dir}[which](shared_data)
    vol = load_series(dcm_files(folder))
    ref = _sitk_series(folder)
    assert vol.array.dtype == np.float32
    assert vol.shape == sitk.GetArrayFromImage(ref).shape
    np.testing.assert_allclose(vol.origin, ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(vol.spacing, ref.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(vol.direction.flatten(), ref.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(vol.array, sitk.GetArrayFromImage(ref).astype(np.float32))
    # voxel -> patient position of the last slice is its ImagePositionPatient
    last = pydicom.dcmread(vol.source.files[-1], stop_before_pixels=True)
    np.testing.assert_allclose(vol.index_to_lps((0, 0, vol.shape[0] - 1)),
                               [float(v) for v in last.ImagePositionPatient], atol=1e-3)
    assert len(vol.source.sop_instance_uids) == vol.shape[0]


def test_mr_series_identifiers(shared_data: Path) -> None:
    vol = load_series(dcm_files(mr_dir(shared_data)))
    assert vol.shape == (94, 512, 512) and vol.modality == "MR" and vol.units == "scanner"
    assert vol.description == "T2" and vol.warnings == ()
    src = vol.source
    assert src.patient_id == "MRI-DIR-zzmeatphantom"
    assert src.series_instance_uid.endswith("927213")
    assert src.frame_of_reference_uid and src.study_instance_uid
    first = pydicom.dcmread(src.files[0], stop_before_pixels=True)
    assert first.SOPInstanceUID == src.sop_instance_uids[0]


def test_ct_hounsfield_ranges(shared_data: Path) -> None:
    vol = load_series(dcm_files(ct_dir(shared_data)))
    assert vol.units == "HU" and vol.modality == "CT"
    a = vol.array
    inside_fov = a[a > -1500]  # -2048 is the padding outside the reconstruction circle
    air = inside_fov[inside_fov < -900]
    assert air.size > 0.2 * inside_fov.size and abs(float(np.median(air)) + 1000) < 30
    centre = a[:, 236:276, 236:276]
    assert 0 < float(np.median(centre)) < 100  # the meat phantom: soft tissue
    assert float(a.max()) > 300  # bone present


def test_jpeg2000_stripped_header_series(shared_data: Path) -> None:
    vol = load_series(dcm_files(j2k_dir(shared_data)))
    assert vol.shape == (20, 512, 512) and vol.units == "HU"
    assert any("missing UIDs" in w for w in vol.warnings)
    assert -1100 < float(vol.array.min()) <= -1000


def test_mixed_folder_splits_and_requires_a_choice(shared_data: Path, tmp_path: Path) -> None:
    files = copy_files(dcm_files(mr_dir(shared_data))[:5] + dcm_files(ct_dir(shared_data)),
                       tmp_path / "mixed")
    groups = split_series(files)
    assert sorted(len(v) for v in groups.values()) == [5, 12]
    with pytest.raises(MultipleSeriesError):
        load_series(files)
    ct_uid = next(uid for uid, v in groups.items() if len(v) == 12)
    vol = load_series(files, series_uid=ct_uid)
    assert vol.modality == "CT" and vol.shape[0] == 12


def test_load_from_index(shared_data: Path, tmp_path: Path) -> None:
    with StudyIndex(tmp_path / "i.sqlite") as ix:
        ix.import_paths([ct_dir(shared_data)])
        (rec,) = ix.all_series()
        vol = load_series_from_index(ix, rec.series_uid)
    assert vol.shape == (12, 512, 512)


def test_missing_slice_is_reported_and_resampled(shared_data: Path, tmp_path: Path) -> None:
    files = copy_files(dcm_files(ct_dir(shared_data)), tmp_path / "gap")
    full = load_series(files)
    files.remove(Path(full.source.files[5]))  # the 6th slice along the normal
    with pytest.raises(GeometryError, match="missing"):
        load_series(files, on_irregular="refuse")
    vol = load_series(files)
    assert any("missing" in w for w in vol.warnings)
    assert vol.shape == full.shape and vol.spacing == pytest.approx(full.spacing)
    np.testing.assert_allclose(vol.array[5], 0.5 * (full.array[4] + full.array[6]), atol=1e-3)
    np.testing.assert_array_equal(vol.array[7], full.array[7])


def test_gantry_tilt_is_corrected_not_ignored(shared_data: Path, tmp_path: Path) -> None:
    src = dcm_files(ct_dir(shared_data))
    full = load_series(src)
    row_sp = full.spacing[1]
    out = []
    for k, f in enumerate(full.source.files):
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 2 * k * row_sp, z]  # 2 rows per slice of shear
        target = tmp_path / f"tilt_{k:02d}.dcm"
        ds.save_as(target)
        out.append(target)
    with pytest.raises(GeometryError, match="tilt"):
        load_series(out, on_irregular="refuse")
    vol = load_series(out)
    assert any("tilt" in w for w in vol.warnings)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)
    k = 5
    np.testing.assert_allclose(vol.array[k, 2 * k + 10: 400], full.array[k, 10: 400 - 2 * k],
                               atol=1e-3)


def test_mixed_orientation_keeps_largest_group(shared_data: Path, tmp_path: Path) -> None:
    files = copy_files(dcm_files(ct_dir(shared_data)), tmp_path / "ori")
    rewrite(files[3], files[3], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(GeometryError, match="orientation"):
        load_series(files, on_irregular="refuse")
    vol = load_series(files)
    assert any("mixed orientations" in w for w in vol.warnings)
    assert files[3].as_posix() not in vol.source.files


def test_compressed_syntaxes_decode_identically() -> None:
    ref = load_series([shipped_file("MR_small.dcm")]).array
    for name in ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_jpeg_ls_lossless.dcm"]:
        np.testing.assert_array_equal(load_series([shipped_file(name)]).array, ref)


def test_monochrome1_is_inverted_and_cr_is_one_slice() -> None:
    cr = shipped_file("CT_small.dcm").parent / "dicomdirtests" / "77654033" / "CR1" / "6154"
    ds = pydicom.dcmread(cr)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    vol = load_series([cr])
    assert vol.shape == (1, int(ds.Rows), int(ds.Columns)) and vol.modality == "CR"
    raw = ds.pixel_array.astype(np.float64)
    corr = np.corrcoef(raw.ravel(), vol.array.ravel())[0, 1]
    assert corr < -0.99
    assert any("MONOCHROME1" in w for w in vol.warnings)


def test_enhanced_multiframe_ct() -> None:
    path = shipped_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = load_series([path])
    assert vol.shape == (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    assert vol.units == "HU"
    pf = ds.PerFrameFunctionalGroupsSequence
    iop = [float(v) for v in
           ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])
    positions = [np.array([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
                 for f in pf]
    along = [float(p @ normal) for p in positions]
    frame = int(np.argmin(along))  # the volume starts with the lowest position along the normal
    np.testing.assert_allclose(vol.origin, positions[frame], atol=1e-4)
    np.testing.assert_allclose(vol.direction[:, 2], normal, atol=1e-9)
    assert vol.spacing[2] == pytest.approx(abs(along[1] - along[0]))
    groups = [pf[frame], ds.SharedFunctionalGroupsSequence[0]]
    t = next(g.PixelValueTransformationSequence[0] for g in groups
             if "PixelValueTransformationSequence" in g)
    expected = ds.pixel_array[frame] * float(t.RescaleSlope) + float(t.RescaleIntercept)
    np.testing.assert_allclose(vol.array[0], expected, atol=1e-3)


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    bomb = rewrite(shipped_file("MR_small_jp2klossless.dcm"), tmp_path / "bomb.dcm",
                   Rows=60000, Columns=60000, NumberOfFrames=500)
    with pytest.raises(DicomReadError, match="too large"):
        load_series([bomb])


def test_unreadable_files_are_left_out_with_a_warning(shared_data: Path, tmp_path: Path) -> None:
    files = copy_files(dcm_files(ct_dir(shared_data))[:4], tmp_path / "s")
    junk = tmp_path / "s" / "junk.dcm"
    junk.write_bytes(b"\0" * 128 + b"DICMgarbage")
    vol = load_series([*files, junk])
    assert vol.shape[0] == 4 and any("unreadable" in w for w in vol.warnings)
    with pytest.raises(DicomReadError):
        load_series([junk])
