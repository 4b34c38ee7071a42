"""CT -> MR registration on the real MRI-DIR phantom and a 2D different-FOV pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from medgan_desktop.core.imaging.registration import register_2d, register_volumes
from medgan_desktop.core.progress import Cancelled, CancelToken
from medgan_desktop.core.volume import Volume


def _phantom(shared_data: Path) -> tuple[Volume, Volume, np.ndarray]:
    d = shared_data / "mridir_phantom"
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(d / "MR_T2_DICOM")))
    mr = sitk.Shrink(r.Execute(), [8, 8, 2])
    ct = sitk.Shrink(sitk.ReadImage(str(d / "CT_native_half_res.nii.gz")), [4, 4, 4])
    ref = sitk.Resample(
        sitk.ReadImage(str(d / "CT_rigid_to_MR_grid.nii.gz")),
        mr,
        sitk.Transform(),
        sitk.sitkLinear,
        -1024,
    )
    return (
        Volume.from_sitk(mr, modality="MR"),
        Volume.from_sitk(ct, modality="CT", units="HU"),
        sitk.GetArrayFromImage(ref),
    )


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_rigid_registration_of_phantom_ct_onto_mr(shared_data: Path) -> None:
    mr, ct, reference = _phantom(shared_data)
    res = register_volumes(mr, ct, try_orientations=True, iterations=60)
    out = res.resampled
    assert out.shape == mr.shape and out.spacing == mr.spacing
    assert out.modality == "CT" and out.units == "HU"
    q = res.quality
    assert q.final_mi > q.initial_mi + 0.1
    assert q.orientation != 0  # the phantom was turned over between the scans
    # Body overlap with the reference registration shipped beside the data.
    assert _dice(out.array > -300, reference > -300) > 0.9
    # As acquired (no orientation search) the overlap is clearly worse.
    unaligned = register_volumes(mr, ct, iterations=5).resampled.array
    assert _dice(unaligned > -300, reference > -300) < _dice(out.array > -300, reference > -300)
    assert out.meta["registration"]["final_mi"] == pytest.approx(q.final_mi)


def test_registration_can_be_cancelled(shared_data: Path) -> None:
    mr, ct, _ = _phantom(shared_data)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        register_volumes(mr, ct, cancel=token)


def test_2d_registration_recovers_scale_and_shift() -> None:
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    fixed = ((xx - 64) ** 2 / 40**2 + (yy - 60) ** 2 / 30**2 < 1).astype(np.float32) * 100
    fixed[50:60, 40:70] = 200  # an asymmetric structure
    fixed = ndimage.gaussian_filter(fixed, 1.5)
    # Moving: the same object zoomed 0.8x and shifted (different FOV), plus noise.
    moving = ndimage.shift(ndimage.zoom(fixed, 0.8, order=1), (20, 12), order=1)
    moving = np.pad(moving, ((0, 128 - moving.shape[0]), (0, 128 - moving.shape[1])))
    moving += np.random.default_rng(0).normal(0, 2, moving.shape).astype(np.float32)
    out, q = register_2d(fixed, moving)
    before = _dice(moving > 50, fixed > 50)
    after = _dice(out > 50, fixed > 50)
    assert out.shape == fixed.shape
    assert before < 0.8 and after > 0.9
    assert q.final_mi > q.initial_mi
    with pytest.raises(ValueError):
        register_2d(fixed[None], moving)
