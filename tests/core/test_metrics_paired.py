"""Paired metrics against scikit-image and the SynthRAD formulas on the real MRI-DIR CT."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util.arraycrop import crop

from medgan_desktop.core.imaging.masks import body_mask
from medgan_desktop.core.metrics import paired
from medgan_desktop.core.metrics.paired import SsimWindow, evaluate_pair
from medgan_desktop.core.volume import Volume


@pytest.fixture(scope="module")
def ct_block(shared_data: Path) -> np.ndarray:
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    k = arr.shape[0] // 2
    return arr[k - 4:k + 4, 128:384, 128:384].copy()  # 8 x 256 x 256, real HU


@pytest.fixture(scope="module")
def noisy(ct_block: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return ct_block + rng.normal(0, 40.0, ct_block.shape).astype(np.float32)


def test_uniform_ssim_matches_skimage_2d_and_3d(ct_block, noisy):
    lo = paired.HU_RANGE[0]
    x, y = np.clip(ct_block, lo, 3000) - lo, np.clip(noisy, lo, 3000) - lo
    for a, b in ((x[3], y[3]), (x, y)):
        s, _ = paired.ssim_map(b, a, data_range=4024.0)
        ours = float(crop(s, 3).mean())
        ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=4024.0)
        assert ours == pytest.approx(ref, abs=1e-9)
        assert 0.2 < ours < 0.999


def test_gaussian_ssim_matches_skimage(ct_block, noisy):
    a, b = ct_block[2].astype(np.float64) + 1024, noisy[2].astype(np.float64) + 1024
    s, _ = paired.ssim_map(b, a, 4024.0, SsimWindow.GAUSSIAN)
    ref = structural_similarity(a, b, data_range=4024.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert float(crop(s, 5).mean()) == pytest.approx(ref, abs=1e-9)


def test_masked_ssim_is_synthrad_recipe(ct_block, noisy):
    mask = body_mask(ct_block)
    ours = paired.ssim(noisy, ct_block, mask)
    # SynthRAD ImageMetrics.ssim, written out with scikit-image
    gt = np.clip(ct_block, -1024, 3000).astype(np.float64)
    pr = np.clip(noisy, -1024, 3000).astype(np.float64)
    gt = np.where(mask, gt, -1024) + 1024
    pr = np.where(mask, pr, -1024) + 1024
    _, smap = structural_similarity(gt, pr, data_range=4024.0, full=True)
    expected = smap[3:-3, 3:-3, 3:-3][crop(mask, 3)].mean(dtype=np.float64)
    assert ours == pytest.approx(expected, abs=1e-9)


def test_psnr_mae_me_follow_synthrad_definitions(ct_block, noisy):
    mask = body_mask(ct_block)
    gt = np.clip(ct_block, -1024, 3000)[mask].astype(np.float64)
    pr = np.clip(noisy, -1024, 3000)[mask].astype(np.float64)
    assert paired.psnr(noisy, ct_block, mask) == pytest.approx(
        peak_signal_noise_ratio(gt, pr, data_range=4024.0), abs=1e-9)
    # Gaussian noise of sigma 40 HU: MAE ~ sigma * sqrt(2/pi), ME ~ 0
    assert paired.mae(noisy, ct_block, mask) == pytest.approx(40 * math.sqrt(2 / math.pi), rel=0.02)
    assert abs(paired.mean_error(noisy, ct_block, mask)) < 1.0
    assert paired.mean_error(ct_block + 50.0, ct_block, mask) == pytest.approx(50.0)
    # clipping: an error far above 3000 HU only counts up to 3000 in PSNR
    hot = ct_block.copy()
    hot[mask] = 10000.0
    capped = hot.copy()
    capped[mask] = 3000.0
    assert paired.psnr(hot, ct_block, mask) == pytest.approx(paired.psnr(capped, ct_block, mask))
    assert paired.mae(hot, ct_block, mask) > paired.mae(capped, ct_block, mask)  # MAE unclipped


def test_evaluate_pair_identical_and_noisy(ct_block, noisy):
    ref = Volume(ct_block, spacing=(0.5, 0.5, 2.5), modality="CT", units="HU")
    same = evaluate_pair(ref, ref)
    assert same.mae == 0.0 and same.psnr == math.inf and same.ssim == pytest.approx(1.0)
    assert same.to_dict()["psnr"] is None  # JSON-safe
    rep = evaluate_pair(ref.with_array(noisy), ref)
    d = rep.to_dict()
    assert set(d) >= {"mae", "me", "psnr", "ssim", "ms_ssim", "per_slice", "per_tissue"}
    assert 0 < rep.ssim < 1 and 0 < rep.ms_ssim < 1 and 20 < rep.psnr < 60
    assert len(rep.per_slice) == ct_block.shape[0]
    # tissue classes partition the mask
    assert sum(t["voxels"] for t in rep.per_tissue.values()) == rep.mask_voxels
    assert rep.error is not None
    np.testing.assert_allclose(rep.error.array, noisy - ct_block, atol=1e-3)
    worse = evaluate_pair(ref.with_array(ct_block + 3 * (noisy - ct_block)), ref)
    assert worse.mae > rep.mae and worse.psnr < rep.psnr and worse.ssim < rep.ssim
    assert worse.ms_ssim < rep.ms_ssim


def test_ms_ssim_properties(ct_block, noisy):
    a = ct_block[0].astype(np.float64) + 1024
    assert paired.ms_ssim_2d(a, a) == pytest.approx(1.0)
    b = noisy[0].astype(np.float64) + 1024
    assert 0 < paired.ms_ssim_2d(b, a) < 1


def test_body_mask_covers_object_not_background(ct_block):
    m = body_mask(ct_block)
    assert m.any() and not m.all()
    assert (ct_block[m] > -500).mean() > 0.9  # inside: mostly tissue
    assert (ct_block[~m] < -500).mean() > 0.99  # outside: air


def test_prediction_on_another_grid_is_resampled(ct_block):
    import SimpleITK as sitk

    ref = Volume(ct_block, spacing=(0.5, 0.5, 2.5), modality="CT", units="HU")
    img = ref.to_sitk()
    coarse = sitk.Resample(img, [128, 128, 8], sitk.Transform(), sitk.sitkLinear, img.GetOrigin(),
                           (1.0, 1.0, 2.5), img.GetDirection(), -1024.0, sitk.sitkFloat32)
    pred = Volume.from_sitk(coarse, modality="CT", units="HU")
    assert pred.shape != ref.shape
    rep = evaluate_pair(pred, ref)
    assert rep.error is not None and rep.error.shape == ref.shape
    assert 0 < rep.mae < 150 and rep.ssim > 0.5  # blurred by the coarse grid, not misaligned
