"""Frozen configuration of a training run (what the loop does, and on which data).

Stored verbatim in ``run.json`` (``train_config``) so a run describes itself and can be
resumed with exactly the same settings.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from medgan_desktop.core.types import JsonObject


def check_keys(d: Mapping[str, Any], valid: Iterable[str], section: str) -> None:
    """Raise ``ValueError`` naming the keys of ``d`` not in ``valid`` (with close matches) and the valid ones."""
    known = sorted(valid)
    unknown = [k for k in d if k not in known]
    if not unknown:
        return
    hints = []
    for k in unknown:
        close = difflib.get_close_matches(str(k), known, n=1)
        hints.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
    raise ValueError(f"unknown {section} key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                     f"valid keys: {', '.join(known)}")


class StopReason(StrEnum):
    """Why a training session ended."""

    TOTAL = "total"  # reached the configured number of steps
    USER = "user"  # cancelled (Stop in the GUI, closing the app)
    CPU_BUDGET = "cpu_budget"  # the run's CPU-seconds budget is spent
    TIME_BUDGET = "time_budget"  # the session's wall-clock budget is spent


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class DataKind(StrEnum):
    AUTO = "auto"  # decided from the path's contents
    IMAGES = "images"  # PNG/JPEG folder (labels optionally from subfolders)
    VOLUMES = "volumes"  # NIfTI/MHA files or a DICOM series folder -> 2D slices
    INDEX = "index"  # series from the study index (``series_uids``)


@dataclass(frozen=True)
class DataConfig:
    """Where the training images come from and how they are preprocessed.

    Args:
        path: image folder, volume file/folder (empty for ``kind="index"``).
        kind: see :class:`DataKind`.
        size: square training size in pixels.
        channels: 1 (grey) or 3 (RGB images only).
        label_from_subfolders: class label = first-level subfolder name (image folders).
        max_images: use at most this many images/slices (0: all), a fixed subset per seed.
        axis: slice axis for volumes (0: k / axial for axial series, 1: j, 2: i).
        modality: "CT", "MR", "CR", ... ("" guesses: HU-like values -> CT).
        window_lo / window_hi: fixed window (HU for CT) instead of the modality default.
        flip: random left-right flips.
        rotate90: random multiples of 90 degree rotations.
        series_uids: study-index series (``kind="index"``).
        min_foreground: volume slices whose fraction of pixels above the window floor is
            lower than this are skipped (air-only slices).
        val_share: image folders: hold out this share, whole patients at a time (the
            patient read from the file name), as the validation set (0: none).
        patient_pattern: regex of the patient identifier in file names ("" : the default,
            ``person123``, ``IM-0115``, ``patient07``, ``case_12``, ``sub-03``).
    """

    path: str = ""
    kind: str = DataKind.AUTO.value
    size: int = 64
    channels: int = 1
    label_from_subfolders: bool = False
    max_images: int = 0
    axis: int = 0
    modality: str = ""
    window_lo: float | None = None
    window_hi: float | None = None
    flip: bool = False
    rotate90: bool = False
    series_uids: tuple[str, ...] = ()
    min_foreground: float = 0.05
    val_share: float = 0.0
    patient_pattern: str = ""

    @classmethod
    def from_dict(cls, d: JsonObject, strict: bool = False) -> DataConfig:
        """Build from a dict; unknown keys are dropped (a newer run.json), or with
        ``strict`` refused with a ``ValueError`` that lists the valid keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        if strict:
            check_keys(d, names, "data")
        kw = {k: v for k, v in d.items() if k in names}
        if "series_uids" in kw:
            kw["series_uids"] = tuple(kw["series_uids"])
        return cls(**kw)


@dataclass(frozen=True)
class TrainConfig:
    """How the loop runs.

    Args:
        steps: total number of optimisation steps (a resumed run continues to this total).
        batch_size: global batch (split over ranks under DDP).
        checkpoint_every: write a checkpoint every N steps (and always at the end/stop).
        checkpoint_minutes: also write one when this many minutes have passed since the
            last (0: by steps only), so a crash loses at most this much work.
        sample_every: write a sample grid every N steps (0: never).
        log_every: append a metrics line every N steps.
        seed: seeds model init, noise, data order and augmentation.
        device: "auto" | "cpu" | "cuda" | "mps" (or "cuda:1").
        amp: mixed precision (bfloat16 autocast) on CUDA GPUs that support bfloat16.
        cpu_bf16: bfloat16 autocast on the CPU too, where it has fast bfloat16 kernels
            (AVX512-BF16/AMX: ~1.6x faster steps); off by default, the benchmarks' quality
            figures are fp32.
        num_workers: DataLoader worker processes.
        threads: torch CPU threads (0: all cores but one, leaving one for the GUI); also
            the thread count of ITK (registration, resampling).
        keep_checkpoints: keep the newest N checkpoints (0: keep all).
        sample_count: images per sample grid.
        cpu_seconds: stop when the run has used this much CPU time (all threads, counted
            across resumes; 0: no limit). ``steps`` is then the most it trains.
        budget_minutes: stop when this session has run this many wall-clock minutes
            (0: no limit).
        val_every: every N steps, score the generator on the validation set (the data's
            ``val_share``): Fréchet distance in the shipped features, class-matched, logged
            to metrics.jsonl; the best-scoring weights are kept as ``best.safetensors``, and
            sampling and export use them (0: off).
        data: the data source and preprocessing.
    """

    steps: int = 2000
    batch_size: int = 32
    checkpoint_every: int = 500
    checkpoint_minutes: float = 5.0
    sample_every: int = 250
    log_every: int = 10
    seed: int = 0
    device: str = DeviceChoice.AUTO.value
    amp: bool = True
    cpu_bf16: bool = False
    num_workers: int = 0
    threads: int = 0
    keep_checkpoints: int = 3
    sample_count: int = 16
    cpu_seconds: float = 0.0
    budget_minutes: float = 0.0
    val_every: int = 0
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` with a clear message for impossible settings; returns self."""
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        for name in ("checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.sample_every < 0 or self.num_workers < 0 or self.threads < 0 or self.val_every < 0:
            raise ValueError("sample_every, val_every, num_workers and threads must be >= 0")
        if not 0.0 <= self.data.val_share < 1.0:
            raise ValueError(f"validation share must be in [0, 1), got {self.data.val_share}")
        if self.val_every and not self.data.val_share:
            raise ValueError("validation every N steps needs a validation share (--val-share)")
        if self.cpu_seconds < 0 or self.budget_minutes < 0 or self.checkpoint_minutes < 0:
            raise ValueError("cpu_seconds, budget_minutes and checkpoint_minutes must be >= 0")
        return self

    def to_dict(self) -> JsonObject:
        d = dataclasses.asdict(self)
        d["data"]["series_uids"] = list(self.data.series_uids)
        return d

    @classmethod
    def from_dict(cls, d: JsonObject, strict: bool = False) -> TrainConfig:
        """Build from a dict (``data`` nested); unknown keys are dropped (a newer run.json),
        or with ``strict`` refused with a ``ValueError`` that lists the valid keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        if strict:
            check_keys(d, names, "train_config")
        kw = {k: v for k, v in d.items() if k in names and k != "data"}
        return cls(**kw, data=DataConfig.from_dict(dict(d.get("data") or {}), strict=strict))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
