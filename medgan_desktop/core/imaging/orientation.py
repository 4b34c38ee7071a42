"""Patient orientation: axis codes, edge labels and the radiological display mapping.

Patient coordinates are LPS (DICOM): +x towards the patient's Left, +y Posterior,
+z Superior. Axis codes name the direction each voxel axis points *to*, so an
identity direction matrix is ``"LPS"`` (ITK calls the same thing "RAI").

Display convention (radiological):

* axial: patient Right on screen left, Anterior at the top;
* coronal: Superior at the top, patient Right on screen left;
* sagittal: Superior at the top, Anterior on screen left.

:func:`slice_mapping` derives the array axes and flips from the direction
matrix, so a volume stored in any axis order or with flipped axes displays the
same way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.types import FloatArray

_S = TypeVar("_S", bound=np.generic)
_POS = "LPS"
_NEG = "RAI"
_OPPOSITE = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}


class ViewAxis(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# view -> (normal patient axis, (screen-right patient axis, sign), (screen-down axis, sign))
_VIEWS: dict[ViewAxis, tuple[int, tuple[int, int], tuple[int, int]]] = {
    ViewAxis.AXIAL: (2, (0, +1), (1, +1)),  # right: +L, down: +P
    ViewAxis.CORONAL: (1, (0, +1), (2, -1)),  # right: +L, down: -S (inferior)
    ViewAxis.SAGITTAL: (0, (1, +1), (2, -1)),  # right: +P, down: inferior
}


def direction_label(vec: FloatArray | tuple[float, float, float], threshold: float = 0.25) -> str:
    """Letters for a patient direction, dominant first (e.g. ``"L"``, ``"LA"`` if oblique).

    Args:
        vec: a direction in LPS.
        threshold: components smaller than this fraction of the vector length are ignored.
    """
    v = np.asarray(vec, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if n == 0:
        return ""
    v = v / n
    order = np.argsort(-np.abs(v))
    letters = [(_POS if v[a] > 0 else _NEG)[a] for a in order if abs(v[a]) >= threshold]
    return "".join(letters)


def opposite_label(label: str) -> str:
    """``"LA"`` -> ``"RP"``."""
    return "".join(_OPPOSITE[c] for c in label)


def axis_permutation(direction: FloatArray) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The patient axis each voxel axis is closest to, and its sign.

    Returns:
        ``(perm, signs)``: voxel axis ``a`` (0=i, 1=j, 2=k) runs along patient axis
        ``perm[a]`` (0=x/L, 1=y/P, 2=z/S) in direction ``signs[a]`` (+1 or -1).
        The permutation maximises the summed alignment, so oblique volumes get a
        one-to-one assignment.
    """
    d = np.asarray(direction, dtype=np.float64)
    best: tuple[int, ...] = (0, 1, 2)
    best_score = -1.0
    for perm in itertools.permutations(range(3)):
        score = sum(abs(d[perm[a], a]) for a in range(3))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    signs = tuple(1 if d[best[a], a] >= 0 else -1 for a in range(3))
    return (best[0], best[1], best[2]), (signs[0], signs[1], signs[2])


def axis_code(direction: FloatArray) -> str:
    """Three letters naming where the i, j, k axes point (identity -> ``"LPS"``)."""
    perm, signs = axis_permutation(direction)
    return "".join((_POS if s > 0 else _NEG)[p] for p, s in zip(perm, signs, strict=True))


@dataclass(frozen=True)
class SliceMapping:
    """How one view of a volume is cut from its ``(k, j, i)`` array and put on screen.

    Attributes:
        view: which anatomical plane.
        slice_axis: array axis (0=k, 1=j, 2=i) scrolled through.
        row_axis: array axis shown top-to-bottom.
        col_axis: array axis shown left-to-right.
        flip_rows: the row axis runs bottom-to-top on screen.
        flip_cols: the column axis runs right-to-left on screen.
        labels: edge labels ``(top, bottom, left, right)`` from the direction cosines.
        row_spacing: mm between screen rows.
        col_spacing: mm between screen columns.
        slice_spacing: mm between slices.
        n_slices: number of slices.
        n_rows: rows on screen.
        n_cols: columns on screen.
    """

    view: ViewAxis
    slice_axis: int
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    labels: tuple[str, str, str, str]
    row_spacing: float
    col_spacing: float
    slice_spacing: float
    n_slices: int
    n_rows: int
    n_cols: int

    def extract(self, array: NDArray[_S], index: int) -> NDArray[_S]:
        """The 2D slice ``index`` as shown on screen (rows top->bottom); a view, no copy."""
        sl = _take(array, self.slice_axis, index)
        # remaining axes keep their order; transpose when rows come after columns
        if self.row_axis > self.col_axis:
            sl = sl.T
        if self.flip_rows:
            sl = sl[::-1, :]
        if self.flip_cols:
            sl = sl[:, ::-1]
        return sl

    def to_array_index(self, row: float, col: float, index: float) -> tuple[float, float, float]:
        """Screen ``(row, col)`` on slice ``index`` -> array index ``(k, j, i)`` (continuous)."""
        r = self.n_rows - 1 - row if self.flip_rows else row
        c = self.n_cols - 1 - col if self.flip_cols else col
        out = [0.0, 0.0, 0.0]
        out[self.slice_axis] = float(index)
        out[self.row_axis] = float(r)
        out[self.col_axis] = float(c)
        return out[0], out[1], out[2]

    def to_voxel(self, row: float, col: float, index: float) -> tuple[float, float, float]:
        """Screen ``(row, col)`` on slice ``index`` -> voxel index ``(i, j, k)``."""
        k, j, i = self.to_array_index(row, col, index)
        return i, j, k

    def from_voxel(self, ijk: tuple[float, float, float]) -> tuple[float, float, float]:
        """Voxel index ``(i, j, k)`` -> screen ``(row, col, slice index)``."""
        arr = (ijk[2], ijk[1], ijk[0])
        r = arr[self.row_axis]
        c = arr[self.col_axis]
        if self.flip_rows:
            r = self.n_rows - 1 - r
        if self.flip_cols:
            c = self.n_cols - 1 - c
        return float(r), float(c), float(arr[self.slice_axis])


def _take(array: NDArray[_S], axis: int, index: int) -> NDArray[_S]:
    idx: list[slice | int] = [slice(None)] * array.ndim
    idx[axis] = int(index)
    plane: NDArray[_S] = array[tuple(idx)]
    return plane


def slice_mapping(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    direction: FloatArray,
    view: ViewAxis | str,
) -> SliceMapping:
    """Work out how to show ``view`` of a volume in radiological convention.

    Args:
        shape: array shape ``(nk, nj, ni)``.
        spacing: ``(si, sj, sk)`` in mm.
        direction: 3x3, columns are the i/j/k unit vectors in LPS.
        view: axial, coronal or sagittal.
    """
    view = ViewAxis(view)
    d = np.asarray(direction, dtype=np.float64)
    perm, signs = axis_permutation(d)
    normal, (right_ax, right_sign), (down_ax, down_sign) = _VIEWS[view]
    vox_for = {p: a for a, p in enumerate(perm)}  # patient axis -> voxel axis
    col_vox, row_vox, slice_vox = vox_for[right_ax], vox_for[down_ax], vox_for[normal]
    flip_cols = signs[col_vox] != right_sign
    flip_rows = signs[row_vox] != down_sign
    right_vec = d[:, col_vox] * (-1 if flip_cols else 1)
    down_vec = d[:, row_vox] * (-1 if flip_rows else 1)
    right = direction_label(right_vec)
    bottom = direction_label(down_vec)
    labels = (opposite_label(bottom), bottom, opposite_label(right), right)
    return SliceMapping(
        view=view,
        slice_axis=2 - slice_vox,
        row_axis=2 - row_vox,
        col_axis=2 - col_vox,
        flip_rows=flip_rows,
        flip_cols=flip_cols,
        labels=labels,
        row_spacing=float(spacing[row_vox]),
        col_spacing=float(spacing[col_vox]),
        slice_spacing=float(spacing[slice_vox]),
        n_slices=int(shape[2 - slice_vox]),
        n_rows=int(shape[2 - row_vox]),
        n_cols=int(shape[2 - col_vox]),
    )
