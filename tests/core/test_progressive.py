"""Progressive growing: schedule, shapes, fade-in, training, exact resume."""

from __future__ import annotations

import pytest
import torch

from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, get_method
from medgan_desktop.core.gan.methods.progressive import Progressive, stage_at, steps_to_full_size
from medgan_desktop.core.gan.networks.progressive import ProgressiveDiscriminator, ProgressiveGenerator


def test_schedule_is_monotone_and_reaches_full_size() -> None:
    p = 10
    assert stage_at(0, 64, p) == (8, 1.0)
    assert stage_at(9, 64, p) == (8, 1.0)
    assert stage_at(10, 64, p) == (16, 0.0)
    assert stage_at(15, 64, p) == (16, 0.5)
    assert stage_at(20, 64, p) == (16, 1.0)
    assert stage_at(30, 64, p) == (32, 0.0)
    full = steps_to_full_size(64, p)
    assert stage_at(full, 64, p) == (64, 1.0)
    assert stage_at(full - 1, 64, p)[1] < 1.0
    assert stage_at(10**6, 64, p) == (64, 1.0)
    prev = (0, 0.0)
    for s in range(full + 5):
        r, a = stage_at(s, 64, p)
        assert (r, a) >= prev
        prev = (r, a)
    with pytest.raises(ValueError):
        stage_at(0, 48, p)


@pytest.mark.parametrize(("size", "channels"), [(64, 1), (128, 3), (256, 1)])
def test_network_shapes_every_stage(size: int, channels: int) -> None:
    g = ProgressiveGenerator(size=size, channels=channels, latent_dim=8, base_filters=4)
    d = ProgressiveDiscriminator(size=size, channels=channels, base_filters=4)
    z = torch.randn(2, 8)
    for res in g.res_list:
        for alpha in (0.5, 1.0):
            g.set_stage(res, alpha)
            low = g(z, full_size=False)
            assert low.shape == (2, channels, res, res)
            assert g(z).shape == (2, channels, size, size)
            out = d(low, alpha=alpha)
            assert out.shape == (2,) and torch.isfinite(out).all()


def test_fade_in_blends_previous_resolution() -> None:
    torch.manual_seed(0)
    g = ProgressiveGenerator(size=32, latent_dim=8, base_filters=8)
    z = torch.randn(2, 8)
    g.set_stage(8, 1.0)
    eight = g(z, full_size=False)
    g.set_stage(16, 0.0)
    start = g(z, full_size=False)
    assert torch.allclose(
        start, torch.nn.functional.interpolate(eight, scale_factor=2.0), atol=1e-6
    )
    g.set_stage(16, 1.0)
    assert not torch.allclose(g(z, full_size=False), start)


def _method(phase: int = 2, ema: float = 0.9) -> Progressive:
    cfg = Progressive.default_config(
        size=32, latent_dim=8, base_filters=8, ema_decay=ema, extra={"phase_steps": phase}
    )
    torch.manual_seed(0)
    return Progressive(cfg, torch.device("cpu"))


def _batch(step: int) -> Batch:
    g = torch.Generator().manual_seed(1000 + step)
    return Batch(target=torch.rand(4, 1, 32, 32, generator=g) * 2 - 1)


def test_registered_and_trains_through_all_stages() -> None:
    assert get_method("progressive") is Progressive
    m = _method()
    w0 = [p.detach().clone() for p in m.G.parameters()]
    stages = []
    for step in range(steps_to_full_size(32, 2) + 1):
        losses = m.train_step(_batch(step), step)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        stages.append((losses["resolution"], losses["alpha"]))
    assert stages[0] == (8.0, 1.0) and stages[-1] == (32.0, 1.0)
    assert any(a < 1.0 for _, a in stages)
    assert any(not torch.equal(a, p) for a, p in zip(w0, m.G.parameters(), strict=True))
    assert m.ema is not None and m.ema.shadow.stage == (32, 1.0)
    imgs = m.generate(3, torch.Generator().manual_seed(4))
    assert imgs.shape == (3, 1, 32, 32)
    assert torch.equal(imgs, m.generate(3, torch.Generator().manual_seed(4)))


def test_resume_is_exact_and_stage_depends_only_on_step() -> None:
    def run(steps: range, m: Progressive) -> None:
        for s in steps:
            torch.manual_seed(s)
            m.train_step(_batch(s), s)

    full = _method()
    run(range(6), full)

    part = _method()
    run(range(3), part)
    nets = {
        k: {n: t.clone() for n, t in v.state_dict().items()} for k, v in part.networks().items()
    }
    opts = {k: o.state_dict() for k, o in part.optimizers().items()}
    resumed = _method()
    resumed.G.set_stage(8, 1.0)  # a stale stage must not matter: the step decides
    for k, v in resumed.networks().items():
        v.load_state_dict(nets[k])
    for k, o in resumed.optimizers().items():
        o.load_state_dict(opts[k])
    run(range(3, 6), resumed)
    for name, net in full.networks().items():
        for (n, a), b in zip(
            net.state_dict().items(), resumed.networks()[name].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), f"{name}.{n} differs after resume"
    assert resumed.G.stage == stage_at(5, 32, 2)


def test_conditional_progressive() -> None:
    cfg = MethodConfig(
        size=16, latent_dim=8, base_filters=8, num_classes=2, extra={"phase_steps": 1, "loss": "ns"}
    )
    m = Progressive(cfg, torch.device("cpu"))
    labels = torch.tensor([0, 1, 0, 1])
    for s in range(3):
        losses = m.train_step(Batch(target=torch.rand(4, 1, 16, 16) * 2 - 1, labels=labels), s)
        assert "gp" not in losses
    a = m.generate(2, torch.Generator().manual_seed(0), labels=torch.tensor([0, 0]))
    b = m.generate(2, torch.Generator().manual_seed(0), labels=torch.tensor([1, 1]))
    assert a.shape == (2, 1, 16, 16) and not torch.allclose(a, b)
