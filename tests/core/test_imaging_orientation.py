"""Orientation codes, labels and the radiological slice mapping (known-orientation volumes)."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_desktop.core.imaging.orientation import ViewAxis, axis_code, direction_label, slice_mapping
from medgan_desktop.core.volume import Volume

# Directions (columns = i, j, k axis vectors in LPS) covering plain, flipped and permuted storage.
DIRECTIONS = {
    "identity_LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "feet_first": np.diag([1.0, 1.0, -1.0]),
    "coronal_slices": np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]),  # i=L, j=I, k=P
    "sagittal_slices": np.array([[0, 0, -1.0], [1.0, 0, 0], [0, -1.0, 0]]),  # i=P, j=I, k=R
}


def marker_volume(direction: np.ndarray, corner: tuple[int, int, int]) -> tuple[Volume, tuple]:
    """A 10x12x14 volume with one bright voxel at the patient corner ``corner`` (signs in LPS)."""
    shape = (10, 12, 14)
    vol = Volume(np.zeros(shape, np.float32), spacing=(1.0, 2.0, 3.0), direction=direction)
    # the voxel whose position is most extreme along ``corner``
    k, j, i = np.indices(shape)
    pos = np.einsum("pa,a...->p...", vol.affine_lps[:3, :3], np.stack([i, j, k]).astype(float))
    score = sum(c * pos[p] for p, c in enumerate(corner))
    flat = int(np.argmax(score))
    idx = np.unravel_index(flat, shape)
    arr = np.zeros(shape, np.float32)
    arr[idx] = 1000.0
    return vol.with_array(arr), idx


def test_axis_codes_and_labels() -> None:
    assert axis_code(np.eye(3)) == "LPS"
    assert axis_code(DIRECTIONS["RAS"]) == "RAS"
    assert axis_code(DIRECTIONS["coronal_slices"]) == "LIP"
    assert direction_label((1, 0, 0)) == "L"
    assert direction_label((0, -1, 0)) == "A"
    assert direction_label((0.8, -0.6, 0)) == "LA"


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_left_anterior_superior_marker_is_top_right_in_axial(name: str) -> None:
    vol, idx = marker_volume(DIRECTIONS[name], (+1, -1, +1))  # L, A, S
    m = slice_mapping(vol.shape, vol.spacing, vol.direction, ViewAxis.AXIAL)
    assert m.labels == ("A", "P", "R", "L")
    img = m.extract(vol.array, idx[m.slice_axis])
    r, c = np.unravel_index(int(np.argmax(img)), img.shape)
    assert (r, c) == (0, img.shape[1] - 1), f"{name}: marker at {(r, c)} of {img.shape}"


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_coronal_and_sagittal_conventions(name: str) -> None:
    # superior + patient right: top-left in coronal
    vol, idx = marker_volume(DIRECTIONS[name], (-1, 0, +1))
    m = slice_mapping(vol.shape, vol.spacing, vol.direction, "coronal")
    assert m.labels == ("S", "I", "R", "L")
    img = m.extract(vol.array, idx[m.slice_axis])
    assert np.unravel_index(int(np.argmax(img)), img.shape) == (0, 0)
    # superior + anterior: top-left in sagittal
    vol, idx = marker_volume(DIRECTIONS[name], (0, -1, +1))
    m = slice_mapping(vol.shape, vol.spacing, vol.direction, "sagittal")
    assert m.labels == ("S", "I", "A", "P")
    img = m.extract(vol.array, idx[m.slice_axis])
    assert np.unravel_index(int(np.argmax(img)), img.shape) == (0, 0)


def test_screen_voxel_round_trip_and_spacing() -> None:
    vol, idx = marker_volume(DIRECTIONS["sagittal_slices"], (1, 1, 1))
    for view in ViewAxis:
        m = slice_mapping(vol.shape, vol.spacing, vol.direction, view)
        r, c, s = m.from_voxel((idx[2], idx[1], idx[0]))
        img = m.extract(vol.array, int(s))
        assert img[int(r), int(c)] == 1000.0
        assert m.to_voxel(r, c, s) == (idx[2], idx[1], idx[0])
    m = slice_mapping(vol.shape, vol.spacing, vol.direction, "axial")
    # axial: columns run L-R = k axis here (3 mm), rows A-P = i (1 mm), slices S-I = j (2 mm)
    assert (m.col_spacing, m.row_spacing, m.slice_spacing) == (3.0, 1.0, 2.0)


def test_oblique_labels_combine_letters() -> None:
    a = np.deg2rad(30)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    m = slice_mapping((4, 8, 8), (1, 1, 1), rot, "axial")
    assert m.labels[3] == "LP" and m.labels[2] == "RA"
