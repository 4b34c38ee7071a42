"""Runs for the data-parallel tests, in one process group (under torchrun) or in one process.

``python -m torch.distributed.run --nproc_per_node=2 -m tests.core.ddp_worker OUT`` trains
the runs of :func:`run_all` with DistributedDataParallel; :func:`run_all` called in the test
process trains the same runs in one process, at the same global batch, for comparison.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.imaging.intensity import IntensityWindow
from medgan_desktop.core.models.runs import Preprocessing
from medgan_desktop.core.training.config import TrainConfig
from medgan_desktop.core.training.loop import train


class Images:
    """16 random 16x16 images (synthesis)."""

    preprocessing = Preprocessing(size=16)

    def __init__(self, n: int = 16) -> None:
        self.x = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"target": self.x[key[0]]}

    def describe(self) -> dict[str, object]:
        return {"kind": "images", "n": len(self)}


class Pairs(Images):
    """Source/target pairs (translation): the target is a fixed function of the source."""

    preprocessing = Preprocessing(size=16, source=IntensityWindow.uint8(), modality_in="MR", modality_out="CT")

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        x = self.x[key[0]]
        return {"source": x, "target": torch.tanh(2 * x.flip(2))}


def _cfg(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, checkpoint_every=1, sample_every=0, log_every=1, seed=11)


NO_BN = {"g_norm": "none", "d_norm": "none"}  # per-process batch norm on the CPU would differ

RUNS: dict[str, tuple[str, MethodConfig]] = {
    # paired translation without dropout or norms (a bias before instance norm has a zero
    # gradient up to rounding, which Adam would amplify to +-lr): exact
    "pix2pix": ("pix2pix", MethodConfig(size=16, base_filters=4, extra={"norm": "none", "d_norm": "none", "dropout": 0.0})),
    # gradient penalty (double backward through D's wrapper) and n_critic (G forward without backward)
    "wgan_gp": ("wgan_gp", MethodConfig(size=16, latent_dim=8, base_filters=4, extra={**NO_BN, "n_critic": 2})),
    # resumed under data parallel, EMA on: exact
    "resume": ("dcgan", MethodConfig(size=16, latent_dim=8, base_filters=4, ema_decay=0.9, extra=NO_BN)),
}


def run_all(out: Path, resume_split: bool) -> None:
    """Train every run into ``out/<name>``; ``resume_split``: stop "resume" at step 2, then resume."""
    for name, (method, mc) in RUNS.items():
        data = Pairs() if method == "pix2pix" else Images()
        if name == "resume" and resume_split:
            train(method, mc, _cfg(2), data, out / name)
            train(method, mc, _cfg(4), data, out / name, resume=True)
        else:
            train(method, mc, _cfg(4 if name == "resume" else 3), data, out / name)


def main() -> None:
    torch.set_num_threads(1)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")  # the loop joins it (and leaves it to us)
    try:
        run_all(Path(sys.argv[1]), resume_split=True)
    finally:
        if distributed:
            gc.collect()
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
