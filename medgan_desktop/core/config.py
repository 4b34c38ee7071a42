"""Application settings and paths, resolved in one place.

The data directory defaults to the platform's user data directory and can be
moved with the ``MEDGAN_DATA_DIR`` environment variable (tests and portable
installs use that). Nothing here touches Qt.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

from medgan_desktop import APP_NAME, ORGANIZATION


def install_root() -> Path:
    """The folder holding ``models/`` and ``resources/`` (source tree or PyInstaller bundle)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AppPaths:
    """Every folder and file the application reads or writes.

    Args:
        data_dir: per-user writable folder (index, runs, logs, user models, sample study).
        install_dir: read-only folder with shipped ``models/`` and ``resources/``.
    """

    data_dir: Path
    install_dir: Path = field(default_factory=install_root)

    @classmethod
    def default(cls) -> AppPaths:
        env = os.environ.get("MEDGAN_DATA_DIR")
        base = Path(env) if env else Path(user_data_dir(APP_NAME, ORGANIZATION))
        return cls(data_dir=base)

    @property
    def index_db(self) -> Path:
        return self.data_dir / "index.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def user_models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def sample_study_dir(self) -> Path:
        return self.data_dir / "sample_study"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def shipped_models_dir(self) -> Path:
        return self.install_dir / "models"

    @property
    def resources_dir(self) -> Path:
        return self.install_dir / "resources"

    def ensure(self) -> AppPaths:
        """Create the writable folders and return self."""
        for d in (self.data_dir, self.runs_dir, self.log_dir, self.user_models_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class Settings:
    """Typed application settings (persisted by the GUI through QSettings)."""

    paths: AppPaths
    device: str = "auto"
    torch_threads: int = 0  # 0: leave one core for the GUI
    theme: str = "dark"

    @classmethod
    def default(cls) -> Settings:
        return cls(paths=AppPaths.default())
