"""Device selection (CUDA, Apple MPS, CPU) and deliberate CPU thread counts."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    """One device the user can train on.

    Args:
        key: what :func:`select_device` accepts ("cpu", "cuda:0", "mps").
        name: human-readable name.
        memory_bytes: total memory (0 when unknown, e.g. CPU/MPS).
    """

    key: str
    name: str
    memory_bytes: int = 0

    @property
    def label(self) -> str:
        if self.memory_bytes:
            return f"{self.name} ({self.memory_bytes / 2**30:.1f} GiB)"
        return self.name


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def list_devices() -> list[DeviceInfo]:
    """The CPU, every CUDA GPU (with its memory) and MPS when present."""
    out = [DeviceInfo("cpu", f"CPU ({cpu_count()} cores)")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append(DeviceInfo(f"cuda:{i}", f"GPU {i}: {p.name}", int(p.total_memory)))
    if _mps_available():
        out.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    return out


def select_device(choice: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit but absent device is an error."""
    c = (choice or "auto").lower()
    if c == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if c.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
        dev = torch.device(c)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"no GPU {dev.index}: {torch.cuda.device_count()} available")
        return dev
    if c == "mps":
        if not _mps_available():
            raise ValueError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    if c == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {choice!r}: use auto, cpu, cuda, cuda:N or mps")


def default_threads() -> int:
    """All cores but one (left for the GUI and the data loader); at least one."""
    return max(1, cpu_count() - 1)


def configure_threads(threads: int = 0) -> int:
    """Set the CPU threads of torch and of ITK (registration, resampling) to ``threads``.

    ``0`` means :func:`default_threads` (all cores but one, leaving one for the GUI), the
    same rule in training, translation and every other command. Returns the number set.
    """
    n = threads if threads > 0 else default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    return n


def cpu_bf16_supported() -> bool:
    """True when oneDNN has fast bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_settings(device: torch.device, amp: bool, cpu_bf16: bool = False) -> tuple[bool, torch.dtype]:
    """``(enabled, dtype)`` of the training autocast on ``device``.

    * CUDA: bfloat16 when ``amp`` and the GPU supports it (Ampere and newer). Older GPUs
      train in fp32: float16 autocast without loss scaling lets small gradients underflow,
      and a method's ``train_step`` owns its backward passes, so no scaler can be inserted.
    * CPU: bfloat16 only when asked (``cpu_bf16``) and the CPU has fast bfloat16 kernels;
      about 1.6x faster DCGAN steps on an AVX512-BF16 CPU (``benchmarks/bench_training.py``).
      Off by default: the published quality figures were measured in fp32.
    * Anything else (MPS): fp32.
    """
    if device.type == "cuda":
        return (amp and torch.cuda.is_bf16_supported()), torch.bfloat16
    if device.type == "cpu":
        return (cpu_bf16 and cpu_bf16_supported()), torch.bfloat16
    return False, torch.float32
