"""Fusion metrics: SF as defined, SCD rewards a fusion of both sources; both reach the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medgan_desktop.cli import main
from medgan_desktop.core.metrics.evaluate import open_volume
from medgan_desktop.core.metrics.fusion import scd, scd_scaled, spatial_frequency, volume_spatial_frequency


@pytest.fixture(scope="module")
def mr_ct(shared_data: Path):
    """A 6-slice slab of the phantom MR and the CT registered onto its grid."""
    d = shared_data / "mridir_phantom"
    mr = open_volume(d / "MR_T2_DICOM").array[44:50, 128:384, 128:384].astype(np.float64)
    ct = open_volume(d / "CT_rigid_to_MR_grid.nii.gz").array[44:50, 128:384, 128:384]
    return mr, ct.astype(np.float64)


def _unit(a):
    return (a - a.min()) / (a.max() - a.min())


def test_spatial_frequency_matches_its_definition(mr_ct):
    _, ct = mr_ct
    img = ct[2]
    h, w = img.shape
    rf2 = sum((img[i, j] - img[i, j - 1]) ** 2 for i in range(0, h, 1) for j in range(1, w)) / (h * (w - 1))
    cf2 = sum((img[i, j] - img[i - 1, j]) ** 2 for i in range(1, h) for j in range(w)) / ((h - 1) * w)
    assert spatial_frequency(img) == pytest.approx(math.sqrt(rf2 + cf2), rel=1e-9)
    assert spatial_frequency(np.full((9, 9), 5.0)) == 0.0
    assert volume_spatial_frequency(ct) == pytest.approx(np.mean([spatial_frequency(s) for s in ct]))
    assert volume_spatial_frequency(ct[2]) == spatial_frequency(ct[2])


def test_scd_rewards_a_fusion_of_both_sources(mr_ct):
    mr, ct = mr_ct
    fused = 0.5 * (_unit(mr) + _unit(ct))
    both = scd_scaled(fused, mr, ct)
    assert both > scd_scaled(mr, mr, ct) and both > scd_scaled(ct, mr, ct)
    assert both == pytest.approx(scd(_unit(fused), _unit(mr), _unit(ct)))
    # units do not matter: each image is scaled to [0, 1] first
    assert scd_scaled(fused * 3000 - 1024, mr * 0.1, ct + 1024) == pytest.approx(both)
    with pytest.raises(ValueError, match="same shape"):
        scd_scaled(fused[:3], mr, ct)


def test_paired_cli_reports_sf_and_scd_with_sources(mr_ct, tmp_path, capsys):
    mr, ct = mr_ct
    paths = {}
    fused_hu = 0.5 * (_unit(mr) + _unit(ct)) * 4000 - 1024  # a fused image, HU-like range
    for name, arr in (("mr", mr), ("ct", ct), ("fused", fused_hu)):
        paths[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.float32)), str(paths[name]))
    assert main(["evaluate", "--pred", str(paths["ct"]), "--ref", str(paths["ct"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scd"] is None  # translation: no fusion sources, no SCD
    assert d["spatial_frequency_pred"] == pytest.approx(volume_spatial_frequency(ct), rel=1e-5)
    assert d["spatial_frequency_ref"] == pytest.approx(d["spatial_frequency_pred"])
    assert main(["evaluate", "--pred", str(paths["fused"]), "--ref", str(paths["ct"]),
                 "--sources", str(paths["mr"]), str(paths["ct"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scd"] == pytest.approx(scd_scaled(fused_hu.astype(np.float32), mr.astype(np.float32),
                                                ct.astype(np.float32)), rel=1e-5)
    assert d["scd_sources"] == [str(paths["mr"]), str(paths["ct"])]
    assert main(["evaluate", "--pred", str(paths["fused"]), "--ref", str(paths["ct"]),
                 "--sources", str(paths["mr"]), str(paths["ct"])]) == 0
    assert "scd" in capsys.readouterr().out
    small = tmp_path / "small.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(ct[:3].astype(np.float32)), str(small))
    assert main(["evaluate", "--pred", str(paths["fused"]), "--ref", str(paths["ct"]),
                 "--sources", str(paths["mr"]), str(small)]) == 2
    assert "fusion sources" in capsys.readouterr().err
