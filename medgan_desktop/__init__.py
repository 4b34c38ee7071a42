"""medgan_desktop: train and run GANs on a hospital's own medical images."""

from __future__ import annotations

__version__ = "0.1.0"
APP_NAME = "medgan-desktop"
ORGANIZATION = "medgan"

__all__ = ["APP_NAME", "ORGANIZATION", "__version__"]
