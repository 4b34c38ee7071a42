"""Training loop: resume is bit-for-bit, writes are atomic, corrupt weights refused, cancel/OOM handled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.models.runs import ModelLoadError, Preprocessing, list_checkpoints, load_model, load_run
from medgan_desktop.core.progress import CancelToken, Progress
from medgan_desktop.core.training.config import TrainConfig
from medgan_desktop.core.training.data import DataError
from medgan_desktop.core.training.loop import StepBatchSampler, TrainingError, TrainingOOMError, train

MC = MethodConfig(size=16, latent_dim=8, base_filters=4, ema_decay=0.9, diffaugment="translation")


class TinyData:
    """16 random 16x16 images with flips driven by the per-sample seed."""

    preprocessing = Preprocessing(size=16)

    def __init__(self, n: int = 16) -> None:
        self.x = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        i, seed = key
        img = self.x[i]
        return {"target": torch.flip(img, (2,)) if seed % 2 else img}

    def describe(self) -> dict[str, object]:
        return {"kind": "tiny", "n": len(self)}


def _cfg(steps: int, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(steps=steps, batch_size=4, checkpoint_every=2, sample_every=2, log_every=1, sample_count=4, seed=7)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    full = train("dcgan", MC, _cfg(4), TinyData(), tmp_path / "full")
    assert full.step == 4 and not full.cancelled
    part = train("dcgan", MC, _cfg(2), TinyData(), tmp_path / "part")
    assert part.step == 2
    resumed = train("dcgan", MC, _cfg(4), TinyData(), tmp_path / "part", resume=True)
    assert resumed.step == 4
    a = load_file(tmp_path / "full" / "weights.safetensors")
    b = load_file(tmp_path / "part" / "weights.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("G_ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(x)["step"] for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    # self-describing folder; no temp files left behind
    info = load_run(tmp_path / "part")
    assert info.method == "dcgan" and info.train_config["steps"] == 4 and info.data["kind"] == "tiny"
    assert sorted(p.name for p in (tmp_path / "part" / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    leftovers = [p for p in (tmp_path / "part").rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []
    state = torch.load(tmp_path / "part" / "checkpoints" / "step_00000004.state.pt", weights_only=True)
    assert state["step"] == 4 and set(state["optimizers"]) == {"G", "D"}


def test_refuses_existing_run_and_nothing_to_resume(tmp_path: Path) -> None:
    train("dcgan", MC, _cfg(2), TinyData(), tmp_path / "r")
    with pytest.raises(TrainingError, match="already holds a run"):
        train("dcgan", MC, _cfg(2), TinyData(), tmp_path / "r")
    for f in (tmp_path / "r" / "checkpoints").iterdir():
        f.unlink()
    with pytest.raises(TrainingError, match="no complete checkpoint"):
        train("dcgan", MC, _cfg(4), TinyData(), tmp_path / "r", resume=True)


def test_corrupt_weights_refused(tmp_path: Path) -> None:
    run = tmp_path / "r"
    train("dcgan", MC, _cfg(2), TinyData(), run)
    assert load_model(run).method.generate(1).shape == (1, 1, 16, 16)
    w = run / "weights.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(run)
    w.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError):
        load_model(run)


def test_cancel_writes_checkpoint(tmp_path: Path) -> None:
    token = CancelToken()
    seen: list[Progress] = []

    def progress(p: Progress) -> None:
        seen.append(p)
        if p.done == 3:
            token.cancel()

    s = train("dcgan", MC, _cfg(10, checkpoint_every=100), TinyData(), tmp_path / "r", progress=progress, cancel=token)
    assert s.cancelled and s.step == 3
    assert [c[0] for c in list_checkpoints(tmp_path / "r")] == [3]
    assert seen[-1].step is not None and seen[-1].step.losses and seen[-1].step.eta_s >= 0
    assert any(p.step is not None and p.step.sample for p in seen)
    s2 = train("dcgan", MC, _cfg(5), TinyData(), tmp_path / "r", resume=True)
    assert s2.step == 5 and not s2.cancelled


def test_oom_leaves_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan_desktop.core.gan.methods.dcgan import DCGAN

    real_step = DCGAN.train_step

    def flaky(self: DCGAN, batch: object, step: int) -> dict[str, float]:
        if step == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_step(self, batch, step)  # type: ignore[arg-type]

    monkeypatch.setattr(DCGAN, "train_step", flaky)
    with pytest.raises(TrainingOOMError, match=r"smaller|--batch 2") as ei:
        train("dcgan", MC, _cfg(6), TinyData(), tmp_path / "r")
    assert "step 2 is intact" in str(ei.value)
    assert load_model(tmp_path / "r").weights.is_file()


def test_too_few_images(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="need at least 8"):
        train("dcgan", MC, _cfg(2), TinyData(n=6), tmp_path / "r")


def test_sampler_rank_slices_cover_global_batch() -> None:
    one = iter(StepBatchSampler(10, 4, 0, 1, seed=1))
    r0 = iter(StepBatchSampler(10, 4, 0, 2, seed=1))
    r1 = iter(StepBatchSampler(10, 4, 1, 2, seed=1))
    late = iter(StepBatchSampler(10, 4, 0, 1, seed=1, start_step=3))
    batches = [next(one) for _ in range(4)]
    for b in batches[:3]:
        assert b == next(r0) + next(r1)
    assert next(late) == batches[3]
    assert {i for i, _ in batches[0] + batches[1]} <= set(range(10))
