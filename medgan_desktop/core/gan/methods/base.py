"""The contract every GAN method implements, and the explicit registry.

Following pytorch-CycleGAN-and-pix2pix's ``BaseModel`` (set input, forward,
optimise, with discriminators frozen during the generator step) but typed:
methods are registered with a decorator, losses come back as a mapping of
floats, and configuration is a frozen dataclass. A method *composes* networks
(``core.gan.networks``) and losses (``core.gan.losses``); the training loop
(``core.training``) knows neither.

Data-parallel training (``torchrun``): the loop hands the method a wrapping function
(:meth:`GanMethod.enable_data_parallel`) that puts each trainable network behind its own
``torch.nn.parallel.DistributedDataParallel``. The method keeps its plain networks (weights,
EMA and inference never see a wrapper) and sends every *training* forward through
:meth:`GanMethod.parallel` / :meth:`GanMethod.parallel_apply`; a frozen network (the
discriminator during the generator step, a teacher) is called directly.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypedDict, TypeVar, Unpack

import torch
import torch.distributed as dist
from torch import nn

from medgan_desktop.core.gan.options import MethodOptions


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
        extra: method-specific options (e.g. ``{"lambda_l1": 100.0}``), read through the
            method's typed ``Options`` dataclass (:mod:`medgan_desktop.core.gan.options`).
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


class MethodSettings(TypedDict, total=False):
    """Fields of a :class:`MethodConfig` given by name: a method's preset, overrides."""

    size: int
    in_channels: int
    channels: int
    latent_dim: int
    num_classes: int
    base_filters: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    diffaugment: str
    ema_decay: float
    extra: Mapping[str, Any]


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
R = TypeVar("R")


@dataclass(frozen=True)
class ParallelSpec:
    """How data-parallel training wraps one trainable network.

    Args:
        sync_batchnorm: on CUDA, turn its batch norms into ``SyncBatchNorm`` so that the
            statistics are those of the global batch, as in one process. Switch it off for
            a network differentiated twice (R1, WGAN-GP, path length): SyncBatchNorm has no
            double backward. (On the CPU batch norm stays per process either way:
            SyncBatchNorm supports CUDA-like devices only.)
        find_unused_parameters: some steps leave some of its parameters without a gradient
            (progressive growing), so DistributedDataParallel must look for them.
    """

    sync_batchnorm: bool = True
    find_unused_parameters: bool = False


class NetworkCall(nn.Module):
    """The module data-parallel training wraps: ``forward(fn, *args)`` runs ``fn(net, *args)``.

    DistributedDataParallel intercepts ``forward`` only. Wrapping this holder instead of the
    network lets one wrapper serve every entry point of a network (``net(...)``,
    ``net.mapping(...)``, UNIT's ``encode_a``...) while the method keeps ``net`` itself.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(self.net, *args, **kwargs)


def _call_network(net: nn.Module, *args: Any, **kwargs: Any) -> Any:
    return net(*args, **kwargs)


class GanMethod(ABC):
    """One GAN method: its networks, optimisers and one training step.

    Subclasses set ``name`` and ``task`` and implement the abstract methods.
    ``networks()`` names every module whose weights are saved (safetensors, one
    file per run with ``"<network>.<param>"`` keys); ``inference_network()`` is
    the module used to generate (the EMA copy when EMA is on).

    What the rest of the product may ask a method, without looking inside it:

    * ``task``: synthesis (noise -> image) or translation (image -> image);
    * ``requires_labels``: training needs class labels (one folder per class);
      ``supports_labels``: it conditions on labels when the data has them; the
      instance's :attr:`uses_labels` says whether this one does;
    * ``Options``: the typed dataclass of its own hyperparameters (``self.options``);
    * ``frozen_inputs``: networks it uses but does not train (a distillation teacher),
      handed in with :meth:`provide`;
    * :meth:`extra_state` / :meth:`load_extra_state`: training state beyond weights and
      optimisers that a checkpoint must keep.

    In :meth:`train_step`, call a network through :meth:`parallel` (or
    :meth:`parallel_apply`) whenever the backward is to update that network, and
    directly when it is frozen or not trained. Outside data-parallel training both
    are the plain call.
    """

    name: ClassVar[str]
    task: ClassVar[Task]
    description: ClassVar[str] = ""
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    requires_labels: ClassVar[bool] = False
    supports_labels: ClassVar[bool] = False
    frozen_inputs: ClassVar[tuple[str, ...]] = ()
    #: The method's published settings (its optimiser's, say), under :meth:`default_config`.
    recommended: ClassVar[MethodSettings] = {}

    def __init__(self, config: MethodConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.options = self.Options.from_extra(config.extra, strict=False)
        if self.requires_labels and config.num_classes < 1:
            raise ValueError(
                f"{self.name} is class-conditional: num_classes must be >= 1 (label data by subfolder)"
            )
        self.dp_rank = 0  # this process and the number of processes (data parallel)
        self.dp_world = 1
        self._wrappers: dict[str, nn.Module] = {}
        self._wrapper_of: dict[int, nn.Module] = {}
        self._frozen: dict[str, nn.Module] = {}

    @classmethod
    def default_config(cls, **overrides: Unpack[MethodSettings]) -> MethodConfig:
        """A :class:`MethodConfig` with the method's published settings, then ``overrides``."""
        return MethodConfig(**(cls.recommended | overrides))

    @property
    def uses_labels(self) -> bool:
        """Whether this instance is conditioned on class labels."""
        return self.config.num_classes > 0 and (self.requires_labels or self.supports_labels)

    def provide(self, networks: Mapping[str, nn.Module]) -> None:
        """Hand in the frozen networks named in ``frozen_inputs`` (before training).

        Raises:
            ValueError: an unexpected name.
        """
        unknown = sorted(set(networks) - set(self.frozen_inputs))
        if unknown:
            raise ValueError(f"{self.name} takes no network named {', '.join(unknown)}")
        for key, net in networks.items():
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            self._frozen[key] = net.to(self.device)

    def frozen(self, key: str) -> nn.Module:
        """A network handed in with :meth:`provide`.

        Raises:
            ValueError: it was not provided.
        """
        try:
            return self._frozen[key]
        except KeyError:
            raise ValueError(f"{self.name} needs its {key} network, which was not provided") from None

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond weights and optimisers, for checkpoints (default: none)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`extra_state` returned (default: nothing to restore)."""

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

    # -- data parallel -----------------------------------------------------------------
    def trainable_networks(self) -> dict[str, nn.Module]:
        """The networks an optimiser updates, by name (not EMA copies or state holders)."""
        owned = {id(p) for opt in self.optimizers().values() for g in opt.param_groups for p in g["params"]}
        return {k: n for k, n in self.networks().items() if any(id(p) in owned for p in n.parameters())}

    def parallel_spec(self, name: str) -> ParallelSpec:
        """How data-parallel training wraps the trainable network ``name`` (override per method)."""
        return ParallelSpec()

    def enable_data_parallel(self, rank: int, world: int, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Called by the training loop in each of ``world`` processes before the first step.

        Args:
            rank: this process.
            world: the number of processes.
            wrap: ``wrap(name, holder)`` returns the DistributedDataParallel wrapper of a
                :class:`NetworkCall` holding the trainable network ``name``.
        """
        self.dp_rank, self.dp_world = rank, world
        self._wrappers, self._wrapper_of = {}, {}
        for name, net in self.trainable_networks().items():
            holder = NetworkCall(net)
            wrapped = wrap(name, holder)
            if holder.net is not net:
                raise RuntimeError(f"wrapping {name} for data-parallel training replaced the network")
            self._wrappers[name] = wrapped
            self._wrapper_of[id(net)] = wrapped

    def disable_data_parallel(self) -> None:
        """Drop the DistributedDataParallel wrappers (the plain networks stay as they are).

        The training loop calls this before the process group is destroyed: a wrapper's
        reducer holds the group, and one freed only at interpreter exit can abort the
        process from a communication thread.
        """
        self._wrappers, self._wrapper_of = {}, {}

    def data_parallel_wrappers(self) -> dict[str, nn.Module]:
        """The DistributedDataParallel wrapper of each trainable network (empty in one process)."""
        return dict(self._wrappers)

    def parallel(self, net: nn.Module) -> Callable[..., Any]:
        """``net`` for a training forward whose backward updates ``net``'s own parameters.

        Under data-parallel training this runs ``net`` through its DistributedDataParallel
        wrapper, so the backward averages its gradients over the processes; otherwise it is
        ``net``. Call a frozen network directly instead: its parameters get no gradient,
        which the wrapper's reducer would wait for.
        """
        wrapped = self._wrapper_of.get(id(net))
        return net if wrapped is None else functools.partial(wrapped, _call_network)

    def parallel_apply(self, net: nn.Module, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``fn(net, *args, **kwargs)`` as one data-parallel forward of ``net``.

        For networks trained through entry points other than ``forward`` (UNIT's encoders
        and decoders, StyleGAN2's mapping and synthesis networks).
        """
        wrapped = self._wrapper_of.get(id(net))
        out: R = fn(net, *args, **kwargs) if wrapped is None else wrapped(fn, *args, **kwargs)
        return out

    def gather_batch(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (first dimension: this process's batch) concatenated over all processes.

        For statistics that must see the global batch (ADA's ``E[sign(D(x))]``, StyleGAN2's
        path-length mean); not differentiable. The plain ``t`` in one process.
        """
        if self.dp_world <= 1:
            return t
        parts = [torch.empty_like(t) for _ in range(self.dp_world)]
        dist.all_gather(parts, t.detach().contiguous())
        return torch.cat(parts, 0)


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
