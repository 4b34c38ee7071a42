"""The translation engine's other tasks: CT -> MR, MR T1 -> T2, low-dose CT denoising and
through-plane super-resolution, each trained for a few steps on tiny real data and used
through the CLI (the same job the GUI runs), with output geometry, marking and model fit
checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medgan_desktop.cli import main
from medgan_desktop.core.imaging.tasks import (
    TASKS,
    get_task,
    interpolate_through_plane,
    low_dose,
    thick_on_thin_grid,
    thick_slices,
)
from medgan_desktop.core.io import open_volume
from medgan_desktop.core.models.runs import load_run
from medgan_desktop.core.volume import Volume

FAST = ["--size", "32", "--steps", "3", "--batch", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def small_ct(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real head CT (HU), shrunk in-plane to 64 x 64 and cut to 36 slices of 1.5 mm."""
    im = sitk.ReadImage(str(shared_data / "head_ct_mr" / "invesalius_cranium_headCT.nii.gz"))
    small = sitk.Shrink(im, [4, 4, 1])[:, :, 40:76]
    out = tmp_path_factory.mktemp("ct") / "head_ct_small.nii.gz"
    sitk.WriteImage(small, str(out))
    return out


@pytest.fixture(scope="module")
def png_patients(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two patients' CT, T1 and T2 slices 8-11 (real, slice-matched PNG)."""
    root = tmp_path_factory.mktemp("png")
    for p in ("01", "02"):
        for m in ("CT", "T1", "T2"):
            d = root / f"Patient_{p}" / m
            d.mkdir(parents=True)
            for f in ("008", "009", "010", "011"):
                shutil.copy(shared_data / "paired_mrct_2d" / f"Patient_{p}" / m / f"{f}.png", d)
    return root


def _train(argv: list[str]) -> None:
    assert main(["translate-train", *argv, *FAST]) == 0


def _heldout(run: Path) -> dict:
    return json.loads((run / "heldout_metrics.json").read_text())


# -- degradations ---------------------------------------------------------------------------------
def test_thick_slices_and_interpolation_keep_the_geometry_exact() -> None:
    arr = np.arange(12, dtype=np.float32)[:, None, None] * np.ones((12, 4, 4), np.float32)
    v = Volume(array=arr, spacing=(0.5, 0.5, 1.0), origin=(0.0, 0.0, 10.0))
    thick = thick_slices(v, 3)
    assert thick.shape == (4, 4, 4) and thick.spacing[2] == 3.0
    assert thick.origin[2] == pytest.approx(11.0)  # the centre of slices 0-2
    np.testing.assert_allclose(thick.array[:, 0, 0], [1, 4, 7, 10])
    fine = interpolate_through_plane(thick, 3)
    assert fine.shape[0] == 10 and fine.spacing[2] == pytest.approx(1.0)
    np.testing.assert_allclose(fine.array[:, 0, 0], np.arange(1, 11))  # exactly on the thin slices
    back = thick_on_thin_grid(v, 3)
    assert back.shape == v.shape
    np.testing.assert_allclose(back.array[1:11, 0, 0], np.arange(1, 11))


def test_low_dose_noise_grows_with_attenuation_and_keeps_the_mean() -> None:
    air = np.full((2, 64, 64), -1000.0, np.float32)
    bone = np.full((2, 64, 64), 1000.0, np.float32)
    v = Volume(array=np.concatenate([air, bone]), modality="CT", units="HU")
    noisy = low_dose(v, 0.25, seed=3).array - v.array
    assert noisy[:2].std() < noisy[2:].std()
    assert abs(float(noisy[2:].mean())) < 5.0
    assert np.array_equal(low_dose(v, 0.25, seed=3).array, low_dose(v, 0.25, seed=3).array)


def test_every_task_is_known_and_unknown_ones_are_named() -> None:
    assert set(TASKS) == {"mr_to_ct", "ct_to_mr", "t1_to_t2", "ct_denoise", "ct_superres"}
    with pytest.raises(ValueError, match="one of mr_to_ct"):
        get_task("mr_to_pet")


# -- presets end to end ---------------------------------------------------------------------------
def test_denoising_trains_scores_against_references_and_refuses_mr(
        small_ct: Path, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "denoise"
    _train(["--task", "ct_denoise", "--method", "unet_l1", "--series", str(small_ct), "--out", str(run)])
    info = load_run(run)
    assert info.preprocessing.task == "ct_denoise" and info.preprocessing.modality_in == "CT"
    held = _heldout(run)
    assert held["task"] == "ct_denoise" and "HU" in held["definition"]
    assert set(held["references"]) == {"noisy input", "Gaussian filter (sigma 1 px)"}
    out = tmp_path / "denoised.nii.gz"
    assert main(["translate", "--input", str(small_ct), "--model", str(run), "--out", str(out)]) == 0
    res = open_volume(out)
    src = open_volume(small_ct)
    assert res.shape == src.shape and res.spacing == pytest.approx(src.spacing) and res.synthetic
    capsys.readouterr()
    # a denoiser is not offered for MR
    assert main(["translate", "--input", str(shared_data / "mridir_phantom" / "MR_T2_DICOM"), "--model",
                 str(run), "--out", str(tmp_path / "no.nii.gz")]) == 2
    assert "translates CT, the series is MR" in capsys.readouterr().err


def test_super_resolution_writes_the_finer_grid_as_marked_dicom(small_ct: Path, tmp_path: Path) -> None:
    run = tmp_path / "sr"
    _train(["--task", "ct_superres", "--method", "unet_l1", "--series", str(small_ct), "--out", str(run)])
    pre = load_run(run).preprocessing
    assert (pre.task, pre.slice_axis, pre.upsample) == ("ct_superres", "coronal", 3)
    held = _heldout(run)
    assert {"linear interpolation", "cubic interpolation"} <= set(held["references"])
    thin = open_volume(small_ct)
    thick = thick_slices(thin, 3)
    thick_file = tmp_path / "thick.nii.gz"
    sitk.WriteImage(thick.to_sitk(), str(thick_file))
    out = tmp_path / "sr_dicom"
    assert main(["translate", "--input", str(thick_file), "--model", str(run), "--out", str(out),
                 "--format", "dicom"]) == 0
    files = sorted(out.rglob("*.dcm"))
    ds = [pydicom.dcmread(f) for f in files]
    assert len(ds) == (thick.shape[0] - 1) * 3 + 1
    z = sorted(float(d.ImagePositionPatient[2]) for d in ds)
    assert np.allclose(np.diff(z), thin.spacing[2], atol=1e-3)  # the thin spacing, no gaps
    assert z[0] == pytest.approx(thick.origin[2], abs=1e-3)  # starts on the first thick slice
    assert all(d.SyntheticData == "YES" and "DERIVED" in d.ImageType and d.Modality == "CT" for d in ds)


def test_t1_to_t2_writes_mr_and_refuses_ct_and_t2(
        png_patients: Path, small_ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "t1t2"
    p1, p2 = png_patients / "Patient_01", png_patients / "Patient_02"
    _train(["--task", "t1_to_t2", "--method", "unet_l1", "--register", "--holdout", "0.5",
            "--pair", str(p1 / "T1"), str(p1 / "T2"), "--pair", str(p2 / "T1"), str(p2 / "T2"),
            "--out", str(run)])
    held = _heldout(run)
    assert "MR display units" in held["definition"] and np.isfinite(held["mae"])
    assert load_run(run).data["applicability"]["weightings"] == ["T1"]
    out = tmp_path / "t2_png"
    assert main(["translate", "--input", str(p1 / "T1"), "--model", str(run), "--out", str(out),
                 "--format", "png"]) == 0
    assert len(list(out.glob("*.png"))) == 4
    capsys.readouterr()
    for wrong, why in ((small_ct, "translates MR, the series is CT"), (p1 / "T2", "the series is T2")):
        assert main(["translate", "--input", str(wrong), "--model", str(run), "--out",
                     str(tmp_path / "no"), "--format", "png"]) == 2
        assert why in capsys.readouterr().err


def test_ct_to_mr_trains_on_registered_pairs(png_patients: Path, tmp_path: Path) -> None:
    run = tmp_path / "ct2mr"
    p1, p2 = png_patients / "Patient_01", png_patients / "Patient_02"
    _train(["--task", "ct_to_mr", "--method", "pix2pix", "--register", "--holdout", "0.5",
            "--pair", str(p1 / "CT"), str(p1 / "T1"), "--pair", str(p2 / "CT"), str(p2 / "T1"),
            "--out", str(run)])
    pre = load_run(run).preprocessing
    assert (pre.task, pre.modality_in, pre.modality_out) == ("ct_to_mr", "CT", "MR")
    assert _heldout(run)["task"] == "ct_to_mr"


def test_task_inputs_are_checked(small_ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = [
        (["--task", "ct_denoise", "--pair", str(small_ct), str(small_ct)], "give the images alone"),
        (["--task", "t1_to_t2", "--series", str(small_ct)], "needs pairs"),
        (["--task", "mr_to_pet", "--series", str(small_ct)], "unknown task"),
    ]
    for argv, why in bad:
        assert main(["translate-train", "--method", "unet_l1", *argv, "--out", str(tmp_path / "r"), *FAST]) == 2
        assert why in capsys.readouterr().err
    # a CT is not an MR for the default task either
    assert main(["translate-train", "--method", "unet_l1", "--series", str(small_ct), "--out",
                 str(tmp_path / "r2"), *FAST]) == 2
    assert "needs pairs" in capsys.readouterr().err


def test_the_residual_network_starts_as_the_identity() -> None:
    import torch

    from medgan_desktop.core.gan.methods._translation import ResidualUNet

    net = ResidualUNet(in_channels=3, out_channels=1, base_filters=4, depth=3)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(net(x), x[:, 1:2])  # the centre slice, unchanged, before any training
