"""Showing real and synthetic items alike, and checking that nothing trivial tells them apart.

A reader study measures whether experts can tell synthetic images from real ones by what
they depict. It measures nothing if the two pools differ in how they are shown: 64 px
synthetic chest films next to 224 px real ones are told apart by their pixelation, an
8-bit PNG next to a 12-bit DICOM by its banding. So every item of a session goes through
one pipeline before a reader sees it:

* the same **matrix**: resampled so the shorter side is one display size for the study
  (by default the smaller of the two pools' median sizes, so nothing is magnified beyond
  what the smaller pool holds; the aspect ratio is kept, nothing is cropped), with the
  same antialiased bilinear interpolation;
* the same **bit depth and windowing**: images that are not CT in HU are mapped to 8 bits
  through their own 0.5-99.5 percentile window; CT stays in whole HU under one window;
* projection images are shown without orientation letters (the viewer's part).

:func:`separability` then looks at the pixels as stored (what the reader sees) and
computes, for a few statistics a reader could pick up without looking at anatomy
(sharpness, noise, brightness, contrast, matrix size), how well each alone separates the
pools (the ROC AUC of the statistic, folded so 0.5 is chance and 1.0 perfect). A
statistic at :data:`WARN_AUC` or above is reported as a warning with the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from medgan_desktop.core.metrics.stats import roc_auc

#: A statistic separating the pools at least this well (folded AUC) is warned about.
WARN_AUC = 0.8
#: Fewer items than this in a pool: the check is reported as not possible.
MIN_ITEMS = 5
#: The display size is never below this (a study of thumbnails reads nothing).
MIN_DISPLAY = 32

INTERPOLATION = "bilinear, antialiased when reducing (Pillow)"
GREY_DEPTH = "8-bit, each image through its 0.5-99.5 percentile window"
HU_DEPTH = "whole HU, one soft-tissue window for every item"


@dataclass(frozen=True)
class Equalisation:
    """How the items of a session were made alike (stored with the session)."""

    display_size: int
    native_real: int
    native_synthetic: int
    interpolation: str = INTERPOLATION
    bit_depth: str = GREY_DEPTH
    orientation_letters: str = "hidden for projection images"
    chosen_by: str = "automatic: the smaller pool's median size"

    def lines(self) -> list[str]:
        """Sentences for the session report."""
        return [
            f"Every item was shown with its shorter side at {self.display_size} px "
            f"(aspect kept; median native shorter side: real {self.native_real} px, "
            f"synthetic {self.native_synthetic} px; {self.chosen_by}).",
            f"Interpolation: {self.interpolation}. Bit depth: {self.bit_depth}.",
            f"Orientation letters: {self.orientation_letters}.",
        ]


@dataclass(frozen=True)
class StatCheck:
    """How well one pixel statistic alone separates real from synthetic items."""

    name: str
    auc: float  # folded: 0.5 chance, 1.0 perfect
    mean_real: float
    mean_synthetic: float

    @property
    def warns(self) -> bool:
        return bool(np.isfinite(self.auc) and self.auc >= WARN_AUC)


@dataclass(frozen=True)
class Fairness:
    """What a session's report says about fairness: the equalisation and the check."""

    equalisation: Equalisation | None
    checks: tuple[StatCheck, ...] = ()
    note: str = ""
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"equalisation": asdict(self.equalisation) if self.equalisation else None,
                "checks": [asdict(c) for c in self.checks], "note": self.note,
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fairness:
        eq = d.get("equalisation")
        return cls(Equalisation(**eq) if isinstance(eq, dict) else None,
                   tuple(StatCheck(**c) for c in d.get("checks", [])), str(d.get("note", "")),
                   tuple(str(w) for w in d.get("warnings", [])))

    def lines(self) -> list[str]:
        """The report: what was equalised, the check, and any warning."""
        out = self.equalisation.lines() if self.equalisation else [
            "Items were shown as read (not equalised): differences in matrix size, "
            "interpolation or bit depth may tell real from synthetic."]
        if self.checks:
            out.append("Separability of trivial pixel statistics (AUC, 0.5 = chance): "
                       + ", ".join(f"{c.name} {c.auc:.2f}" for c in self.checks) + ".")
        if self.note:
            out.append(self.note)
        out.extend(f"WARNING: {w}" for w in self.warnings)
        return out


def native_side(image: NDArray[np.float32]) -> int:
    """The shorter in-plane side of a 2D image or a ``(slices, rows, cols)`` stack."""
    return int(min(image.shape[-2:]))


def display_size(real_sides: Sequence[int], synthetic_sides: Sequence[int], requested: int = 0) -> int:
    """The study's display matrix: ``requested``, else the smaller pool median."""
    if requested:
        return max(MIN_DISPLAY, int(requested))
    med = min(int(np.median(real_sides)), int(np.median(synthetic_sides)))
    return max(MIN_DISPLAY, med)


def _resize(img: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.float32]:
    if img.shape == shape:
        return img.astype(np.float32, copy=True)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    resized = pil.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    out: NDArray[np.float32] = np.asarray(resized, dtype=np.float32)
    return out


def _to_8bit(img: NDArray[np.float32]) -> NDArray[np.float32]:
    flat = img.reshape(-1)[:: max(1, img.size // 2_000_000)]
    lo, hi = (float(v) for v in np.percentile(flat, [0.5, 99.5]))
    scaled = np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * 255.0
    out: NDArray[np.float32] = np.rint(scaled).astype(np.float32)
    return out


def equalise(image: NDArray[np.float32], size: int, hu: bool) -> tuple[NDArray[np.float32], float]:
    """One item through the session's display pipeline.

    Args:
        image: a 2D image or a ``(slices, rows, cols)`` stack.
        size: the display matrix side.
        hu: CT in HU (kept in whole HU) rather than grey values (mapped to 8 bits).

    Returns:
        ``(pixels, scale)``: the equalised pixels and the in-plane resampling factor
        (native side / display side), by which an item's pixel spacing grows.
    """
    rows, cols = image.shape[-2:]
    scale = float(min(rows, cols)) / float(size)
    shape = (max(1, round(rows / scale)), max(1, round(cols / scale)))
    if image.ndim == 2:
        out = _resize(image, shape)
    else:
        out = np.stack([_resize(s, shape) for s in image])
    out = np.rint(out).astype(np.float32) if hu else _to_8bit(out)
    return out, scale


# -- the check ------------------------------------------------------------------------------
def _middle(img: NDArray[np.float32]) -> NDArray[np.float64]:
    a = img[img.shape[0] // 2] if img.ndim == 3 else img
    return np.asarray(a, dtype=np.float64)


def pixel_statistics(image: NDArray[np.float32]) -> dict[str, float]:
    """Statistics a reader could use without looking at anatomy (middle slice of a stack)."""
    a = _middle(image)
    scale = max(float(np.percentile(a, 99.5) - np.percentile(a, 0.5)), 1e-6)
    n = (a - float(np.percentile(a, 0.5))) / scale
    lap = (-4 * n[1:-1, 1:-1] + n[:-2, 1:-1] + n[2:, 1:-1] + n[1:-1, :-2] + n[1:-1, 2:])
    # noise: the median absolute high-pass residual (robust to edges)
    smooth = (n[:-2, 1:-1] + n[2:, 1:-1] + n[1:-1, :-2] + n[1:-1, 2:]) / 4.0
    resid = n[1:-1, 1:-1] - smooth
    return {
        "sharpness": float(np.mean(np.abs(lap))),
        "noise": float(np.median(np.abs(resid - np.median(resid)))),
        "brightness": float(np.mean(n)),
        "contrast": float(np.std(n)),
        "matrix size": float(a.shape[0] * a.shape[1]),
    }


def separability(real: Sequence[dict[str, float]], synthetic: Sequence[dict[str, float]]) -> tuple[tuple[StatCheck, ...], str]:
    """Folded AUC of each statistic between the pools, and a note when too few items."""
    if len(real) < MIN_ITEMS or len(synthetic) < MIN_ITEMS:
        return (), (f"Too few items for the separability check (needs {MIN_ITEMS} per pool; "
                    f"real {len(real)}, synthetic {len(synthetic)}).")
    checks = []
    for name in real[0]:
        r = [s[name] for s in real]
        y = [s[name] for s in synthetic]
        auc = roc_auc(y + r, [1] * len(y) + [0] * len(r))
        folded = max(auc, 1.0 - auc) if np.isfinite(auc) else float("nan")
        if np.allclose(r + y, r[0]):  # identical everywhere (e.g. the equalised matrix)
            folded = 0.5
        checks.append(StatCheck(name, round(float(folded), 3), float(np.mean(r)), float(np.mean(y))))
    return tuple(checks), ""


def warnings_for(checks: Sequence[StatCheck]) -> tuple[str, ...]:
    """One sentence per statistic that separates the pools on its own."""
    out = []
    for c in checks:
        if c.warns:
            more = "synthetic" if c.mean_synthetic > c.mean_real else "real"
            out.append(f"{c.name} alone separates real from synthetic items (AUC {c.auc:.2f}; "
                       f"higher in the {more} pool): readers may tell them apart without "
                       "looking at anatomy. Match the pools (resolution, post-processing) "
                       "before drawing conclusions.")
    return tuple(out)
