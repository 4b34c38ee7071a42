"""Resampling between grids by patient coordinates."""

from __future__ import annotations

import numpy as np

from medgan_desktop.core.imaging.resample import (
    difference,
    resample_all_to_reference,
    resample_to_reference,
    reslice_axis_aligned,
    same_grid,
)
from medgan_desktop.core.progress import Cancelled, CancelToken
from medgan_desktop.core.volume import Volume


def _ramp(shape=(6, 8, 10), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None):
    vol = Volume(np.zeros(shape, np.float32), spacing=spacing, origin=origin,
                 direction=np.eye(3) if direction is None else direction, modality="CT", units="HU")
    k, j, i = np.indices(shape)
    pos = np.einsum("pa,a...->p...", vol.affine_lps[:3, :3], np.stack([i, j, k]).astype(float))
    pos += np.asarray(origin, float)[:, None, None, None]
    return vol.with_array((pos[0] + 10 * pos[1] + 100 * pos[2]).astype(np.float32))


def test_resample_matches_patient_positions() -> None:
    ref = _ramp(origin=(2.0, 3.0, 1.0))
    # same function of position, stored flipped and coarser
    mov = _ramp(shape=(8, 12, 14), spacing=(1.0, 1.0, 1.0), origin=(13.0, 14.0, 0.0),
                direction=np.diag([-1.0, -1.0, 1.0]))
    out = resample_to_reference(mov, ref)
    assert same_grid(out, ref)
    assert out.modality == "CT" and out.shape == ref.shape
    np.testing.assert_allclose(out.array, ref.array, atol=1e-3)


def test_outside_is_air_and_same_grid_is_identity() -> None:
    ref = _ramp()
    small = _ramp(shape=(2, 2, 2))
    out = resample_to_reference(small, ref)
    assert out.array[5, 7, 9] == -1024.0
    assert resample_to_reference(ref, ref) is ref


def test_difference_and_reslice() -> None:
    a = _ramp()
    b = a.with_array(a.array - 5.0, synthetic=True)
    d = difference(b, a)
    np.testing.assert_allclose(d.array, -5.0)
    assert d.synthetic
    ang = np.deg2rad(20)
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    obl = _ramp(direction=rot)
    flat = reslice_axis_aligned(obl)
    assert np.allclose(flat.direction, np.eye(3))
    # a voxel in the middle keeps its value (linear function of position)
    centre = flat.index_to_lps(tuple(np.array(flat.shape[::-1]) // 2))
    expected = centre[0] + 10 * centre[1] + 100 * centre[2]
    assert abs(flat.array[tuple(np.array(flat.shape) // 2)] - expected) < 1.0
    assert reslice_axis_aligned(a) is a


def test_resample_all_reports_and_cancels() -> None:
    ref = _ramp()
    other = _ramp(shape=(3, 4, 5), origin=(1.0, 1.0, 1.0))
    reports = []
    out = resample_all_to_reference([ref, other, other], progress=reports.append)
    assert [v.shape for v in out] == [ref.shape] * 3 and out[0] is ref
    assert [(p.done, p.total) for p in reports] == [(1, 2), (2, 2)]
    token = CancelToken()
    token.cancel()
    try:
        resample_all_to_reference([ref, other], cancel=token)
    except Cancelled:
        pass
    else:
        raise AssertionError("cancel was ignored")
