"""Knowledge distillation of a translation model into a small student U-Net.

The student (a slim :class:`UNetGenerator`, width ``base_filters`` and depth
``extra["depth"]``) learns from three signals (Hinton et al. 2015 applied to
image-to-image GANs, e.g. Aguinaldo et al. 2019 "Compressing GANs using
knowledge distillation"):

* soft loss: ``|S(x) - T(x)|`` against the frozen teacher's output,
* hard loss: ``|S(x) - y|`` against the real target,
* the conditional PatchGAN adversarial loss (discriminator frozen in the G step).

The teacher is a finished run (folder path in ``extra["teacher"]``), loaded
lazily at the first training step so that loading a *trained* student for
inference never needs the teacher. Options: ``lambda_soft`` (50),
``lambda_hard`` (50), ``lambda_adv`` (1), ``gan_loss`` ("vanilla"),
``depth``, ``norm``, ``d_filters``, ``d_layers``, ``mask_weight``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medgan_desktop.core.gan.methods._translation import (
    GanLoss,
    TranslationMethod,
    adam,
    adversarial,
    masked_l1,
    require_source,
    set_requires_grad,
)
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.methods.pix2pix import build_conditional_d, build_unet


@register_method("distilled")
class Distilled(TranslationMethod):
    """A small student generator distilled from a teacher translation run."""

    description = (
        "Small student U-Net distilled from a teacher translation model (soft + hard + adversarial)"
    )

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.G = build_unet(config, default_dropout=0.0).to(device)
        self.D = build_conditional_d(config).to(device)
        self.opt_g = adam(self.G.parameters(), config.lr_g, config.betas)
        self.opt_d = adam(self.D.parameters(), config.lr_d, config.betas)
        self.w_soft = float(config.option("lambda_soft", 50.0))
        self.w_hard = float(config.option("lambda_hard", 50.0))
        self.w_adv = float(config.option("lambda_adv", 1.0))
        self.gan_loss = GanLoss(str(config.option("gan_loss", "vanilla")))
        self.mask_weight = float(config.option("mask_weight", 0.0))
        self._teacher: nn.Module | None = None

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def inference_network(self) -> nn.Module:
        return self.G

    def set_teacher(self, teacher: nn.Module) -> None:
        """Use ``teacher`` (source -> target in [-1, 1]) instead of loading a run."""
        teacher.eval()
        set_requires_grad([teacher], False)
        self._teacher = teacher.to(self.device)

    def teacher(self) -> nn.Module:
        """The frozen teacher network, loaded from ``extra["teacher"]`` on first use."""
        if self._teacher is None:
            path = self.config.option("teacher", None)
            if not path:
                raise ValueError(
                    "the distilled method needs extra['teacher']: a finished translation run"
                )
            from medgan_desktop.core.training.run import load_model

            loaded = load_model(Path(str(path)), device=self.device)
            pre = loaded.info.preprocessing
            if pre.size != self.config.size or pre.channels != self.config.channels:
                raise ValueError(
                    f"teacher works at {pre.size}px/{pre.channels}ch, student at "
                    f"{self.config.size}px/{self.config.channels}ch: they must match"
                )
            if loaded.method.config.in_channels != self.config.in_channels:
                raise ValueError(
                    f"teacher takes {loaded.method.config.in_channels} input channels, "
                    f"student {self.config.in_channels}: use the same 2.5D context"
                )
            self.set_teacher(loaded.method.inference_network())
        assert self._teacher is not None
        return self._teacher

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = require_source(batch)
        y = batch.target
        with torch.no_grad():
            soft_target = self.teacher()(x)
        fake = self.G(x)
        set_requires_grad([self.D], True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (
            adversarial(self.D(torch.cat([x, y], 1)), True, self.gan_loss)
            + adversarial(self.D(torch.cat([x, fake.detach()], 1)), False, self.gan_loss)
        )
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad([self.D], False)
        self.opt_g.zero_grad(set_to_none=True)
        adv = adversarial(self.D(torch.cat([x, fake], 1)), True, self.gan_loss)
        soft = masked_l1(fake, soft_target, batch.mask, self.mask_weight)
        hard = masked_l1(fake, y, batch.mask, self.mask_weight)
        loss_g = self.w_adv * adv + self.w_soft * soft + self.w_hard * hard
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad([self.D], True)
        return {
            "d": loss_d.item(),
            "g_adv": adv.item(),
            "soft": soft.item(),
            "hard": hard.item(),
            "g": loss_g.item(),
        }
