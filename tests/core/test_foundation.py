"""Foundation checks with no Qt: CLI entry, paths, and the core/Qt import boundary."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medgan_desktop import __version__
from medgan_desktop.cli import main
from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.imaging.intensity import IntensityWindow

REPO = Path(__file__).resolve().parents[2]


def test_cli_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "usage: medgan" in capsys.readouterr().out


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_DATA_DIR", str(tmp_path))
    paths = AppPaths.default().ensure()
    assert paths.index_db.parent == tmp_path
    assert paths.runs_dir.is_dir() and paths.log_dir.is_dir()
    assert (paths.shipped_models_dir.parent / "pyproject.toml").is_file()


def test_intensity_window_round_trip() -> None:
    import numpy as np

    w = IntensityWindow.ct()
    hu = np.array([-1024.0, 0.0, 1000.0, 3000.0], dtype=np.float32)
    assert np.allclose(w.from_unit(w.to_unit(hu)), hu, atol=1e-3)
    assert IntensityWindow.from_dict(w.to_dict()) == w
    mr = IntensityWindow.mr()
    data = np.arange(1000, dtype=np.float32)
    b = mr.resolve(data)
    assert np.allclose(mr.from_unit(mr.to_unit(data, b), b)[10:990], data[10:990], atol=1e-2)


def test_import_linter_catches_qt_in_core(tmp_path: Path) -> None:
    """Prove the contract: a copy of the package with a core module importing PySide6 fails."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed"
    clean = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300,
                           check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    work = tmp_path / "repo"
    shutil.copytree(REPO / "medgan_desktop", work / "medgan_desktop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
    (work / "medgan_desktop" / "core" / "leak.py").write_text("import PySide6.QtCore\n")
    env = {"PYTHONPATH": str(work), "PATH": str(Path(sys.executable).parent)}
    bad = subprocess.run([lint], cwd=work, capture_output=True, text=True, timeout=300, env=env,
                         check=False)
    assert bad.returncode != 0
    assert "BROKEN" in bad.stdout or "broken" in bad.stdout.lower()
