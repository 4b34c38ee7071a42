"""DCGAN / LSGAN / WGAN-GP / conditional GAN: shapes at 64/128/256 x 1/3 channels, finite training steps."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_desktop.core.gan import losses
from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, Task, available_methods, get_method
from medgan_desktop.core.gan.networks.dcgan import DCGANDiscriminator, DCGANGenerator

METHODS = ["dcgan", "lsgan", "wgan_gp", "cgan"]


def _cfg(name: str, size: int, channels: int, **kw: object) -> MethodConfig:
    return MethodConfig(
        size=size, channels=channels, latent_dim=16, base_filters=8,
        num_classes=2 if name == "cgan" else 0, **kw,  # type: ignore[arg-type]
    )


def test_registered_as_synthesis() -> None:
    synth = available_methods(Task.SYNTHESIS)
    for name in METHODS:
        assert name in synth and synth[name].task == Task.SYNTHESIS


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(name: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    m = get_method(name)(_cfg(name, size, channels), torch.device("cpu"))
    labels = torch.tensor([0, 1]) if name == "cgan" else None
    out = m.generate(2, generator=torch.Generator().manual_seed(1), labels=labels)
    assert out.shape == (2, channels, size, size)
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    d = m.D(out, labels)
    assert d.shape == (2,)


@pytest.mark.parametrize("name", METHODS)
def test_steps_finite_and_learning(name: str) -> None:
    torch.manual_seed(0)
    m = get_method(name)(_cfg(name, 16, 1), torch.device("cpu"))
    g0 = [p.detach().clone() for p in m.G.parameters()]
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    labels = torch.tensor([0, 1, 0, 1]) if name == "cgan" else None
    for step in range(5):
        out = m.train_step(Batch(target=real, labels=labels), step)
        assert all(math.isfinite(v) for v in out.values()), out
        assert {"d", "g"} <= set(out)
    assert any(not torch.equal(a, b) for a, b in zip(g0, m.G.parameters(), strict=True))
    if name == "wgan_gp":
        assert out["gp"] > 0


def test_cgan_with_small_data_options() -> None:
    torch.manual_seed(0)
    cfg = _cfg("cgan", 16, 1, diffaugment="translation,cutout", ema_decay=0.9, extra={"r1_gamma": 1.0})
    m = get_method("cgan")(cfg, torch.device("cpu"))
    assert "G_ema" in m.networks()
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    out = m.train_step(Batch(target=real, labels=torch.tensor([0, 1, 1, 0])), 0)
    assert out["r1"] >= 0 and math.isfinite(out["d"])
    # EMA moved towards G but is not G
    assert any(not torch.equal(a, b) for a, b in zip(m.G.parameters(), m.ema.shadow.parameters(), strict=True))


def test_cgan_requires_classes_and_labels() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        get_method("cgan")(MethodConfig(size=16, base_filters=8), torch.device("cpu"))
    g = DCGANGenerator(16, 1, 16, 8, num_classes=3, cond="concat")
    assert g(torch.randn(2, 16), torch.tensor([0, 2])).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="labels"):
        g(torch.randn(2, 16))


def test_invalid_size() -> None:
    with pytest.raises(ValueError, match="power of two"):
        DCGANDiscriminator(1, 48)


def test_losses_values() -> None:
    real, fake = torch.tensor([10.0, 10.0]), torch.tensor([-10.0, -10.0])
    assert float(losses.ns_d(real, fake)) < 1e-3  # a perfect discriminator
    assert float(losses.lsgan_d(torch.ones(2), torch.zeros(2))) == 0.0
    assert float(losses.hinge_d(real, fake)) == 0.0
    assert float(losses.wgan_d(real, fake)) == -20.0
    # gradient penalty of a linear critic with unit-norm weights is 0
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0] = 1.0
    gp = losses.gradient_penalty(lambda x: (x * w).sum(dim=(1, 2, 3)), torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2))
    assert abs(float(gp)) < 1e-10
    r1 = losses.r1_penalty(lambda x: 2 * (x * w).sum(dim=(1, 2, 3)), torch.rand(3, 1, 2, 2))
    assert abs(float(r1) - 4.0) < 1e-5
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        losses.adversarial_losses("nope")


def test_presets() -> None:
    wg = get_method("wgan_gp").default_config(size=32)  # type: ignore[attr-defined]
    assert wg.betas == (0.0, 0.9) and wg.lr_g == 1e-4 and wg.size == 32
    assert get_method("dcgan").default_config().betas == (0.5, 0.999)  # type: ignore[attr-defined]
