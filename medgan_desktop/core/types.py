"""Names for the data the core passes around: arrays by element type, and JSON.

The bottom of the core: every layer may import it, and it imports nothing of the product.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

#: Floats of any precision: float32 pixels, float64 statistics.
FloatArray: TypeAlias = NDArray[np.floating[Any]]
Float32Array: TypeAlias = NDArray[np.float32]
Float64Array: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.integer[Any]]
BoolArray: TypeAlias = NDArray[np.bool_]
UInt8Array: TypeAlias = NDArray[np.uint8]
#: Pixels or voxels as they come: uint8 PNG, int16 DICOM, float32 HU.
PixelArray: TypeAlias = NDArray[np.number[Any]]

#: A JSON object as ``json.loads`` gives it and ``json.dumps`` takes it: keys are strings,
#: values are checked where they are read.
JsonObject: TypeAlias = dict[str, Any]
