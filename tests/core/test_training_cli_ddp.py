"""``medgan train`` / ``medgan sample`` end to end; DistributedDataParallel training (2 CPU processes vs one)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from medgan_desktop.cli import main
from medgan_desktop.core.gan.methods.base import Batch, GanMethod, MethodConfig, Task, available_methods, get_method

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


def _torchrun(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Two CPU processes under torchrun (gloo), one thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def _losses(run: Path) -> list[dict[str, float]]:
    return [json.loads(line)["losses"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_same_weights(a_path: Path, b_path: Path) -> None:
    a, b = load_file(a_path), load_file(b_path)
    assert a.keys() == b.keys() and a  # no wrapper prefixes ("G.module.net....")
    assert not any(".module." in k for k in b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def _assert_same_losses(a: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert len(a) == len(b) and a
    for la, lb in zip(a, b, strict=True):
        assert la.keys() == lb.keys()
        for k in la:
            assert lb[k] == pytest.approx(la[k], rel=1e-4, abs=1e-5), k


def test_ddp_two_cpu_processes_match_single(tmp_path: Path) -> None:
    """`torchrun -m medgan_desktop.cli train`: 2 processes x batch 2 == 1 process x batch 4."""
    data = _pngs(tmp_path / "data")
    args = ["train", "--method", "dcgan", "--data", str(data), "--steps", "3", *TINY,
            "--set", "g_norm=none", "--set", "d_norm=none"]
    single = tmp_path / "single"
    assert main([*args, "--out", str(single)]) == 0
    ddp = tmp_path / "ddp"
    proc = _torchrun(["-m", "medgan_desktop.cli", *args, "--out", str(ddp)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_weights(single / "weights.safetensors", ddp / "weights.safetensors")
    assert load_file(single / "checkpoints" / "step_00000003.safetensors").keys() == load_file(
        ddp / "weights.safetensors").keys()
    # only rank 0 wrote metrics (one line per step, not two); the losses are the global batch's
    _assert_same_losses(_losses(single), _losses(ddp))


def test_ddp_translation_penalty_and_resume_match_single(tmp_path: Path) -> None:
    """pix2pix and a resumed EMA run match one process; WGAN-GP (double backward) keeps the replicas equal."""
    from tests.core.ddp_worker import run_all

    torch.set_num_threads(1)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_all(single, resume_split=False)
    proc = _torchrun(["-m", "tests.core.ddp_worker", str(ddp)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("pix2pix", "resume"):
        _assert_same_weights(single / name / "weights.safetensors", ddp / name / "weights.safetensors")
        _assert_same_losses(_losses(single / name), _losses(ddp / name))
    assert any(k.startswith("G_ema.") for k in load_file(ddp / "resume" / "weights.safetensors"))
    # WGAN-GP: the interpolation weights are drawn per process, so only the first step's
    # adversarial terms (before any update) equal the single-process ones; the loop checked
    # at every checkpoint that both processes hold the same weights.
    a, b = _losses(single / "wgan_gp"), _losses(ddp / "wgan_gp")
    assert len(b) == 3 and {"gp", "g"} <= b[0].keys()
    for k in ("d_adv", "d_real", "d_fake"):
        assert b[0][k] == pytest.approx(a[0][k], rel=1e-4, abs=1e-5), k
    assert load_file(ddp / "wgan_gp" / "weights.safetensors").keys() == load_file(
        single / "wgan_gp" / "weights.safetensors").keys()


@pytest.fixture
def one_process_group(tmp_path: Path) -> Iterator[None]:
    """A gloo process group of one process, so DistributedDataParallel runs in this process."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _method_and_batch(name: str) -> tuple[GanMethod, Batch]:
    cpu = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 16, 16, generator=g) * 2 - 1
    extras: dict[str, dict[str, object]] = {
        "stylegan2": {"r1_interval": 1, "pl_weight": 2.0, "pl_interval": 1, "ada": True},
        "progressive": {"phase_steps": 1},
        "wgan_gp": {"n_critic": 2},
        "dcgan": {"r1_gamma": 1.0},
        "unit": {"n_down": 1, "n_res": 1},
        "cyclegan": {"n_blocks": 1, "n_down": 1},
    }
    extra = extras.get(name, {})
    mc = MethodConfig(size=16, latent_dim=8, base_filters=4, num_classes=2 if name == "cgan" else 0,
                      ema_decay=0.9, diffaugment="translation", extra=extra)
    method = get_method(name)(mc, cpu)
    if name == "distilled":
        method.provide({"teacher": torch.nn.Conv2d(1, 1, 3, padding=1)})
    if method.task == Task.TRANSLATION:
        return method, Batch(target=torch.tanh(x.flip(2)), source=x)
    return method, Batch(target=x, labels=torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_every_method_trains_behind_ddp_wrappers(name: str, one_process_group: None) -> None:
    """Each trainable network is wrapped in DistributedDataParallel and the steps run through it.

    A forward through a wrapper whose backward misses some of the network's parameters (a
    frozen network called through it, an unused branch) makes the next step fail, so three
    steps (WGAN-GP skips a generator update in between; the progressive GAN changes
    resolution) exercise every path. Weights, EMA and inference stay unwrapped.
    """
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    from medgan_desktop.core.models.runs import network_state
    from medgan_desktop.core.training.distributed import DistInfo, make_data_parallel

    method, batch = _method_and_batch(name)
    keys = set(network_state(method))
    make_data_parallel(method, DistInfo(rank=0, world=1), torch.device("cpu"))
    wrappers = method.data_parallel_wrappers()
    trainable = method.trainable_networks()
    assert wrappers.keys() == trainable.keys() and trainable
    assert set(trainable) <= set(method.networks()) and "G_ema" not in trainable
    ddps: dict[str, DistributedDataParallel] = {}
    for net_name, w in wrappers.items():
        assert isinstance(w, DistributedDataParallel)
        assert w.module.net is trainable[net_name] is method.networks()[net_name]
        ddps[net_name] = w
    # record which parameters each wrapper's backward reduced (then reduce as DDP would)
    reduced: dict[str, set[int]] = {n: set() for n in wrappers}

    def recorder(net_name: str) -> Callable[..., torch.futures.Future[torch.Tensor]]:
        def hook(state, bucket):  # type: ignore[no-untyped-def]  # DDP checks the (runtime) annotations
            reduced[net_name].update(id(p) for p in bucket.parameters())
            return allreduce_hook(None, bucket)  # type: ignore[arg-type]

        return hook

    for net_name, ddp in ddps.items():
        ddp.register_comm_hook(None, recorder(net_name))
    method.train(True)
    for step in range(3):
        losses = method.train_step(batch, step)
        assert all(math.isfinite(v) for v in losses.values()), losses
    for net_name, net in trainable.items():  # a training forward that bypassed the wrapper reduces nothing
        assert reduced[net_name] == {id(p) for p in net.parameters()}, f"{net_name}: gradients not averaged"
    assert set(network_state(method)) == keys  # no "module." prefixes in what is saved
    assert not any(isinstance(n, DistributedDataParallel) for n in method.networks().values())
    assert not isinstance(method.inference_network(), DistributedDataParallel)


def test_sampling_other_synthesis_methods(tmp_path: Path) -> None:
    """The loop, loader and sampler serve every synthesis method (StyleGAN2, progressive too)."""
    from medgan_desktop.core.inference.sample import SampleError, interpolate, sample, truncation_mode
    from medgan_desktop.core.models.runs import load_model

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
