"""StyleGAN2 networks and method: shapes, conditioning, truncation, determinism, training."""

from __future__ import annotations

import pytest
import torch

from medgan_desktop.core.gan.methods.base import Batch, get_method
from medgan_desktop.core.gan.methods.stylegan2 import StyleGAN2
from medgan_desktop.core.gan.networks.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


@pytest.mark.parametrize(("size", "channels"), [(64, 1), (128, 3), (256, 1)])
def test_network_shapes(size: int, channels: int) -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(
        size=size, channels=channels, latent_dim=16, base_filters=4, mapping_layers=2
    )
    d = StyleGAN2Discriminator(size=size, channels=channels, base_filters=4)
    img = g(torch.randn(2, 16))
    assert img.shape == (2, channels, size, size)
    assert torch.isfinite(img).all()
    out = d(img)
    assert out.shape == (2,)
    assert torch.isfinite(out).all()


def test_conditional_networks_need_and_use_labels() -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(size=32, channels=3, latent_dim=16, base_filters=8, num_classes=2)
    d = StyleGAN2Discriminator(size=32, channels=3, base_filters=8, num_classes=2)
    z = torch.randn(2, 16)
    a = g(z, torch.tensor([0, 0]), noise_mode="const")
    b = g(z, torch.tensor([1, 1]), noise_mode="const")
    assert not torch.allclose(a, b)
    assert not torch.allclose(d(a, torch.tensor([0, 0])), d(a, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="labels"):
        g(z)
    with pytest.raises(ValueError, match="labels"):
        d(a)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(size=48)


def _method(**extra: object) -> StyleGAN2:
    cfg = StyleGAN2.default_config(
        size=32,
        channels=1,
        latent_dim=16,
        base_filters=8,
        lr_g=0.01,
        lr_d=0.01,
        ema_decay=0.9,
        extra={"mapping_layers": 2, "r1_interval": 2, **extra},
    )
    torch.manual_seed(0)
    return StyleGAN2(cfg, torch.device("cpu"))


def test_registered() -> None:
    assert get_method("stylegan2") is StyleGAN2


def test_train_steps_finite_and_update_weights() -> None:
    m = _method(pl_weight=2.0, pl_interval=2, ada=True, ada_speed=0.05)
    m.train()
    g0 = [p.detach().clone() for p in m.G.parameters()]
    d0 = [p.detach().clone() for p in m.D.parameters()]
    ema0 = m.ema.shadow.const.detach().clone() if m.ema else None
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    seen: set[str] = set()
    for step in range(3):
        losses = m.train_step(Batch(target=real), step)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        seen |= set(losses)
    assert {"d", "g", "r1", "pl", "ada_p"} <= seen
    assert any(not torch.equal(a, p) for a, p in zip(g0, m.G.parameters(), strict=True))
    assert any(not torch.equal(a, p) for a, p in zip(d0, m.D.parameters(), strict=True))
    assert ema0 is not None and m.ema is not None
    assert not torch.equal(ema0, m.ema.shadow.const)
    assert float(m.G.mapping.w_avg.abs().sum()) > 0  # w_avg tracked while training
    assert float(m.aug_state.ada_p) == pytest.approx(m.ada.p if m.ada else -1)


def test_truncation_zero_gives_average_image_and_seed_determinism() -> None:
    m = _method()
    m.train()
    m.train_step(Batch(target=torch.rand(4, 1, 32, 32) * 2 - 1), 0)
    m.train(False)
    imgs = m.generate(3, torch.Generator().manual_seed(1), truncation=0.0)
    assert torch.allclose(imgs[0], imgs[1], atol=1e-6) and torch.allclose(
        imgs[0], imgs[2], atol=1e-6
    )
    a = m.generate(3, torch.Generator().manual_seed(5))
    b = m.generate(3, torch.Generator().manual_seed(5))
    c = m.generate(3, torch.Generator().manual_seed(6))
    assert a.shape == (3, 1, 32, 32)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a[0], a[1])
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0


def test_conditional_method_generates_per_label() -> None:
    cfg = StyleGAN2.default_config(
        size=32, latent_dim=16, base_filters=8, num_classes=2, extra={"mapping_layers": 1}
    )
    m = StyleGAN2(cfg, torch.device("cpu"))
    losses = m.train_step(
        Batch(target=torch.rand(4, 1, 32, 32) * 2 - 1, labels=torch.tensor([0, 1, 0, 1])), 0
    )
    assert torch.isfinite(torch.tensor(losses["d"]))
    g = torch.Generator().manual_seed(0)
    x0 = m.generate(2, torch.Generator().manual_seed(0), labels=torch.tensor([0, 0]))
    x1 = m.generate(2, torch.Generator().manual_seed(0), labels=torch.tensor([1, 1]))
    assert not torch.allclose(x0, x1)
    assert m.generate(2, g).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="labels"):
        m.train_step(Batch(target=torch.zeros(2, 1, 32, 32)), 1)


def test_ada_state_survives_weight_round_trip() -> None:
    m = _method(ada=True, ada_speed=0.05)
    for step in range(4):
        m.train_step(Batch(target=torch.rand(4, 1, 32, 32) * 2 - 1), step)
    assert m.ada is not None
    assert 0.0 <= m.ada.p <= 4 * 4 * 0.05 + 1e-9  # four updates at most, one adjustment
    m.ada.p = 0.37
    m.aug_state.save_ada(m.ada)
    state = {k: v.clone() for k, v in m.aug_state.state_dict().items()}
    m2 = _method(ada=True, ada_speed=0.05)
    m2.aug_state.load_state_dict(state)
    assert m2.ada is not None and m2.ada.p == 0.0
    m2.aug_state.load_ada(m2.ada)
    assert m2.ada.p == pytest.approx(0.37)
