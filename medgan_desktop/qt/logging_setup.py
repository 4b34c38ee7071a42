"""Log file in the user's data directory (rotated), plus stderr for warnings."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Send log records to ``log_dir/medgan.log`` (rotating) and return that path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "medgan.log"
    root = logging.getLogger()
    if not any(getattr(h, "_medgan", False) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
        )
        handler._medgan = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return path
