"""Data-parallel training under ``torchrun``: process group, DistributedDataParallel, checks.

``torchrun --nproc_per_node=N -m medgan_desktop.cli train ...`` starts N copies of the
training loop. :func:`init_distributed` joins them into a process group (gloo on the CPU,
NCCL on GPUs; several nodes through torchrun's own rendezvous) and
:func:`make_data_parallel` puts every trainable network of the GAN method behind its own
``torch.nn.parallel.DistributedDataParallel``: each process trains on its slice of the
global batch and the backward averages the gradients over the processes.

What makes N processes train like one process with the same global batch:

* data: :class:`~medgan_desktop.core.training.loop.StepBatchSampler` gives each process a
  contiguous slice of the global batch; synthesis methods draw the global batch of noise
  and keep their slice (``sample_noise``);
* gradients: DistributedDataParallel averages them over processes, i.e. the gradient of
  the global-batch mean of the loss;
* batch norm: on CUDA, batch norms become ``SyncBatchNorm`` (statistics of the global
  batch) unless the method's :class:`~medgan_desktop.core.gan.methods.base.ParallelSpec`
  says the network is differentiated twice (SyncBatchNorm has no double backward). On the
  CPU batch norm stays per process: SyncBatchNorm refuses CPU tensors, so there the
  statistics are those of each process's slice (per-slice ``running_mean``/``running_var``;
  DistributedDataParallel broadcasts rank 0's buffers before each forward);
* what stays per process: random draws other than the noise (DiffAugment, dropout,
  gradient-penalty interpolation weights, UNIT's latent noise, the CycleGAN image pool)
  come from the same RNG stream in every process and are applied to each slice, so they
  match single-process training in distribution, not draw for draw.

The method keeps its plain networks (checkpoints carry no ``module.`` prefix and the EMA
follows the plain generator); see :meth:`GanMethod.enable_data_parallel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medgan_desktop.core.gan.methods.base import GanMethod, LossDict


@dataclass(frozen=True)
class DistInfo:
    """This process's place in data-parallel training (``world == 1``: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this module initialised the process group (and tears it down)

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_choice: str) -> DistInfo:
    """Initialise the process group from torchrun's environment (no-op without it)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not device_choice.startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=True)


def make_data_parallel(method: GanMethod, info: DistInfo, device: torch.device) -> None:
    """Wrap every trainable network of ``method`` in DistributedDataParallel.

    Call it in every process, after the weights are final (built or restored): wrapping
    broadcasts rank 0's parameters and buffers; the networks that are not trained (EMA
    copies, state holders) are broadcast here.
    """
    trainable = method.trainable_networks()
    for name, net in method.networks().items():
        if name not in trainable:
            for t in net.state_dict().values():
                dist.broadcast(t, src=0)
    cuda = device.type == "cuda"

    def wrap(name: str, holder: nn.Module) -> nn.Module:
        spec = method.parallel_spec(name)
        if cuda and spec.sync_batchnorm:
            # converts the batch norms below the holder in place; parameters and buffers are kept
            holder = nn.SyncBatchNorm.convert_sync_batchnorm(holder)
        return DistributedDataParallel(
            holder,
            device_ids=[device.index] if cuda else None,
            find_unused_parameters=spec.find_unused_parameters,
        )

    method.enable_data_parallel(info.rank, info.world, wrap)


def average_losses(losses: LossDict, info: DistInfo, device: torch.device) -> LossDict:
    """The losses averaged over processes: the global-batch values one process would report.

    Every process gets the same numbers, so a non-finite loss stops all of them together.
    """
    if info.world <= 1 or not losses:
        return losses
    keys = sorted(losses)
    t = torch.tensor([losses[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= info.world
    return dict(zip(keys, t.tolist(), strict=True))


def _fingerprint(net: nn.Module) -> torch.Tensor:
    ps = [p.detach().double() for p in net.parameters()]
    if not ps:
        return torch.zeros(2, dtype=torch.float64)
    return torch.stack([torch.stack([p.sum(), p.square().sum()]) for p in ps]).flatten()


def replica_mismatch(method: GanMethod, info: DistInfo) -> list[str]:
    """The trainable networks whose weights differ between processes (the same list in all).

    DistributedDataParallel keeps the replicas identical as long as every training forward
    of a network goes through its wrapper (:meth:`GanMethod.parallel`); a cheap per-tensor
    fingerprint checks that. A collective: call it in every process at the same step.
    """
    if info.world <= 1:
        return []
    nets = method.trainable_networks()
    names = sorted(nets)
    bad = torch.zeros(len(names), dtype=torch.float64, device=method.device)
    for i, name in enumerate(names):
        mine = _fingerprint(nets[name]).to(method.device)
        ref = mine.clone()
        dist.broadcast(ref, src=0)
        if not torch.allclose(mine, ref, rtol=1e-9, atol=0.0):
            bad[i] = 1.0
    dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return [n for n, b in zip(names, bad.tolist(), strict=True) if b > 0]
