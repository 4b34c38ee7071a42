"""Distillation augmentation: the teacher labels any input, so the student sees warped slices."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_desktop.core.gan.methods.base import Batch, MethodConfig, get_method


def _method(augment: str) -> object:
    cfg = MethodConfig(size=32, in_channels=1, channels=1, base_filters=4,
                       extra={"depth": 3, "augment": augment})
    return get_method("distilled")(cfg, torch.device("cpu"))


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    img = torch.full((4, 1, 32, 32), -1.0)
    img[:, :, 8:24, 10:20] = torch.rand(4, 1, 16, 10) * 2 - 1
    mask = (img > -1).float()
    return img, mask


def test_affine_moves_source_target_and_mask_together() -> None:
    m = _method("affine")
    img, mask = _images()
    torch.manual_seed(1)
    x, y, msk = m._augmented(img.clone(), img.clone(), mask)  # type: ignore[attr-defined]
    assert not torch.allclose(x, img)  # it did move
    assert torch.allclose(x, y)  # the same transform for source and target
    assert msk is not None and set(torch.unique(msk).tolist()) <= {0.0, 1.0}
    assert x.min() >= -1.0 - 1e-6 and x.max() <= 1.0 + 1e-6


def test_intensity_changes_only_the_source() -> None:
    m = _method("intensity")
    img, mask = _images()
    torch.manual_seed(2)
    x, y, _ = m._augmented(img.clone(), img.clone(), mask)  # type: ignore[attr-defined]
    assert torch.equal(y, img)
    assert not torch.allclose(x, img)
    assert torch.equal(x == -1.0, img == -1.0)  # background stays background
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_train_step_with_augmentation_and_an_inline_teacher() -> None:
    m = _method("affine,intensity")
    teacher = torch.nn.Conv2d(1, 1, 3, padding=1)
    m.provide({"teacher": teacher})  # type: ignore[attr-defined]
    img, mask = _images()
    losses = m.train_step(Batch(target=img, source=img, mask=mask), 0)  # type: ignore[attr-defined]
    assert {"soft", "hard", "d", "g"} <= set(losses)
    assert not any(math.isnan(v) for v in losses.values())


def test_unknown_augmentation_is_refused() -> None:
    with pytest.raises(ValueError, match="augment"):
        _method("affine,elastic")


def test_unpaired_teacher_as_the_real_side() -> None:
    """With adv_real=teacher the discriminator's real pairs are the teacher's outputs."""
    cfg = MethodConfig(size=32, in_channels=1, channels=1, base_filters=4,
                       extra={"depth": 3, "adv_real": "teacher", "lambda_hard": 0.0})
    m = get_method("distilled")(cfg, torch.device("cpu"))
    seen: list[torch.Tensor] = []
    d = m.D  # type: ignore[attr-defined]
    d.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].detach().clone()))
    teacher = torch.nn.Conv2d(1, 1, 3, padding=1)
    m.provide({"teacher": teacher})  # type: ignore[attr-defined]
    img, mask = _images()
    target = torch.zeros_like(img)  # another subject: must not be the real side
    m.train_step(Batch(target=target, source=img, mask=mask), 0)  # type: ignore[attr-defined]
    with torch.no_grad():
        expected = teacher(img)
    assert torch.allclose(seen[0][:, 1:], expected, atol=1e-6)
    with pytest.raises(ValueError, match="adv_real"):
        get_method("distilled")(
            MethodConfig(size=32, base_filters=4, extra={"depth": 3, "adv_real": "x"}),
            torch.device("cpu"),
        )
