"""Differentiable augmentation for GANs trained on little data.

``diff_augment`` follows DiffAugment (Zhao et al., "Differentiable Augmentation
for Data-Efficient GAN Training", NeurIPS 2020, reference code
``mit-han-lab/data-efficient-gans``): the *same* random, differentiable
transformations are applied to real and fake images before the discriminator,
in both the D and the G step, so gradients flow back to the generator.

``augment_p`` and :class:`AdaptiveAugment` add the adaptive part of ADA
(Karras et al., "Training Generative Adversarial Networks with Limited Data",
NeurIPS 2020): every transformation is applied to each image with probability
``p``, and ``p`` is steered so that the overfitting heuristic
``r_t = E[sign(D(real))]`` stays near a target (0.6 in the paper).

All functions work for any channel count (the colour "saturation" term is the
identity for one channel) and accept an optional ``torch.Generator`` so tests
and resumed runs can be exactly reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

AugmentFn = Callable[[Tensor, "torch.Generator | None"], Tensor]


def _rand(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) per sample, shaped ``(B, 1, 1, 1)``."""
    dev = x.device if generator is None else generator.device
    r = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=dev)
    return r.to(device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = x.device if generator is None else generator.device
    return torch.randint(low, high, (n, 1, 1), generator=generator, device=dev).to(x.device)


def rand_brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add a per-image offset in [-0.5, 0.5)."""
    return x + (_rand(x, generator) - 0.5)


def rand_saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale the deviation from the channel mean by [0, 2) (identity for one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x, generator) * 2) + mean


def rand_contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale the deviation from the image mean by [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean


def rand_translation(
    x: Tensor, generator: torch.Generator | None = None, ratio: float = 0.125
) -> Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = _randint(-sh, sh + 1, b, x, generator)
    ty = _randint(-sw, sw + 1, b, x, generator)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1])
    return x_pad.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous()


def rand_cutout(x: Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> Tensor:
    """Zero a random square of ``ratio`` of the image size in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = _randint(0, h + (1 - ch % 2), b, x, generator)
    oy = _randint(0, w + (1 - cw % 2), b, x, generator)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def rand_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror left-right with probability 1/2 per image (useful for roughly symmetric anatomy)."""
    flip = _rand(x, generator) < 0.5
    return torch.where(flip, x.flip(3), x)


AUGMENT_FNS: dict[str, tuple[AugmentFn, ...]] = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "brightness": (rand_brightness,),
    "contrast": (rand_contrast,),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
    "flip": (rand_flip,),
}


def _parse(policy: str) -> list[AugmentFn]:
    fns: list[AugmentFn] = []
    for part in policy.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in AUGMENT_FNS:
            known = ", ".join(sorted(AUGMENT_FNS))
            raise ValueError(f"unknown DiffAugment policy {name!r}; known: {known}")
        fns.extend(AUGMENT_FNS[name])
    return fns


def validate_policy(policy: str) -> str:
    """Return ``policy`` unchanged, or raise ``ValueError`` naming the unknown parts."""
    _parse(policy)
    return policy


def diff_augment(
    x: Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None
) -> Tensor:
    """Apply DiffAugment to a batch ``(B, C, H, W)``; differentiable with respect to ``x``.

    Args:
        x: images, any channel count.
        policy: comma-separated transformations (``color``, ``translation``,
            ``cutout``, plus ``brightness``, ``contrast``, ``flip``); "" is the identity.
        generator: optional random generator for reproducible draws.

    Returns:
        The augmented batch (``x`` itself when the policy is empty).
    """
    for fn in _parse(policy):
        x = fn(x, generator)
    return x


def augment_p(
    x: Tensor,
    p: float,
    policy: str = "color,translation,cutout",
    generator: torch.Generator | None = None,
) -> Tensor:
    """ADA-style augmentation: each transformation hits each image with probability ``p``.

    Args:
        x: images ``(B, C, H, W)``.
        p: probability in [0, 1]; 0 returns ``x`` unchanged, 1 equals :func:`diff_augment`.
        policy: as for :func:`diff_augment`.
        generator: optional random generator.

    Returns:
        The augmented batch.
    """
    if p <= 0.0:
        _parse(policy)
        return x
    if p >= 1.0:
        return diff_augment(x, policy, generator)
    for fn in _parse(policy):
        hit = _rand(x, generator) < p
        x = torch.where(hit, fn(x, generator), x)
    return x


class AdaptiveAugment:
    """Steers the augmentation probability ``p`` with ADA's ``r_t`` heuristic.

    Call :meth:`update` with the discriminator's raw outputs on real images
    every D step; every ``interval`` calls, ``p`` moves by
    ``sign(r_t - target) * images_seen * speed`` and is clipped to [0, p_max].

    Args:
        target: the wanted ``r_t = E[sign(D(real))]`` (0.6 in the ADA paper).
        speed: change of ``p`` per real image seen while off target (ADA's
            500-kimg ramp is 2e-6; small CPU runs need faster, hence 1e-4).
        interval: number of updates between adjustments.
        p_init: starting probability.
        p_max: upper bound of ``p``.
    """

    def __init__(
        self,
        target: float = 0.6,
        speed: float = 1e-4,
        interval: int = 4,
        p_init: float = 0.0,
        p_max: float = 0.85,
    ) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"ADA target must lie in (0, 1), got {target}")
        if speed <= 0 or interval < 1:
            raise ValueError("ADA speed must be > 0 and interval >= 1")
        self.target = target
        self.speed = speed
        self.interval = interval
        self.p_max = p_max
        self.p = float(p_init)
        self._sign_sum = 0.0
        self._count = 0
        self._calls = 0
        self.last_rt = 0.0

    def update(self, d_real: Tensor) -> float:
        """Record the D outputs on a real batch; return the (possibly adjusted) ``p``."""
        s = torch.sign(d_real.detach().float()).reshape(-1)
        self._sign_sum += float(s.sum())
        self._count += int(s.numel())
        self._calls += 1
        if self._calls >= self.interval:
            rt = self._sign_sum / max(self._count, 1)
            self.last_rt = rt
            step = (1.0 if rt > self.target else -1.0) * self._count * self.speed
            self.p = float(min(max(self.p + step, 0.0), self.p_max))
            self._sign_sum, self._count, self._calls = 0.0, 0, 0
        return self.p

    def __call__(
        self,
        x: Tensor,
        policy: str = "color,translation,cutout",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Augment ``x`` with the current ``p``."""
        return augment_p(x, self.p, policy, generator)

    def state_dict(self) -> dict[str, float | int]:
        """Primitive state for checkpoints (``torch.load(weights_only=True)`` safe)."""
        return {
            "p": self.p,
            "sign_sum": self._sign_sum,
            "count": self._count,
            "calls": self._calls,
            "last_rt": self.last_rt,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.p = float(state["p"])
        self._sign_sum = float(state["sign_sum"])
        self._count = int(state["count"])
        self._calls = int(state["calls"])
        self.last_rt = float(state.get("last_rt", 0.0))
