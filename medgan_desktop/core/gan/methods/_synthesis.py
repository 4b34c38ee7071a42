"""What every noise -> image method here shares (DCGAN family, StyleGAN2, progressive).

A generator ``G``, a discriminator ``D``, their Adam optimisers, an optional generator EMA
used for sampling, noise drawn per *global* batch under data parallel, and sampling from
latents drawn on the CPU (so a seed gives the same images on any device). A method sets
up ``G``, ``D`` and the optimisers in its ``__init__``, then calls :meth:`_with_ema`;
it implements ``train_step`` and, if its decoding differs, :meth:`decode`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from medgan_desktop.core.gan.ema import EMA
from medgan_desktop.core.gan.methods.base import GanMethod, ParallelSpec, Task


class SynthesisMethod(GanMethod):
    """Base of the noise -> image methods (see the module docs)."""

    task: ClassVar[Task] = Task.SYNTHESIS
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None = None
    #: Some steps leave part of a network without a gradient (a network that grows).
    grows: ClassVar[bool] = False

    def _with_ema(self) -> None:
        """Create the generator EMA when ``config.ema_decay`` asks for one (after ``G``)."""
        self.ema = EMA(self.G, self.config.ema_decay) if self.config.ema_decay > 0 else None

    def _update_ema(self, step: int) -> None:
        if self.ema is not None:
            self.ema.update(self.G, step=step)

    def differentiated_twice(self, name: str) -> bool:
        """Whether a training step differentiates network ``name`` twice (a gradient penalty,
        R1, path length); default: no."""
        return False

    def parallel_spec(self, name: str) -> ParallelSpec:
        # SyncBatchNorm has no double backward: such a network keeps per-process batch norm.
        return ParallelSpec(sync_batchnorm=not self.differentiated_twice(name), find_unused_parameters=self.grows)

    def state_networks(self) -> dict[str, nn.Module]:
        """Modules beyond G, D and the EMA whose buffers a checkpoint keeps (default none)."""
        return {}

    # -- GanMethod ---------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.G, "D": self.D, **self.state_networks()}
        if self.ema is not None:
            nets["G_ema"] = self.ema.shadow
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.ema.shadow if self.ema is not None else self.G

    def train(self, mode: bool = True) -> None:
        self.G.train(mode)
        self.D.train(mode)
        if self.ema is not None:
            self.ema.shadow.eval()

    # -- noise and labels --------------------------------------------------------------
    def sample_noise(self, b: int) -> Tensor:
        """Each process draws the *global* batch of noise from the (identically seeded) RNG
        and keeps its slice, so N processes see exactly the noise one process would."""
        z = torch.randn(b * self.dp_world, self.config.latent_dim, device=self.device)
        return z[self.dp_rank * b : (self.dp_rank + 1) * b]

    def batch_labels(self, labels: Tensor | None) -> Tensor | None:
        """The labels a training step conditions on (None when this instance does not)."""
        if not self.uses_labels:
            return None
        if labels is None:
            raise ValueError(f"{self.name} is class-conditional: the batch needs class labels")
        return labels

    def decode_labels(self, labels: Tensor | None) -> Tensor | None:
        """The labels for decoding, on the device (None when this instance has no classes)."""
        if not self.uses_labels:
            return None
        if labels is None:
            raise ValueError(f"{self.name} is class-conditional: pass a label")
        return labels.to(self.device, torch.long)

    # -- inference ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` noise vectors drawn on the CPU, so a seed gives the same images on any device."""
        return torch.randn(n, self.config.latent_dim, generator=generator)

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] from given latents with the inference network in eval mode."""
        net = self.inference_network()
        was_training = net.training
        net.eval()
        try:
            out: Tensor = net(z.to(self.device), self.decode_labels(labels))
        finally:
            net.train(was_training)
        return out.float().clamp(-1.0, 1.0)

    @torch.no_grad()
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None,
        **decode_options: Any,
    ) -> Tensor:
        """``n`` images in [-1, 1]; the same generator state gives the same images.

        Random labels are drawn (from ``generator``) for a conditional model given none.
        """
        z = self.latents(n, generator)
        if self.uses_labels and labels is None:
            labels = torch.randint(0, self.config.num_classes, (n,), generator=generator)
        return self.decode(z, labels, **decode_options)
