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
``depth``, ``norm``, ``d_filters``, ``d_layers``, ``mask_weight``,
``augment`` ("" or a comma list of ``affine``, ``intensity``) and ``adv_real``
("target": the discriminator's real pairs are (source, real target); "teacher":
(source, teacher output), for a teacher trained on *unpaired* data such as a
CycleGAN, where the target volume is another subject and only the teacher can say
what the source should become; use it with ``lambda_hard=0``).

Augmentation is what distillation can afford and paired training cannot: the
teacher labels *any* input, so the student is taught on randomly rotated, scaled
and shifted slices (``affine``; the same transform is applied to the real target
and mask for the hard loss) and on gamma/contrast-jittered MR (``intensity``; the
teacher sees the same jittered input). The student then imitates the teacher over
a wider neighbourhood of the training slices instead of only on them, which is
what carries the teacher's behaviour to unseen anatomy (Beyer et al. 2022,
"Knowledge distillation: a good teacher is patient and consistent").
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
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
        kinds = {k.strip() for k in str(config.option("augment", "")).split(",") if k.strip()}
        unknown = kinds - {"affine", "intensity"}
        if unknown:
            raise ValueError(f"unknown distillation augment {sorted(unknown)}: use affine, intensity")
        self.augment = kinds
        self.adv_real = str(config.option("adv_real", "target"))
        if self.adv_real not in ("target", "teacher"):
            raise ValueError(f"adv_real must be 'target' or 'teacher', got {self.adv_real!r}")

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

    def _augmented(
        self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Random affine (same for source, target, mask) and MR intensity jitter."""
        b = x.shape[0]
        if "affine" in self.augment:
            r = torch.rand(b, 4, device=x.device)
            ang = (r[:, 0] * 2 - 1) * math.radians(10.0)
            scale = 1.0 + (r[:, 1] * 2 - 1) * 0.1
            tx, ty = (r[:, 2] * 2 - 1) * 0.08, (r[:, 3] * 2 - 1) * 0.08
            cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
            theta = torch.stack(
                [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
            )
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)

            def warp(t: torch.Tensor, mode: str) -> torch.Tensor:
                # Background is -1 in [-1, 1] space: sample (t + 1) with zero padding.
                out = F.grid_sample(t + 1.0, grid, mode=mode, padding_mode="zeros", align_corners=False)
                return out - 1.0

            x, y = warp(x, "bilinear"), warp(y, "bilinear")
            if mask is not None:
                mask = F.grid_sample(
                    mask.to(x.dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False
                )
        if "intensity" in self.augment:
            r = torch.rand(b, 2, 1, 1, 1, device=x.device)
            gamma = torch.exp((r[:, 0] * 2 - 1) * math.log(1.3))
            contrast = 1.0 + (r[:, 1] * 2 - 1) * 0.1
            unit = ((x + 1.0) * 0.5).clamp(0.0, 1.0) ** gamma
            x = (unit * contrast).clamp(0.0, 1.0) * 2.0 - 1.0
        return x, y, mask

    def train_step(self, batch: Batch, step: int) -> LossDict:
        x = require_source(batch)
        y = batch.target
        mask = batch.mask
        if self.augment:
            x, y, mask = self._augmented(x, y, mask)
        with torch.no_grad():
            soft_target = self.teacher()(x)
        fake = self.parallel(self.G)(x)
        set_requires_grad([self.D], True)
        self.opt_d.zero_grad(set_to_none=True)
        real = soft_target if self.adv_real == "teacher" else y
        d = self.parallel(self.D)
        loss_d = 0.5 * (
            adversarial(d(torch.cat([x, real], 1)), True, self.gan_loss)
            + adversarial(d(torch.cat([x, fake.detach()], 1)), False, self.gan_loss)
        )
        loss_d.backward()
        self.opt_d.step()
        set_requires_grad([self.D], False)  # frozen: called directly, not through parallel()
        self.opt_g.zero_grad(set_to_none=True)
        adv = adversarial(self.D(torch.cat([x, fake], 1)), True, self.gan_loss)
        soft = masked_l1(fake, soft_target, mask, self.mask_weight)
        hard = masked_l1(fake, y, mask, self.mask_weight)
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
