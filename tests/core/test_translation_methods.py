"""Translation networks and methods: shapes, one step each, learning, weight files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from medgan_desktop.core.gan.methods._translation import ImagePool
from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, Task, available_methods, get_method
from medgan_desktop.core.gan.networks.patchgan import PatchDiscriminator
from medgan_desktop.core.gan.networks.resnet_gen import ResnetGenerator
from medgan_desktop.core.gan.networks.unet import UNetGenerator, max_depth

CPU = torch.device("cpu")


def _batch(n: int = 2, c_in: int = 1, size: int = 32, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(n, c_in, size, size, generator=g) * 2 - 1
    # A learnable mapping: the target is a contrast inversion of the centre source channel.
    tgt = -src[:, c_in // 2 : c_in // 2 + 1]
    return Batch(target=tgt, source=src, mask=(src[:, :1] > 0).float())


@pytest.mark.parametrize("c_in", [1, 3, 5])
def test_unet_shapes_and_range(c_in: int) -> None:
    net = UNetGenerator(c_in, 1, base_filters=4, depth=max_depth(32))
    y = net(torch.randn(2, c_in, 32, 32))
    assert y.shape == (2, 1, 32, 32)
    assert float(y.abs().max()) <= 1.0
    with pytest.raises(ValueError, match="input channels"):
        net(torch.randn(2, c_in + 1, 32, 32))
    with pytest.raises(ValueError, match="divisible"):
        UNetGenerator(c_in, 1, base_filters=4, depth=3)(torch.randn(1, c_in, 36, 36))


def test_resnet_and_patchgan_shapes() -> None:
    assert ResnetGenerator(3, 1, 8, n_blocks=2)(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    d = PatchDiscriminator(2, 8, n_layers=3)(torch.randn(1, 2, 64, 64))
    assert d.shape[:2] == (1, 1) and d.shape[-1] == 6  # 70x70 patches on a 64 image


def test_registry_lists_translation_methods() -> None:
    names = set(available_methods(Task.TRANSLATION))
    assert {"pix2pix", "cyclegan", "unit", "distilled", "unet_l1"} <= names


@pytest.mark.parametrize(
    ("name", "extra"),
    [("pix2pix", {}), ("unet_l1", {}), ("cyclegan", {"n_blocks": 2}), ("unit", {"n_res": 1})],
)
def test_one_step_and_weights_roundtrip(name: str, extra: dict[str, int], tmp_path) -> None:
    torch.manual_seed(0)
    cfg = MethodConfig(size=32, in_channels=3, base_filters=8, extra=extra)
    m = get_method(name)(cfg, CPU)
    losses = m.train_step(_batch(c_in=3), 0)
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    # Discriminators are trainable again after the step (frozen only during the G step).
    assert all(p.requires_grad for net in m.networks().values() for p in net.parameters())
    m.train(False)
    out = m.translate(_batch(c_in=3).source)
    assert out.shape == (2, 1, 32, 32)
    # Every parameter is saved once: safetensors refuses tied tensors.
    sd = {f"{k}.{p}": v for k, net in m.networks().items() for p, v in net.state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    assert set(load_file(str(tmp_path / "w.safetensors"))) == set(sd)
    with pytest.raises(ValueError, match="expects"):
        m.translate(torch.zeros(1, 1, 32, 32))


def test_pix2pix_discriminator_frozen_during_generator_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    m = get_method("pix2pix")(MethodConfig(size=32, base_filters=8), CPU)
    seen: list[bool] = []
    orig = m.opt_g.step

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        seen.append(any(p.requires_grad for p in m.D.parameters()))
        return orig(*a, **k)

    monkeypatch.setattr(m.opt_g, "step", spy)
    m.train_step(_batch(), 0)
    assert seen == [False]


@pytest.mark.parametrize("name", ["unet_l1", "pix2pix"])
def test_paired_methods_learn_a_mapping(name: str) -> None:
    torch.manual_seed(0)
    m = get_method(name)(
        MethodConfig(size=16, base_filters=8, lr_g=2e-3, extra={"dropout": 0.0}), CPU
    )
    b = _batch(n=4, size=16)
    first = m.train_step(b, 0)["l1"]
    for s in range(1, 60):
        last = m.train_step(b, s)["l1"]
    assert last < 0.6 * first


def test_distilled_student_follows_teacher() -> None:
    torch.manual_seed(0)
    teacher = UNetGenerator(1, 1, base_filters=8, depth=4)
    cfg = MethodConfig(size=16, base_filters=4, lr_g=2e-3, extra={"depth": 4, "lambda_hard": 0.0})
    m = get_method("distilled")(cfg, CPU)
    m.provide({"teacher": teacher})
    b = _batch(n=4, size=16)
    first = m.train_step(b, 0)["soft"]
    for s in range(1, 60):
        last = m.train_step(b, s)["soft"]
    assert last < 0.6 * first
    assert sum(p.numel() for p in m.G.parameters()) < sum(p.numel() for p in teacher.parameters())


def test_distilled_without_teacher_is_a_clear_error() -> None:
    m = get_method("distilled")(MethodConfig(size=16, base_filters=4), CPU)
    with pytest.raises(ValueError, match="teacher"):
        m.train_step(_batch(size=16), 0)


def test_image_pool_returns_old_fakes() -> None:
    pool = ImagePool(size=2, seed=0)
    first = pool.query(torch.zeros(2, 1, 4, 4))
    assert torch.equal(first, torch.zeros(2, 1, 4, 4))
    mixed = torch.cat([pool.query(torch.ones(2, 1, 4, 4)) for _ in range(10)])
    assert 0 < float(mixed.mean()) < 1  # some old zeros come back, some new ones pass
