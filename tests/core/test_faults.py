"""Faults during training and export: SIGKILL, full disk, read-only folders, corrupt files, OOM.

* ``medgan train`` killed with SIGKILL at seeded random points: every checkpoint left on
  disk loads (safetensors + ``torch.load(weights_only=True)``), temp files are never taken
  for checkpoints, ``--resume`` continues from the newest checkpoint (losing at most
  ``checkpoint_every`` steps) and the run completes with one metrics line per step.
* ENOSPC / read-only during checkpointing: a clear :class:`RunWriteError` naming the intact
  checkpoint, no half checkpoint or temp file left, and the run resumes.
* ENOSPC mid-way through a synthetic series or an anonymisation export: nothing in the
  destination, no hidden partial folder beside it.
* truncated/bit-flipped weights and state files are refused with a clear message by
  ``load_model`` and ``medgan train --resume``.
* CUDA out-of-memory at step k: :class:`TrainingOOMError` suggesting a smaller batch, the
  checkpoint intact and resumable; the CLI exits 3 with that message.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.dataset import Dataset
from safetensors.torch import load_file

from medgan_desktop.cli import main as cli_main
from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, anonymize_folder
from medgan_desktop.core.dicom.write import write_synthetic_series
from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.models.runs import (
    ModelLoadError,
    Preprocessing,
    list_checkpoints,
    load_model,
    read_state,
    state_path,
)
from medgan_desktop.core.training.config import TrainConfig
from medgan_desktop.core.training.loop import RunWriteError, TrainingError, TrainingOOMError, train
from medgan_desktop.core.volume import Volume

REPO = Path(__file__).resolve().parents[2]
_CKPT_RE = re.compile(r"^step_(\d{8})\.safetensors$")
_STATE_RE = re.compile(r"^step_(\d{8})\.state\.pt$")
MC = MethodConfig(size=16, latent_dim=8, base_filters=4)


class TinyData:
    """16 random 16x16 images (the loop only needs len/getitem/preprocessing/describe)."""

    preprocessing = Preprocessing(size=16)

    def __init__(self, n: int = 16) -> None:
        self.x = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"target": self.x[key[0]]}

    def describe(self) -> dict[str, object]:
        return {"kind": "tiny", "n": len(self)}


def _cfg(steps: int, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(steps=steps, batch_size=4, checkpoint_every=2, sample_every=0,
                                   log_every=1, seed=3, device="cpu", threads=1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def image_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve real chest X-rays in a temp folder (never copied into the repository)."""
    src = shared_data / "chest_xray" / "train" / "NORMAL"
    files = sorted(src.glob("*.jpeg"))[:12]
    assert len(files) == 12, f"expected chest X-rays in {src}"
    out = tmp_path_factory.mktemp("xray")
    for f in files:
        shutil.copy(f, out / f.name)
    return out


def _leftovers(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if p.name.startswith(".") or p.suffix == ".tmp")


def _check_checkpoint_files(run: Path) -> None:
    """Every committed file loads; temp files are never listed as checkpoints."""
    listed = list_checkpoints(run)
    listed_paths = {p for _, p in listed}
    for p in sorted((run / "checkpoints").iterdir()):
        if m := _CKPT_RE.match(p.name):
            weights = load_file(p)  # a truncated file raises here
            assert weights and any(k.startswith("G.") for k in weights), p
        elif m := _STATE_RE.match(p.name):
            state = torch.load(p, map_location="cpu", weights_only=True)
            assert int(state["step"]) == int(m.group(1)), p
        else:  # what a killed atomic write leaves: a hidden temp file, never a checkpoint
            assert p.name.startswith(".") and p.name.endswith(".tmp"), p
            assert p not in listed_paths
    for step, p in listed:
        assert p.name == f"step_{step:08d}.safetensors" and state_path(p).is_file()
    assert load_file(run / "weights.safetensors")


def _metrics(run: Path) -> list[dict[str, object]]:
    out = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by SIGKILL
            continue
    return out


# -- 1. SIGKILL at random points -------------------------------------------------------------
CKPT_EVERY = 20
TOTAL = 400


def _wait_poll(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to ``seconds`` for the process; True when it exited."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_sigkill_at_random_points_then_resume(image_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    log = tmp_path / "train.log"
    rng = random.Random(20240601)
    base = [sys.executable, "-m", "medgan_desktop.cli", "train"]
    first = [*base, "--method", "dcgan", "--data", str(image_folder), "--size", "16",
             "--steps", str(TOTAL), "--batch", "4", "--device", "cpu", "--out", str(run),
             "--set", f"checkpoint_every={CKPT_EVERY}", "--set", "sample_every=0",
             "--set", "log_every=1", "--set", "keep_checkpoints=3"]
    resume = [*base, "--resume", str(run), "--steps", str(TOTAL), "--device", "cpu"]
    kills: list[tuple[int, float]] = []  # (resumed-from step, kill time)
    last_ckpt = 0
    cmd = first
    finished = False
    deadline = time.monotonic() + 150
    for _round in range(3):
        with log.open("ab") as fh:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        try:
            # wait for a checkpoint newer than the one this session started from
            while not (list_checkpoints(run) and list_checkpoints(run)[-1][0] > last_ckpt):
                if _wait_poll(proc, 0.05):
                    pytest.fail(f"training exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
                assert time.monotonic() < deadline, "training made no checkpoint in time"
            if _wait_poll(proc, rng.uniform(0.0, 1.0)):
                finished = True  # reached the total before the chosen kill point
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            killed_at = time.time()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        _check_checkpoint_files(run)
        done = max(int(m["step"]) for m in _metrics(run))  # type: ignore[call-overload]
        ckpts = list_checkpoints(run)
        last_ckpt = ckpts[-1][0]
        assert last_ckpt <= done and done - last_ckpt <= CKPT_EVERY, (done, last_ckpt)
        kills.append((last_ckpt, killed_at))
        cmd = resume
        if _round == 0:  # a killed write's temp files must never count as a checkpoint
            for name in (".step_00000999.safetensors.dead.tmp", ".step_00000999.state.pt.dead.tmp"):
                (run / "checkpoints" / name).write_bytes(b"\x00" * 100)
    assert kills, "no kill happened: the run finished too fast"
    if finished:
        assert proc.returncode == 0, log.read_text()[-3000:]
    else:
        done_run = subprocess.run(resume, cwd=REPO, capture_output=True, text=True, timeout=120,
                                  check=False)
        assert done_run.returncode == 0, done_run.stderr[-3000:]
        assert f"done: step {TOTAL}/{TOTAL}" in done_run.stdout
    _check_checkpoint_files(run)
    assert list_checkpoints(run)[-1][0] == TOTAL
    lines = _metrics(run)
    steps = [int(m["step"]) for m in lines]  # type: ignore[call-overload]
    assert steps == list(range(1, TOTAL + 1)), "metrics must have exactly one line per step"
    t = {int(m["step"]): float(m["time"]) for m in lines}  # type: ignore[call-overload, arg-type]
    for resumed_from, killed_at in kills:
        # steps up to the checkpoint came from before the kill, the next one from the resume
        assert t[resumed_from] < killed_at <= t[resumed_from + 1] + 0.5
    assert t[1] < kills[0][1]
    assert load_model(run).method.generate(2).shape == (2, 1, 16, 16)


# -- 2. full disk / read-only during checkpointing --------------------------------------------
def _enospc_on(monkeypatch: pytest.MonkeyPatch, name: str, nth: int = 1) -> None:
    """``os.replace`` onto a file called ``name`` fails with ENOSPC from its ``nth`` time on."""
    real = os.replace
    seen = {"n": 0}

    def replace(src: str | Path, dst: str | Path, *a: object, **k: object) -> None:
        if Path(dst).name == name:
            seen["n"] += 1
            if seen["n"] >= nth:
                Path(src).write_bytes(b"")  # what a failed write leaves in the temp file
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real(src, dst, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("victim", ["step_00000004.state.pt", "step_00000004.safetensors"])
def test_full_disk_during_checkpoint(victim: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "r"
    _enospc_on(monkeypatch, victim)
    with pytest.raises(RunWriteError, match="disk is full") as ei:
        train("dcgan", MC, _cfg(6), TinyData(), run)
    assert "checkpoint at step 2 is intact" in str(ei.value)
    assert isinstance(ei.value, TrainingError)
    monkeypatch.undo()
    assert [s for s, _ in list_checkpoints(run)] == [2]
    # no half checkpoint (state without weights or the reverse), no temp files
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_00000002.safetensors", "step_00000002.state.pt"]
    assert _leftovers(run) == []
    assert read_state(run / "checkpoints" / "step_00000002.state.pt")["step"] == 2
    s = train("dcgan", MC, _cfg(6), TinyData(), run, resume=True)
    assert s.step == 6 and [c for c, _ in list_checkpoints(run)][-1] == 6


def test_read_only_run_folder_during_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root, which ignores chmod: simulate the read-only mount at mkstemp
    import tempfile

    real = tempfile.mkstemp
    calls = {"n": 0}

    def mkstemp(*a: object, **k: object) -> tuple[int, str]:
        if str(k.get("prefix", "")).startswith(".step_00000004"):
            raise OSError(errno.EROFS, "Read-only file system", str(k.get("dir")))
        calls["n"] += 1
        return real(*a, **k)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    run = tmp_path / "r"
    with pytest.raises(RunWriteError, match="read-only") as ei:
        train("dcgan", MC, _cfg(6), TinyData(), run)
    assert "step 2 is intact" in str(ei.value)
    assert calls["n"] > 0
    assert [s for s, _ in list_checkpoints(run)] == [2] and _leftovers(run) == []


def test_full_disk_via_cli_is_a_clear_error(image_folder: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _enospc_on(monkeypatch, "weights.safetensors", nth=2)
    run = tmp_path / "r"
    rc = cli_main(["train", "--method", "dcgan", "--data", str(image_folder), "--size", "16",
                   "--steps", "6", "--batch", "4", "--device", "cpu", "--out", str(run),
                   "--set", "checkpoint_every=3", "--set", "sample_every=0", "--set", "base_filters=4"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "medgan train: error:" in err and "disk is full" in err and "Traceback" not in err
    assert "weights.safetensors" in err
    monkeypatch.undo()
    # the step-6 checkpoint itself was complete; only the latest-weights copy failed
    assert [s for s, _ in list_checkpoints(run)] == [3, 6] and _leftovers(run) == []
    _check_checkpoint_files(run)


# -- 2b. full disk during DICOM export --------------------------------------------------------
def _save_as_fails_at(monkeypatch: pytest.MonkeyPatch, nth: int, err: int = errno.ENOSPC) -> dict[str, int]:
    real = Dataset.save_as
    calls = {"n": 0}

    def save_as(self: Dataset, filename: object, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == nth:
            Path(str(filename)).write_bytes(b"DICM" * 10)  # a partly written file
            raise OSError(err, os.strerror(err), str(filename))
        real(self, filename, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Dataset, "save_as", save_as)
    return calls


def test_full_disk_mid_synthetic_series(shared_data: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[:6]
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    vol = Volume(np.random.default_rng(0).normal(0, 200, (6, 32, 32)).astype(np.float32),
                 modality="CT", units="HU", synthetic=True)
    dest = tmp_path / "exports"
    dest.mkdir()
    calls = _save_as_fails_at(monkeypatch, 4)
    with pytest.raises(WriteError, match="disk is full") as ei:
        write_synthetic_series(vol, dest / "syn", source_datasets=sources, model_id="m",
                               model_version="1")
    assert "Nothing was written" in str(ei.value) and calls["n"] == 4
    assert list(dest.iterdir()) == []
    monkeypatch.undo()
    written = write_synthetic_series(vol, dest / "syn", source_datasets=sources, model_id="m",
                                     model_version="1")
    assert len(written) == 6 and all(pydicom.dcmread(f).SyntheticData == "YES" for f in written)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_disk_mid_anonymisation(err: int, shared_data: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[:5]:
        shutil.copy(f, src / f.name)
    dest = tmp_path / "exports"
    dest.mkdir()
    _save_as_fails_at(monkeypatch, 3, err)
    with pytest.raises(WriteError, match="disk is full" if err == errno.ENOSPC else "read-only"):
        anonymize_folder(src, dest / "anon", AnonymizeOptions())
    assert list(dest.iterdir()) == []
    assert len(list(src.iterdir())) == 5  # the source is untouched


# -- 3. corrupt / truncated checkpoint or weights ---------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "r"
    train("dcgan", MC, _cfg(4, keep_checkpoints=0), TinyData(), run)
    return run


def _corruptions(data: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[3] ^= 0xFF  # inside the 8-byte header length
    return {
        "empty": b"",
        "header-only": data[:8],
        "half": data[: len(data) // 2],
        "one-byte-short": data[:-1],
        "length-flip": bytes(flipped),
        "json-garbage": data[:8] + b"{not json" + data[17:],
    }


def test_load_model_refuses_corrupt_weights(trained_run: Path, tmp_path: Path) -> None:
    good = (trained_run / "weights.safetensors").read_bytes()
    for name, data in _corruptions(good).items():
        run = tmp_path / name
        shutil.copytree(trained_run, run)
        (run / "weights.safetensors").write_bytes(data)
        with pytest.raises(ModelLoadError, match=r"corrupt or truncated|no weights|do not fit") as ei:
            load_model(run)
        assert str(run / "weights.safetensors") in str(ei.value), name
        # an explicit checkpoint file is checked just the same
        ck = run / "checkpoints" / "step_00000002.safetensors"
        ck.write_bytes(data)
        with pytest.raises(ModelLoadError):
            load_model(run, checkpoint=ck)


@pytest.mark.parametrize("part", ["weights", "state"])
def test_resume_refuses_truncated_newest_checkpoint(part: str, trained_run: Path, tmp_path: Path,
                                                    image_folder: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The loop does not fall back silently: it refuses, naming the bad file. The CLI sets the
    broken checkpoint aside (kept as ``*.broken``), says so, and resumes from the intact one."""
    run = tmp_path / "r"
    shutil.copytree(trained_run, run)
    newest = run / "checkpoints" / "step_00000004.safetensors"
    bad = newest if part == "weights" else state_path(newest)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
    with pytest.raises(TrainingError, match="cannot resume") as ei:
        train("dcgan", MC, _cfg(8), TinyData(), run, resume=True)
    assert "corrupt or truncated" in str(ei.value) and bad.name in str(ei.value)
    # nothing was overwritten: the older checkpoint still loads
    assert load_model(run, checkpoint=run / "checkpoints" / "step_00000002.safetensors")
    # the same through the CLI (run.json's data path is replaced by real images on disk)
    info = json.loads((run / "run.json").read_text())
    info["train_config"]["data"] = {"path": str(image_folder), "size": 16}
    (run / "run.json").write_text(json.dumps(info))
    rc = cli_main(["train", "--resume", str(run), "--steps", "8", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and bad.name in err and "Traceback" not in err
    assert list((run / "checkpoints").glob("*.broken"))  # set aside, not deleted
    assert (run / "checkpoints" / "step_00000008.safetensors").is_file()


# -- 4. CUDA out of memory --------------------------------------------------------------------
def _oom_at(monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    from medgan_desktop.core.gan.methods.dcgan import DCGAN

    real_step = DCGAN.train_step

    def step(self: DCGAN, batch: object, i: int) -> dict[str, float]:
        if i == at_step:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return real_step(self, batch, i)  # type: ignore[arg-type]

    monkeypatch.setattr(DCGAN, "train_step", step)


def test_oom_suggests_smaller_batch_and_stays_resumable(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "r"
    _oom_at(monkeypatch, 5)  # steps are 0-based inside train_step: after checkpoint 4
    with pytest.raises(TrainingOOMError) as ei:
        train("dcgan", MC, _cfg(8, batch_size=8), TinyData(), run)
    msg = str(ei.value)
    assert "out of memory" in msg and "--batch 4" in msg and "step 4 is intact" in msg
    assert [s for s, _ in list_checkpoints(run)] == [2, 4] and _leftovers(run) == []
    _check_checkpoint_files(run)
    monkeypatch.undo()
    s = train("dcgan", MC, _cfg(8), TinyData(), run, resume=True)
    assert s.step == 8 and not s.cancelled


def test_oom_via_cli_exits_nonzero_with_advice(image_folder: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _oom_at(monkeypatch, 3)
    run = tmp_path / "r"
    rc = cli_main(["train", "--method", "dcgan", "--data", str(image_folder), "--size", "16",
                   "--steps", "6", "--batch", "4", "--device", "cpu", "--out", str(run),
                   "--set", "checkpoint_every=2", "--set", "sample_every=0", "--set", "base_filters=4"])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "out of memory" in err and "--batch 2" in err and "Traceback" not in err
    monkeypatch.undo()
    assert [s for s, _ in list_checkpoints(run)] == [2]
    rc = cli_main(["train", "--resume", str(run), "--steps", "4", "--device", "cpu"])
    assert rc == 0 and list_checkpoints(run)[-1][0] == 4
