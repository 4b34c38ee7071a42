"""Adversarial losses and regularisers, kept apart from networks and methods.

Each ``*_d`` function takes the discriminator's outputs on real and fake images and
returns the discriminator loss; each ``*_g`` takes the outputs on fakes and returns the
generator loss. :func:`adversarial_losses` picks a pair by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn


class AdvLoss(StrEnum):
    """The adversarial criteria. ``"vanilla"`` (pix2pix's name for BCE) reads as :attr:`NS`."""

    NS = "ns"  # non-saturating BCE with logits (DCGAN, pix2pix's "vanilla")
    LSGAN = "lsgan"  # least squares (Mao et al. 2017; CycleGAN, UNIT)
    WGAN = "wgan"  # Wasserstein critic (Arjovsky et al. 2017)
    HINGE = "hinge"  # hinge (Lim & Ye 2017; SNGAN, projection discriminator)

    @classmethod
    def _missing_(cls, value: object) -> AdvLoss | None:
        return cls.NS if str(value).lower() == "vanilla" else None


def ns_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """BCE with logits: real -> 1, fake -> 0."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(z))``."""
    return F.softplus(-fake).mean()


def lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares: ``0.5 * [(D(x) - 1)^2 + D(G(z))^2]``."""
    return 0.5 * (((real - 1.0) ** 2).mean() + (fake**2).mean())


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


def wgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss ``E[D(G(z))] - E[D(x)]``."""
    return fake.mean() - real.mean()


def wgan_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LossPair = tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]

_PAIRS: dict[AdvLoss, LossPair] = {
    AdvLoss.NS: (ns_d, ns_g),
    AdvLoss.LSGAN: (lsgan_d, lsgan_g),
    AdvLoss.WGAN: (wgan_d, wgan_g),
    AdvLoss.HINGE: (hinge_d, hinge_g),
}


def adversarial_losses(kind: AdvLoss | str) -> LossPair:
    """The ``(d_loss, g_loss)`` functions for ``kind`` ("ns", "lsgan", "wgan", "hinge")."""
    try:
        return _PAIRS[AdvLoss(kind)]
    except ValueError:
        known = ", ".join(a.value for a in AdvLoss)
        raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {known}") from None


def adversarial(logits: torch.Tensor, real: bool, kind: AdvLoss | str) -> torch.Tensor:
    """The loss of one side's ``logits`` against the label real (True) or fake (False).

    The form translation methods use (one call per side, as pix2pix and CycleGAN write it);
    NS is BCE with logits, LSGAN the squared distance to 1/0, hinge and WGAN their usual
    per-side terms.
    """
    k = AdvLoss(kind)
    if k == AdvLoss.LSGAN:
        return F.mse_loss(logits, torch.ones_like(logits) if real else torch.zeros_like(logits))
    if k == AdvLoss.NS:
        return F.softplus(-logits).mean() if real else F.softplus(logits).mean()
    if k == AdvLoss.HINGE:
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
    return -logits.mean() if real else logits.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` on random interpolates (Gulrajani et al.).

    Args:
        critic: the discriminator as a function of images (labels bound already).
        real: real images.
        fake: generated images (detached).
        generator: optional RNG for the interpolation weights.
    """
    b = real.shape[0]
    alpha = torch.rand(b, 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    penalty: torch.Tensor = ((norm - 1.0) ** 2).mean()
    return penalty


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 penalty ``E[||grad D(x)||^2]`` on real images (Mescheder et al. 2018); multiply by gamma/2."""
    x = real.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def penalised_d_loss(
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    d_real: torch.Tensor,
    d_fake: torch.Tensor,
    gp_lambda: float,
    r1_gamma: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The discriminator's loss: ``d_loss`` of its scores ``d_real``/``d_fake`` plus, where their
    weights are set, the WGAN-GP gradient penalty and ``r1_gamma / 2`` times R1; and the terms
    as floats (``d_adv``, ``gp``, ``r1``).

    Args:
        critic: the discriminator as a function of images (labels bound already), as it saw
            ``real`` and ``fake``.
    """
    loss = d_loss(d_real.float(), d_fake.float())
    terms = {"d_adv": float(loss.detach())}
    if gp_lambda > 0:
        gp = gradient_penalty(critic, real, fake)
        loss = loss + gp_lambda * gp
        terms["gp"] = float(gp.detach())
    if r1_gamma > 0:
        r1 = r1_penalty(critic, real)
        loss = loss + 0.5 * r1_gamma * r1
        terms["r1"] = float(r1.detach())
    return loss, terms


def set_requires_grad(nets: nn.Module | Iterable[nn.Module], flag: bool) -> None:
    """Freeze (False) or unfreeze networks, e.g. the discriminators during the generator step."""
    for net in [nets] if isinstance(nets, nn.Module) else nets:
        for p in net.parameters():
            p.requires_grad_(flag)
