"""Pluggable feature extractors for the distribution metrics (FD/FID, KID, PR, memorisation).

Two extractors exist:

* :class:`MedFeatureNet` (through :class:`ShippedExtractor`): a compact CNN this project
  trained on open chest X-rays (see ``models/feature_extractor/card.md``), shipped with
  the app so the metrics work offline out of the box. Its Fréchet distance is an "FD"
  in its own feature space, not comparable with published FID numbers.
* :class:`InceptionV3Extractor`: the standard FID InceptionV3 (2048-d pool features),
  built from a weights file the user already has (``pt_inception-2015-12-05``
  layout). It is never downloaded.

Every extractor takes grey images as float arrays in ``[0, 1]`` of any size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import Float64Array, FloatArray

#: Input side of :class:`MedFeatureNet`.
MED_INPUT_SIZE = 64
#: Output feature dimension of :class:`MedFeatureNet`.
MED_FEATURE_DIM = 256

#: Grey images in ``[0, 1]``, of any size: a list of ``(H, W)`` (or ``(H, W, C)``) arrays or
#: one stacked array.
Images = Sequence[FloatArray] | FloatArray


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps grey images in ``[0, 1]`` to feature vectors."""

    name: str
    dim: int

    def extract(
        self,
        images: Images,
        batch_size: int = 32,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> Float64Array:
        """Features of shape ``(N, dim)``."""
        ...


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch threads (None: unchanged), restoring the old count.

    Small networks run fastest on one thread, and far faster than on two when other
    processes share the CPU (measured 25x on a busy 2-core machine).
    """
    if n is None or n <= 0:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MedFeatureNet(nn.Module):
    """A compact CNN (~0.7 M parameters) for 64x64 grey radiographs.

    ``features`` gives the 256-d global-average-pooled embedding; the two heads
    (class: NORMAL/PNEUMONIA, rotation: 0/90/180/270°) exist only for training.
    """

    def __init__(self, n_classes: int = 2, n_rotations: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(1, 24, stride=2),  # 32
            _conv(24, 48),
            _conv(48, 96, stride=2),  # 16
            _conv(96, 96),
            _conv(96, 192, stride=2),  # 8
            _conv(192, 192),
            _conv(192, MED_FEATURE_DIM, k=1),
        )
        self.cls_head = nn.Linear(MED_FEATURE_DIM, n_classes)
        self.rot_head = nn.Linear(MED_FEATURE_DIM, n_rotations)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 64, 64)`` in ``[0, 1]`` -> ``(N, 256)``."""
        h = self.body(2.0 * x - 1.0)
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.cls_head(f), self.rot_head(f)


def _as_batch(images: Images, size: int) -> torch.Tensor:
    """Resize grey images to ``size``² and stack them as ``(N, 1, size, size)``."""
    tensors = []
    for im in images:
        a = np.asarray(im, dtype=np.float32)
        if a.ndim == 3:  # (H, W, C) colour: average to grey
            a = a.mean(axis=-1)
        t = torch.from_numpy(np.array(a, dtype=np.float32, copy=True))[None, None]
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        tensors.append(t)
    return torch.cat(tensors, 0).clamp_(0.0, 1.0)


class _NetworkExtractor:
    """A :class:`FeatureExtractor` running a network on batches resized to ``input_size``."""

    input_size: ClassVar[int]
    #: The batch size when none is given.
    batch_size: ClassVar[int]

    def __init__(self, name: str, dim: int, threads: int | None) -> None:
        self.name = name
        self.dim = dim
        self.threads = threads

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _batched(
        self, fn: Callable[[torch.Tensor], torch.Tensor], images: Images, batch_size: int | None,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> Float64Array:
        """``fn`` of every batch of ``images``, concatenated."""
        n = len(images)
        step = self.batch_size if batch_size is None else batch_size
        outs: list[torch.Tensor] = []
        with torch.inference_mode(), torch_threads(self.threads):
            for start in range(0, n, step):
                if cancel is not None:
                    cancel.check()
                outs.append(fn(_as_batch(images[start:start + step], self.input_size)))
                done = min(n, start + step)
                progress(Progress(done, n, f"{self.name} features {done}/{n}"))
        out: Float64Array = torch.cat(outs).double().numpy()
        return out

    def extract(
        self,
        images: Images,
        batch_size: int | None = None,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> Float64Array:
        """Features of shape ``(N, dim)``."""
        if len(images) == 0:
            return np.zeros((0, self.dim))
        return self._batched(self._features, images, batch_size, progress, cancel)


class ShippedExtractor(_NetworkExtractor):
    """The project's :class:`MedFeatureNet` wrapped as a :class:`FeatureExtractor`."""

    input_size = MED_INPUT_SIZE
    batch_size = 64

    def __init__(self, net: MedFeatureNet, name: str = "medfeaturenet", threads: int | None = 1) -> None:
        super().__init__(name, MED_FEATURE_DIM, threads)
        self.net = net.eval()

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net.features(batch)

    @classmethod
    def from_dir(cls, folder: Path | str) -> ShippedExtractor:
        """Load ``weights.safetensors`` (+ ``run.json``) from a model folder.

        Raises:
            FileNotFoundError: when the weights are missing.
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        wfile = folder / "weights.safetensors"
        if not wfile.is_file():
            raise FileNotFoundError(f"shipped feature extractor weights not found: {wfile}")
        net = MedFeatureNet()
        net.load_state_dict(load_file(str(wfile)))
        name = "medfeaturenet"
        run = folder / "run.json"
        if run.is_file():
            name = str(json.loads(run.read_text()).get("id", name))
        return cls(net, name)


def _read_weights(p: Path) -> object:
    """The raw content of a weights file: safetensors, or ``torch.load(weights_only=True)``."""
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    return torch.load(str(p), map_location="cpu", weights_only=True)


def _unreadable_reason(exc: BaseException) -> str:
    """A short reason for an unreadable weights file, never advice to load unsafely."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return ("not a PyTorch tensor file, or it holds Python objects besides tensors; "
                "only plain tensors are ever loaded")
    if isinstance(exc, EOFError):
        return "the file is empty or truncated"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "weights_only" in text or "pickle" in text.lower():
        text = type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class InceptionV3Extractor(_NetworkExtractor):
    """The FID InceptionV3 (2048-d pool features, 1008 logits for the Inception Score)."""

    input_size = 299
    batch_size = 16

    def __init__(self, net: nn.Module, name: str = "inception-v3-fid", threads: int | None = None) -> None:
        super().__init__(name, 2048, threads)
        self.net = net.eval()

    @classmethod
    def from_weights(cls, path: Path | str) -> InceptionV3Extractor:
        """Build the network and load a local ``pt_inception-2015-12-05`` file.

        ``.safetensors`` files are read with safetensors, ``.pth``/``.pt`` files with
        ``torch.load(weights_only=True)`` (never the unsafe pickle loader).

        Raises:
            FileNotFoundError: when the file does not exist.
            ValueError: when the file cannot be read as plain tensors (the message starts
                "not a readable InceptionV3 weights file") or does not hold the expected
                tensors.
        """
        from medgan_desktop.core.metrics.inception import FIDInceptionV3

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"InceptionV3 weights not found: {p}")
        try:
            loaded = _read_weights(p)
        except Exception as exc:  # any reader failure becomes one clear, safe message
            raise ValueError(f"not a readable InceptionV3 weights file: {p} "
                             f"({_unreadable_reason(exc)})") from None
        if p.suffix != ".safetensors" and isinstance(loaded, dict) and "state_dict" in loaded:
            loaded = loaded["state_dict"]
        if not isinstance(loaded, dict):  # safetensors: always a dict of tensors
            raise ValueError(f"{p.name} does not hold a state dict")
        state: dict[str, torch.Tensor] = loaded
        net = FIDInceptionV3()
        expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
        missing = sorted(expected - set(state))
        if missing:
            raise ValueError(
                f"{p.name} is not an FID InceptionV3 weights file: {len(missing)} tensors "
                f"missing (e.g. {missing[:3]})"
            )
        try:
            net.load_state_dict({k: v for k, v in state.items() if k in net.state_dict()},
                                strict=False)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ValueError(f"{p.name}: tensor shapes do not match InceptionV3: {exc}") from exc
        return cls(net)

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.net(batch.expand(-1, 3, -1, -1))
        return out

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return self._forward(batch)[0]

    def logits(self, images: Images, batch_size: int | None = None, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> Float64Array:
        """The 1008 class logits (for the Inception Score)."""
        return self._batched(lambda b: self._forward(b)[1], images, batch_size, progress, cancel)


def shipped_extractor_dir() -> Path:
    """Where the app's own feature extractor lives."""
    from medgan_desktop.core.config import AppPaths

    return AppPaths.default().shipped_models_dir / "feature_extractor"


def default_extractor() -> ShippedExtractor:
    """The shipped :class:`MedFeatureNet` extractor, checked against its manifest sha256."""
    from medgan_desktop.core.models.registry import ModelRegistry

    return ShippedExtractor.from_dir(ModelRegistry().resolve("feature_extractor"))


def load_extractor(spec: str | Path = "shipped") -> FeatureExtractor:
    """``"shipped"`` for the app's extractor, or a path to InceptionV3 FID weights."""
    if str(spec) == "shipped":
        return default_extractor()
    return InceptionV3Extractor.from_weights(spec)
