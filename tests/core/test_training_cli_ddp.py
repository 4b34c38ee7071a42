"""``medgan train`` / ``medgan sample`` end to end, and 2-process DDP on CPU vs one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from medgan_desktop.cli import main

REPO = Path(__file__).resolve().parents[2]


def _pngs(root: Path, n: int = 16, size: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("A", "B"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = (rng.random((size, size)) * 255).astype(np.uint8)
        Image.fromarray(img).save(root / ("A" if i % 2 else "B") / f"{i:03d}.png")
    return root


TINY = ["--size", "16", "--batch", "4", "--device", "cpu", "--set", "base_filters=4", "--set", "latent_dim=8",
        "--set", "sample_every=0", "--set", "log_every=1"]


def test_train_resume_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--method", "cgan", "--data", str(data), "--label-from-subfolders", "--steps", "2",
                 "--out", str(run), *TINY, "--set", "ema_decay=0.9"]) == 0
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 0
    assert (run / "checkpoints" / "step_00000003.safetensors").is_file()
    outs = []
    for k in range(2):
        out = tmp_path / f"s{k}"
        assert main(["sample", "--model", str(run), "--n", "3", "--seed", "4", "--label", "B", "--out", str(out)]) == 0
        outs.append(sorted(out.glob("*.png")))
    assert len(outs[0]) == 3
    for a, b in zip(*outs, strict=True):
        assert a.read_bytes() == b.read_bytes()
    other = tmp_path / "s_other"
    assert main(["sample", "--model", str(run), "--n", "1", "--seed", "5", "--out", str(other)]) == 0
    assert next(other.glob("*.png")).read_bytes() != outs[0][0].read_bytes()
    dcm = tmp_path / "dcm"
    assert main(["sample", "--model", str(run), "--n", "2", "--out", str(dcm), "--format", "dicom"]) == 0
    files = sorted(dcm.glob("*.dcm"))
    assert len(files) == 2 and pydicom.dcmread(files[0]).pixel_array.shape == (16, 16)
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--method", "nope", "--data", "X"], "unknown GAN method"),
        (["train", "--method", "dcgan"], "--data is required"),
        (["train", "--method", "dcgan", "--data", "/nonexistent/data"], "does not exist"),
        (["train", "--method", "cgan", "--data", "{data}"], "--label-from-subfolders"),
        (["train", "--method", "dcgan", "--data", "{data}", "--batch", "16"], "need at least 32"),
        (["train", "--method", "dcgan", "--data", "{data}", "--device", "tpu"], "unknown device"),
        (["train", "--resume", "{tmp}"], "not a run"),
        (["sample", "--model", "{tmp}", "--n", "1", "--out", "{tmp}/o"], "not a run"),
    ],
)
def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    data = _pngs(tmp_path / "data")
    argv = [a.format(data=data, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_corrupt_model_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--method", "lsgan", "--data", str(data), "--steps", "1", "--out", str(run), *TINY]) == 0
    w = run / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    assert main(["sample", "--model", str(run), "--n", "1", "--out", str(tmp_path / "o")]) == 2
    assert "corrupt" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_two_cpu_processes_match_single(tmp_path: Path) -> None:
    data = _pngs(tmp_path / "data")
    args = ["train", "--method", "dcgan", "--data", str(data), "--steps", "3", *TINY,
            "--set", "g_norm=none", "--set", "d_norm=none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    single = tmp_path / "single"
    assert main([*args, "--out", str(single)]) == 0
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "medgan_desktop.cli", *args, "--out", str(ddp)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(single / "weights.safetensors")
    b = load_file(ddp / "weights.safetensors")
    assert a.keys() == b.keys()
    g0 = load_file(single / "checkpoints" / "step_00000003.safetensors")
    assert g0.keys() == a.keys()
    moved = 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
        moved += 1
    assert moved > 0
    # only rank 0 wrote metrics (one line per step, not two)
    assert (ddp / "metrics.jsonl").read_text().count("\n") == 3


def test_sampling_other_synthesis_methods(tmp_path: Path) -> None:
    """The loop, loader and sampler serve every synthesis method (StyleGAN2, progressive too)."""
    from medgan_desktop.core.inference.sample import (
        SampleError,
        interpolate,
        sample,
        truncation_mode,
    )
    from medgan_desktop.core.training.run import load_model

    data = _pngs(tmp_path / "data")
    for method in ("stylegan2", "progressive", "wgan_gp"):
        run = tmp_path / method
        assert main(["train", "--method", method, "--data", str(data), "--steps", "1", "--out", str(run), *TINY]) == 0
        model = load_model(run)
        a = sample(model, 2, seed=1)
        assert a.shape == (2, 1, 16, 16) and np.array_equal(a, sample(model, 2, seed=1))
        assert interpolate(model, 0, 1, 3).shape == (3, 1, 16, 16)
        if truncation_mode(model) is None:
            with pytest.raises(SampleError, match="truncation"):
                sample(model, 1, truncation=0.5)
        else:
            assert sample(model, 1, truncation=0.5).shape == (1, 1, 16, 16)
