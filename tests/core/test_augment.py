"""DiffAugment, ADA probability and generator EMA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan_desktop.core.gan.augment import AdaptiveAugment, augment_p, diff_augment


@pytest.mark.parametrize("channels", [1, 3])
def test_diff_augment_shape_and_gradient(channels: int) -> None:
    x = torch.randn(4, channels, 32, 32, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_diff_augment_empty_policy_is_identity() -> None:
    x = torch.randn(2, 1, 16, 16)
    assert diff_augment(x, "") is x
    assert torch.equal(augment_p(x, 0.0, "color,translation,cutout"), x)


def test_diff_augment_reproducible_and_unknown_policy() -> None:
    x = torch.randn(3, 3, 16, 16)
    a = diff_augment(x, "color,translation,cutout,flip", torch.Generator().manual_seed(3))
    b = diff_augment(x, "color,translation,cutout,flip", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        diff_augment(x, "color,warp")


def test_translation_moves_content_and_cutout_zeros_a_quarter() -> None:
    x = torch.ones(8, 1, 16, 16)
    y = diff_augment(x, "cutout", torch.Generator().manual_seed(0))
    zero_frac = (y == 0).float().mean().item()
    assert 0.05 < zero_frac <= 0.25 + 1e-6
    img = torch.zeros(16, 1, 16, 16)
    img[:, :, 8, 8] = 1.0
    moved = diff_augment(img, "translation", torch.Generator().manual_seed(1))
    assert torch.allclose(
        moved.sum(dim=(1, 2, 3)), torch.ones(16)
    )  # a single pixel survives a shift of 2
    assert (moved[:, 0, 8, 8] == 0).any()


def test_augment_p_one_matches_full_and_half_mixes() -> None:
    x = torch.randn(64, 1, 8, 8)
    full = augment_p(x, 1.0, "brightness", torch.Generator().manual_seed(0))
    assert torch.equal(full, diff_augment(x, "brightness", torch.Generator().manual_seed(0)))
    half = augment_p(x, 0.5, "brightness", torch.Generator().manual_seed(0))
    changed = (half != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.2 < changed < 0.8


def test_adaptive_augment_moves_p_towards_target() -> None:
    ada = AdaptiveAugment(target=0.6, speed=1e-2, interval=2)
    for _ in range(10):
        ada.update(torch.ones(8))  # D is sure about every real: overfitting -> p up
    assert ada.p > 0.3
    high = ada.p
    state = ada.state_dict()
    for _ in range(10):
        ada.update(-torch.ones(8))  # D rejects reals -> p down
    assert ada.p < high
    other = AdaptiveAugment(target=0.6, speed=1e-2, interval=2)
    other.load_state_dict(state)
    assert other.p == pytest.approx(high)
    assert 0.0 <= ada.p <= ada.p_max


def test_ema_math_and_state() -> None:
    from medgan_desktop.core.gan.ema import EMA

    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    ema = EMA(net, decay=0.9)
    assert not ema.shadow.training
    assert all(not p.requires_grad for p in ema.shadow.parameters())
    with torch.no_grad():
        net[0].weight.fill_(2.0)
        net[1].running_mean.fill_(5.0)
    ema.update(net)
    assert torch.allclose(ema.shadow[0].weight, torch.full((2, 2), 1.1))
    assert torch.equal(ema.shadow[1].running_mean, torch.full((2,), 5.0))
    ema.update(net)
    assert torch.allclose(ema.shadow[0].weight, torch.full((2, 2), 1.19))
    other = EMA(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadow[0].weight, ema.shadow[0].weight)
    assert net[0].weight[0, 0].item() == 2.0  # the model itself is untouched
    with pytest.raises(ValueError):
        EMA(net, decay=1.0)
