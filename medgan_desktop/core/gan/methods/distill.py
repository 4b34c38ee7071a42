"""Knowledge distillation of a translation model into a small student U-Net.

The student (a slim :class:`UNetGenerator`, width ``base_filters`` and depth
``extra["depth"]``) learns from three signals (Hinton et al. 2015 applied to
image-to-image GANs, e.g. Aguinaldo et al. 2019 "Compressing GANs using
knowledge distillation"):

* soft loss: ``|S(x) - T(x)|`` against the frozen teacher's output,
* hard loss: ``|S(x) - y|`` against the real target,
* the conditional PatchGAN adversarial loss (discriminator frozen in the G step).

The teacher is a finished translation run (its folder is recorded in the option
``teacher``); the job that trains the student loads it and hands its network in
(:meth:`~medgan_desktop.core.gan.methods.base.GanMethod.provide`, frozen input
``"teacher"``), so the method never loads models itself and a *trained* student is
used for inference without its teacher. Options (:class:`DistilledOptions`):
``lambda_soft`` (50), ``lambda_hard`` (50), ``lambda_adv`` (1), ``gan_loss`` ("ns"),
the U-Net's ``depth``/``norm``, the PatchGAN's, ``mask_weight``,
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
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from medgan_desktop.core.gan.losses import AdvLoss
from medgan_desktop.core.gan.methods._translation import _LOSSES, UNetPatchGan, UNetPatchOptions, masked_l1
from medgan_desktop.core.gan.methods.base import Batch, LossDict, MethodConfig, register_method
from medgan_desktop.core.gan.options import option

AUGMENTS = ("affine", "intensity")


@dataclass(frozen=True)
class DistilledOptions(UNetPatchOptions):
    teacher: str = option("", "Teacher", "The teacher translation run (folder).", form=False)
    lambda_soft: float = option(50.0, "Soft weight", "Weight of |S(x) - T(x)| (imitating the teacher).",
                                hi=1000.0, decimals=1)
    lambda_hard: float = option(50.0, "Hard weight", "Weight of |S(x) - y| (the real target; 0 for an unpaired teacher).",
                                hi=1000.0, decimals=1)
    lambda_adv: float = option(1.0, "Adversarial weight", "Weight of the PatchGAN loss.", hi=100.0, decimals=2)
    gan_loss: str = option("ns", "Adversarial loss", "ns (BCE), lsgan, hinge or wgan.", choices=_LOSSES,
                           form=False)
    augment: str = option(
        "", "Augment", "Inputs the teacher labels on the fly: '' (none), 'affine', 'intensity' or "
        "'affine,intensity'.", choices=("", "affine", "intensity", "affine,intensity", "intensity,affine"),
    )
    adv_real: str = option(
        "target", "Discriminator's real side",
        "target: (source, real target) pairs; teacher: (source, teacher output), for a teacher "
        "trained on unpaired data.", choices=("target", "teacher"),
    )


@register_method("distilled")
class Distilled(UNetPatchGan):
    """A small student generator distilled from a teacher translation run."""

    description = (
        "Small student U-Net distilled from a teacher translation model (soft + hard + adversarial)"
    )
    Options: ClassVar[type[DistilledOptions]] = DistilledOptions
    options: DistilledOptions
    frozen_inputs: ClassVar[tuple[str, ...]] = ("teacher",)

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        super().__init__(config, device)
        o = self.options
        self.gan_loss = AdvLoss(o.gan_loss)
        self.augment = {k.strip() for k in o.augment.split(",") if k.strip()}

    def teacher(self) -> nn.Module:
        """The frozen teacher network (handed in with ``provide({"teacher": net})``)."""
        return self.frozen("teacher")

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
        x = self.source(batch)
        y = batch.target
        mask = batch.mask
        if self.augment:
            x, y, mask = self._augmented(x, y, mask)
        with torch.no_grad():
            soft_target = self.teacher()(x)
        fake = self.parallel(self.G)(x)
        real = soft_target if self.options.adv_real == "teacher" else y
        loss_d = self.d_step(x, real, fake)
        adv = self.g_adversarial(x, fake)
        soft = masked_l1(fake, soft_target, mask, self.options.mask_weight)
        hard = masked_l1(fake, y, mask, self.options.mask_weight)
        loss_g = self.options.lambda_adv * adv + self.options.lambda_soft * soft + self.options.lambda_hard * hard
        self.g_update(loss_g)
        return {
            "d": loss_d.item(),
            "g_adv": adv.item(),
            "soft": soft.item(),
            "hard": hard.item(),
            "g": loss_g.item(),
        }
