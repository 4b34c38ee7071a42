"""Generator EMA: the step-based ramp-up follows the generator early and is exact on resume."""

from __future__ import annotations

import torch
from torch import nn

from medgan_desktop.core.gan.ema import EMA


def _net(value: float) -> nn.Module:
    net = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(value)
    return net


def test_rampup_follows_the_generator_early() -> None:
    g = _net(0.0)
    ema = EMA(g, decay=0.999)
    with torch.no_grad():
        g.weight.fill_(1.0)
    ema.update(g, step=0)  # effective decay min(0.999, 1/10) = 0.1
    assert torch.allclose(ema.shadow.weight, torch.full_like(g.weight, 0.9))


def test_no_rampup_without_step_or_when_disabled() -> None:
    for ema_kwargs, step in (({}, None), ({"rampup": False}, 0)):
        g = _net(0.0)
        ema = EMA(g, decay=0.99, **ema_kwargs)
        with torch.no_grad():
            g.weight.fill_(1.0)
        ema.update(g, step=step)
        assert torch.allclose(ema.shadow.weight, torch.full_like(g.weight, 0.01))


def test_rampup_reaches_the_configured_decay() -> None:
    g = _net(0.0)
    ema = EMA(g, decay=0.9)
    with torch.no_grad():
        g.weight.fill_(1.0)
    ema.update(g, step=10_000)  # (1 + s) / (10 + s) > 0.9: the configured decay wins
    assert torch.allclose(ema.shadow.weight, torch.full_like(g.weight, 0.1))


def test_rampup_depends_only_on_the_step() -> None:
    """Two averages fed the same (step, weights) agree: a resumed run continues exactly."""
    a_src, b_src = _net(0.0), _net(0.0)
    a, b = EMA(a_src, 0.99), EMA(b_src, 0.99)
    for step in range(5):
        with torch.no_grad():
            a_src.weight.fill_(float(step))
        a.update(a_src, step=step)
    b.load_state_dict(a.state_dict())
    for step in range(5, 8):
        for src, avg in ((a_src, a), (b_src, b)):
            with torch.no_grad():
                src.weight.fill_(float(step))
            avg.update(src, step=step)
    assert torch.equal(a.shadow.weight, b.shadow.weight)
