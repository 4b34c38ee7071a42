"""Training autocast: bfloat16 on CUDA when supported, on the CPU only on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medgan_desktop.core.training import devices
from medgan_desktop.core.training.devices import autocast_settings


def test_cpu_is_fp32_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_supported", lambda: True)
    assert autocast_settings(torch.device("cpu"), amp=True) == (False, torch.bfloat16)
    assert autocast_settings(torch.device("cpu"), amp=True, cpu_bf16=True) == (True, torch.bfloat16)
    monkeypatch.setattr(devices, "cpu_bf16_supported", lambda: False)
    assert autocast_settings(torch.device("cpu"), amp=True, cpu_bf16=True)[0] is False


def test_other_devices_stay_fp32() -> None:
    assert autocast_settings(torch.device("mps"), amp=True, cpu_bf16=True)[0] is False


def test_cpu_bf16_training_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few real steps under ``cpu_bf16`` autocast give finite losses and a loadable fp32 run.

    The CPU's bfloat16 support is assumed (autocast runs either way, only slower without
    fast kernels), so the loop's autocast is on here whatever the test machine has.
    """
    from medgan_desktop.core.gan.methods.base import MethodConfig
    from medgan_desktop.core.models.runs import load_model
    from medgan_desktop.core.training import loop
    from medgan_desktop.core.training.config import DataConfig, TrainConfig
    from medgan_desktop.core.training.data import ImageFolderDataset
    from medgan_desktop.core.training.loop import train

    monkeypatch.setattr(devices, "cpu_bf16_supported", lambda: True)
    chosen: list[tuple[bool, torch.dtype]] = []

    def spy(*args: object, **kwargs: object) -> tuple[bool, torch.dtype]:
        chosen.append(autocast_settings(*args, **kwargs))  # type: ignore[arg-type]
        return chosen[-1]

    monkeypatch.setattr(loop, "autocast_settings", spy)

    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    ds = ImageFolderDataset(tmp_path, size=16, channels=1)
    tcfg = TrainConfig(steps=3, batch_size=4, checkpoint_every=3, sample_every=0, log_every=1,
                       device="cpu", threads=1, cpu_bf16=True, data=DataConfig(path=str(tmp_path), size=16))
    mcfg = MethodConfig(size=16, channels=1, latent_dim=8, base_filters=8)
    summary = train("dcgan", mcfg, tcfg, ds, tmp_path / "run")
    assert chosen == [(True, torch.bfloat16)]  # the config flag reached the loop's autocast
    assert summary.step == 3
    assert all(np.isfinite(v) for v in summary.losses.values())
    model = load_model(tmp_path / "run")
    assert next(model.method.networks()["G"].parameters()).dtype == torch.float32  # weights stay fp32


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "cgan", "stylegan2", "progressive"])
def test_every_synthesis_method_steps_under_bfloat16_autocast(name: str) -> None:
    """The autocast the loop applies (CUDA amp, or cpu_bf16) must not break a method's step."""
    from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, get_method

    cls = get_method(name)
    cond = cls.requires_labels
    cfg = MethodConfig(size=16, channels=1, latent_dim=16, base_filters=8, num_classes=2 if cond else 0)
    torch.manual_seed(0)
    m = cls(cfg, torch.device("cpu"))
    m.train()
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    labels = torch.tensor([0, 1, 0, 1]) if cond else None
    for step in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = m.train_step(Batch(target=real, labels=labels), step)
        assert all(np.isfinite(v) for v in losses.values()), losses
    for net in m.networks().values():
        assert all(p.dtype == torch.float32 for p in net.parameters())


@pytest.mark.parametrize("name", ["pix2pix", "unet_l1", "cyclegan", "unit", "distilled"])
def test_every_translation_method_steps_under_bfloat16_autocast(name: str) -> None:
    from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, get_method

    cfg = MethodConfig(size=16, in_channels=1, channels=1, base_filters=4, extra={"depth": 3})
    torch.manual_seed(0)
    m = get_method(name)(cfg, torch.device("cpu"))
    if name == "distilled":
        m.provide({"teacher": torch.nn.Conv2d(1, 1, 3, padding=1)})
    m.train()
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    y = torch.rand(4, 1, 16, 16) * 2 - 1
    for step in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = m.train_step(Batch(target=y, source=x), step)
        assert all(np.isfinite(v) for v in losses.values()), losses
