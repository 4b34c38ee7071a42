"""A run that fails before its first checkpoint leaves no dead run folder behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.data import DataError, ImageFolderDataset
from medgan_desktop.core.training.loop import train


def _folder(root: Path, n: int = 8) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / f"{i}.png")
    return root


class _Broken(ImageFolderDataset):
    """Reads like a folder dataset, but every image fails to decode."""

    def __getitem__(self, i: Any) -> Any:
        raise DataError("cannot read image broken.png")


def _cfgs(data: Path) -> tuple[MethodConfig, TrainConfig]:
    t = TrainConfig(steps=4, batch_size=4, checkpoint_every=2, sample_every=0, log_every=1,
                    device="cpu", threads=1, data=DataConfig(path=str(data), size=16))
    return MethodConfig(size=16, channels=1, latent_dim=8, base_filters=8), t


def test_failed_new_run_removes_its_folder(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    ds = _Broken(data, size=16, channels=1)
    m, t = _cfgs(data)
    with pytest.raises(DataError):
        train("dcgan", m, t, ds, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    # The same folder can be used again at once.
    summary = train("dcgan", m, t, ImageFolderDataset(data, size=16, channels=1), tmp_path / "run")
    assert summary.step == 4 and (tmp_path / "run" / "run.json").is_file()


def test_failed_start_keeps_files_that_were_there(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    m, t = _cfgs(data)
    with pytest.raises(DataError):
        train("dcgan", m, t, _Broken(data, size=16, channels=1), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_failure_after_a_checkpoint_keeps_the_run(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    m, t = _cfgs(data)

    def fail_at_step_3(p: Any) -> None:
        if p.done == 3:  # after the step-2 checkpoint
            raise RuntimeError("simulated failure")

    with pytest.raises(RuntimeError, match="simulated"):
        train("dcgan", m, t, ImageFolderDataset(data, size=16, channels=1), tmp_path / "run",
              progress=fail_at_step_3)
    assert (tmp_path / "run" / "run.json").is_file()
    assert any((tmp_path / "run" / "checkpoints").iterdir())
