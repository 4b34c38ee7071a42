"""Model outputs as pictures: [-1, 1] images to 8-bit, tiled grids, deterministic PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from medgan_desktop.core.types import PixelArray


def to_uint8(images: PixelArray) -> NDArray[np.uint8]:
    """[-1, 1] -> 0..255 (same shape)."""
    return np.clip(np.round((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_display(image: PixelArray) -> NDArray[np.uint8]:
    """One ``(C, H, W)`` image as ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 for display/PNG."""
    u = to_uint8(image)
    return u[0] if u.shape[0] == 1 else np.ascontiguousarray(u.transpose(1, 2, 0))


def grid(images: PixelArray, ncol: int | None = None, pad: int = 2) -> NDArray[np.uint8]:
    """Tile ``(n, C, H, W)`` images in [-1, 1] into one uint8 image (grey or RGB)."""
    n, c, h, w = images.shape
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    u = to_uint8(images)
    out = np.zeros((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        out[:, y0 : y0 + h, x0 : x0 + w] = u[i]
    return out[0] if c == 1 else np.ascontiguousarray(out.transpose(1, 2, 0))


def png_bytes(array: NDArray[np.uint8], text: Mapping[str, str] | None = None) -> bytes:
    """Encode a grey or RGB uint8 array as PNG deterministically (no timestamps).

    ``text`` goes into tEXt chunks (``Description``, ``Software``...): the provenance of a
    synthetic image travels inside the file.
    """
    from PIL.PngImagePlugin import PngInfo

    info = None
    if text:
        info = PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=6, pnginfo=info)
    return buf.getvalue()


def png_text(path: str) -> dict[str, str]:
    """The tEXt chunks of a PNG file (empty when none)."""
    with Image.open(path) as img:
        return {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
