"""Checkpoint selection by a validation Fréchet distance computed during training.

A single GAN checkpoint's quality swings widely from one save to the next, so the
checkpoint a run ends on is a poor choice. With ``val_every`` set, the loop generates as
many images as the validation set holds (class-matched for conditional models, a fixed
noise seed so that scores compare across steps), measures the Fréchet distance to the
validation images in the shipped feature network's space and keeps the weights of the best
step as ``best.safetensors`` beside ``best.json``. The validation images are whole patients
held out of training (:func:`~medgan_desktop.core.training.data.patient_split`), never a
test split. Sampling (from the averaged generator when the method keeps an EMA) is
deterministic, so a resumed run scores exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from medgan_desktop.core.atomic import atomic_write_text
from medgan_desktop.core.metrics.distribution import frechet_distance
from medgan_desktop.core.metrics.features import FeatureExtractor, default_extractor
from medgan_desktop.core.models.runs import BEST_INFO, BEST_WEIGHTS, save_weights
from medgan_desktop.core.types import Float64Array

if TYPE_CHECKING:
    from medgan_desktop.core.gan.methods.base import GanMethod

#: Seed of the validation noise (the same images are drawn at every validation step).
VAL_SEED = 1_234_577


@dataclass(frozen=True)
class BestCheckpoint:
    """What ``best.json`` says: the step whose weights scored best, and its score."""

    step: int
    val_fd: float

    @classmethod
    def read(cls, run_dir: Path) -> BestCheckpoint | None:
        p = Path(run_dir) / BEST_INFO
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls(int(d["step"]), float(d["val_fd"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _unit(x: torch.Tensor) -> Float64Array:
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, H, W)`` grey in [0, 1] for the feature network."""
    g = x.detach().float().cpu().mean(dim=1)
    out: Float64Array = ((g + 1.0) / 2.0).clamp(0.0, 1.0).double().numpy()
    return out


class Validator:
    """Scores a synthesis method against fixed validation images and keeps the best weights.

    Args:
        images: validation images ``(N, C, H, W)`` in [-1, 1].
        labels: their class labels (None when unlabelled).
        extractor: the feature network (default: the shipped one).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None,
                 extractor: FeatureExtractor | None = None) -> None:
        if len(images) < 2:
            raise ValueError("a validation set needs at least two images")
        self.extractor = extractor or default_extractor()
        self.labels = labels
        self.n = len(images)
        self.real = self.extractor.extract(_unit(images))

    def score(self, method: GanMethod, batch: int = 64) -> float:
        """Fréchet distance of ``n`` generated images (class-matched) to the validation set."""
        was_training = [(net, net.training) for net in method.networks().values()]
        g = torch.Generator().manual_seed(VAL_SEED)
        feats = []
        try:
            for net, _ in was_training:
                net.eval()
            with torch.no_grad():
                for start in range(0, self.n, batch):
                    stop = min(self.n, start + batch)
                    lab = None if self.labels is None else self.labels[start:stop]
                    imgs = method.generate(stop - start, generator=g, labels=lab)
                    feats.append(self.extractor.extract(_unit(imgs)))
        finally:
            for net, mode in was_training:
                net.train(mode)
        return frechet_distance(self.real, np.concatenate(feats))

    def keep_if_best(self, run_dir: Path, method: GanMethod, step: int, fd: float) -> bool:
        """Write ``best.safetensors`` and ``best.json`` when ``fd`` beats the stored best."""
        best = BestCheckpoint.read(run_dir)
        if not math.isfinite(fd) or (best is not None and best.step != step and best.val_fd <= fd):
            return False
        save_weights(Path(run_dir) / BEST_WEIGHTS, method, {"method": method.name, "step": str(step), "val_fd": f"{fd:.6f}"})
        atomic_write_text(Path(run_dir) / BEST_INFO, json.dumps({"step": step, "val_fd": fd}) + "\n")
        return True
