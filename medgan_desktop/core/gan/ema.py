"""Exponential moving average of a generator's weights (Karras et al. 2018; Yazıcı et al. 2019).

The averaged copy (``EMA.shadow``) is what small-data runs sample from: it is
smoother than the raw generator and costs one ``lerp`` per parameter per step.
Buffers (e.g. batch-norm statistics, StyleGAN's ``w_avg``) are copied, not
averaged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def _unwrap(model: nn.Module) -> nn.Module:
    """The wrapped module of a DistributedDataParallel/DataParallel wrapper, else ``model``."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * model`` for every parameter.

    Args:
        model: the network to follow; it is deep-copied once.
        decay: weight of the old average, in [0, 1).
        rampup: when :meth:`update` is given the training ``step``, use
            ``min(decay, (1 + step) / (10 + step))`` (the warm-up of TensorFlow's
            ``ExponentialMovingAverage(num_updates=...)``): early in a run the average
            follows the generator closely instead of dragging the random initial weights
            along for ``~1 / (1 - decay)`` steps, which matters for short small-data runs.
            A pure function of the step, so resumed runs stay exact.
    """

    def __init__(self, model: nn.Module, decay: float, rampup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.rampup = bool(rampup)
        self.shadow: nn.Module = copy.deepcopy(_unwrap(model)).eval()
        self.shadow.requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None, step: int | None = None) -> None:
        """Move the average one step towards ``model``.

        ``decay`` overrides the default; ``step`` (the training step) enables the ramp-up.
        """
        d = self.decay if decay is None else decay
        if step is not None and self.rampup:
            d = min(d, (1.0 + step) / (10.0 + step))
        src = _unwrap(model)
        params = dict(src.named_parameters())
        for name, p_ema in self.shadow.named_parameters():
            p_ema.lerp_(params[name].detach().to(p_ema.dtype), 1.0 - d)
        bufs = dict(src.named_buffers())
        for name, b_ema in self.shadow.named_buffers():
            b_ema.copy_(bufs[name])
        self.num_updates += 1

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> None:
        """Set the average to ``model``'s current weights (e.g. after a resolution switch)."""
        self.shadow.load_state_dict(_unwrap(model).state_dict())

    def state_dict(self) -> dict[str, Any]:
        """The shadow module's state dict (tensors only: safetensors friendly)."""
        return self.shadow.state_dict()

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Load weights saved by :meth:`state_dict`."""
        self.shadow.load_state_dict(state, strict=strict)

    def to(self, device: torch.device | str) -> EMA:
        """Move the shadow copy; returns ``self``."""
        self.shadow.to(device)
        return self
