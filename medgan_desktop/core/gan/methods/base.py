"""The contract every GAN method implements, and the explicit registry.

Following pytorch-CycleGAN-and-pix2pix's ``BaseModel`` (set input, forward,
optimise, with discriminators frozen during the generator step) but typed:
methods are registered with a decorator, losses come back as a mapping of
floats, and configuration is a frozen dataclass. A method *composes* networks
(``core.gan.networks``) and losses (``core.gan.losses``); the training loop
(``core.training``) knows neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn


class Task(StrEnum):
    """What a method learns."""

    SYNTHESIS = "synthesis"  # noise (+ label) -> image
    TRANSLATION = "translation"  # image of modality A -> image of modality B


@dataclass(frozen=True)
class MethodConfig:
    """Hyperparameters shared by all methods; method-specific ones go in ``extra``.

    Args:
        size: square image size in pixels (64, 128, 256).
        in_channels: channels of the input image (translation; 2.5D uses 3 or 5).
        channels: channels of the generated image.
        latent_dim: length of the noise vector (synthesis).
        num_classes: number of class labels (0 for unconditional).
        base_filters: width of the first/last network layer.
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
        betas: Adam betas.
        diffaugment: DiffAugment policy ("" to switch off), e.g. "color,translation,cutout".
        ema_decay: generator EMA decay (0 disables EMA).
        extra: method-specific options (e.g. ``{"lambda_l1": 100.0}``).
    """

    size: int = 64
    in_channels: int = 1
    channels: int = 1
    latent_dim: int = 128
    num_classes: int = 0
    base_filters: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    diffaugment: str = ""
    ema_decay: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: Any) -> Any:
        return self.extra.get(key, default)


@dataclass
class Batch:
    """One training batch, already on the method's device.

    Args:
        target: real images of the output domain, ``(B, C, H, W)`` in [-1, 1].
        source: input images for translation, ``(B, C_in, H, W)`` in [-1, 1], else None.
        labels: integer class labels ``(B,)`` or None.
        mask: optional body mask ``(B, 1, H, W)`` (1 inside).
    """

    target: torch.Tensor
    source: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None


LossDict = dict[str, float]


class GanMethod(ABC):
    """One GAN method: its networks, optimisers and one training step.

    Subclasses set ``name`` and ``task`` and implement the abstract methods.
    ``networks()`` names every module whose weights are saved (safetensors, one
    file per run with ``"<network>.<param>"`` keys); ``inference_network()`` is
    the module used to generate (the EMA copy when EMA is on).
    """

    name: ClassVar[str]
    task: ClassVar[Task]
    description: ClassVar[str] = ""

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        self.config = config
        self.device = device

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every trainable (and EMA) module, by a stable name used in weight files."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by name, for checkpointing."""

    @abstractmethod
    def train_step(self, batch: Batch, step: int) -> LossDict:
        """Run one discriminator and generator update and return the losses as floats."""

    @abstractmethod
    def inference_network(self) -> nn.Module:
        """The module used at inference time (``G(z[, y])`` or ``G(x)``)."""

    @torch.no_grad()
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Synthesis: ``n`` images in [-1, 1]. Translation methods override :meth:`translate`."""
        raise TypeError(f"{self.name} is a {self.task} method and does not sample from noise")

    @torch.no_grad()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        """Translation: map a batch of source images in [-1, 1] to the target domain."""
        raise TypeError(f"{self.name} is a {self.task} method and does not translate images")

    def train(self, mode: bool = True) -> None:
        for net in self.networks().values():
            net.train(mode)


M = TypeVar("M", bound=type[GanMethod])
_REGISTRY: dict[str, type[GanMethod]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a method under ``name`` (lower case, unique)."""

    def deco(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"GAN method {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_method(name: str) -> type[GanMethod]:
    """The method class registered under ``name``; a clear error lists the known ones."""
    from medgan_desktop.core.gan import methods as _methods  # noqa: F401  (registers all)

    _methods.load_all()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown GAN method {name!r}; available: {known}") from None


def available_methods(task: Task | None = None) -> dict[str, type[GanMethod]]:
    """All registered methods (optionally only those for one task), by name."""
    from medgan_desktop.core.gan import methods as _methods

    _methods.load_all()
    return {n: c for n, c in sorted(_REGISTRY.items()) if task is None or c.task == task}
