"""Display windowing: radiology window presets and value -> 8-bit grey mapping.

A window is given as ``(width, level)`` (DICOM Window Width / Window Center) in the
volume's units (HU for CT). Values below ``level - width/2`` show black, above
``level + width/2`` white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from medgan_desktop.core.types import JsonObject, PixelArray


@dataclass(frozen=True)
class WindowPreset:
    """A named display window.

    Args:
        name: label shown in the viewer's preset list.
        width: window width (same units as the image, HU for CT).
        level: window centre.
    """

    name: str
    width: float
    level: float


#: CT presets (HU), in the order a radiologist expects them in a menu.
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Brain", 80.0, 40.0),
    WindowPreset("Subdural", 200.0, 75.0),
    WindowPreset("Stroke", 40.0, 40.0),
    WindowPreset("Bone", 2000.0, 500.0),
    WindowPreset("Lung", 1500.0, -600.0),
    WindowPreset("Soft tissue / abdomen", 400.0, 40.0),
    WindowPreset("Mediastinum", 350.0, 50.0),
)

#: The label of the percentile-based automatic window (MR, or anything without HU).
AUTO_PRESET_NAME = "Auto (percentiles)"

_DEFAULT_CT = CT_PRESETS[5]
_MAX_SAMPLE = 2_000_000


def ct_preset(name: str) -> WindowPreset:
    """Find a CT preset by (case-insensitive) name or its first word.

    Raises:
        KeyError: no preset of that name.
    """
    key = name.strip().lower()
    for p in CT_PRESETS:
        if p.name.lower() == key or p.name.lower().split(" ")[0] == key:
            return p
    raise KeyError(f"no CT window preset named {name!r}")


def apply_window(
    arr: PixelArray,
    width: float,
    level: float,
    invert: bool = False,
) -> NDArray[np.uint8]:
    """Map values to 0..255 through the window ``(width, level)``.

    Args:
        arr: image of any shape and numeric dtype.
        width: window width (> 0; smaller values are treated as 1e-6).
        level: window centre.
        invert: show high values dark.

    Returns:
        uint8 array of the same shape.
    """
    w = max(float(width), 1e-6)
    lo = float(level) - w / 2.0
    scale = np.float32(255.0 / w)
    out = np.subtract(arr, np.float32(lo), dtype=np.float32)
    out *= scale
    np.clip(out, 0.0, 255.0, out=out)
    if invert:
        np.subtract(np.float32(255.0), out, out=out)
    out += np.float32(0.5)
    grey: NDArray[np.uint8] = out.astype(np.uint8)
    return grey


def _sample(arr: PixelArray) -> PixelArray:
    flat = np.asarray(arr).reshape(-1)
    if flat.size > _MAX_SAMPLE:
        flat = flat[:: flat.size // _MAX_SAMPLE + 1]
    return flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat


def auto_window(arr: PixelArray, p_lo: float = 1.0, p_hi: float = 99.5) -> tuple[float, float]:
    """A window spanning the ``p_lo``..``p_hi`` percentiles of the data (MR has no fixed scale).

    Large arrays are subsampled so this stays fast. Returns ``(width, level)``.
    """
    s = _sample(arr)
    if s.size == 0:
        return 1.0, 0.0
    lo, hi = (float(v) for v in np.percentile(s, [p_lo, p_hi]))
    if hi <= lo:
        hi = lo + 1.0
    return hi - lo, (hi + lo) / 2.0


def default_window(
    arr: PixelArray,
    modality: str = "",
    units: str = "",
    meta: JsonObject | None = None,
) -> tuple[float, float]:
    """The window a viewer opens with: the file's own window, CT soft tissue, or auto.

    Args:
        arr: the voxels.
        modality: DICOM modality.
        units: "HU" for rescaled CT.
        meta: volume metadata; ``window_width``/``window_center`` are used when present.

    Returns:
        ``(width, level)``.
    """
    meta = meta or {}
    try:
        w = float(meta["window_width"])
        c = float(meta["window_center"])
        if w > 0:
            return w, c
    except (KeyError, TypeError, ValueError):
        pass
    if is_hu(modality, units):
        return _DEFAULT_CT.width, _DEFAULT_CT.level
    return auto_window(arr)


def is_hu(modality: str, units: str) -> bool:
    """Whether values are Hounsfield units (CT presets apply)."""
    return units.upper() == "HU" or modality.upper() == "CT"


def presets_for(modality: str, units: str) -> list[WindowPreset]:
    """The presets that make sense for a volume (CT presets only for HU data)."""
    return list(CT_PRESETS) if is_hu(modality, units) else []
