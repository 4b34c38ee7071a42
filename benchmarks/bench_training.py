"""Training-step throughput of every synthesis method against a plain eager reference.

For each method in ``available_methods(Task.SYNTHESIS)`` this times training steps at
64x64, batch 16 (CPU by default) and compares them with a reference implementation of
the same architecture written the way the papers' public code does it:

* dcgan / lsgan / wgan_gp / cgan: the ``pytorch/examples`` DCGAN networks and training
  step (``nn.Sequential``, separate real and fake D passes, ``BCELoss`` after a sigmoid
  for DCGAN, MSE for LSGAN, the ``caogang/wgan-gp`` critic loop with a gradient penalty,
  conditional batch norm + projection with spectral norm for the conditional GAN);
* stylegan2: a rosinality-style eager StyleGAN2 (modulated convolution as one grouped
  convolution with per-sample weights, lazy R1 at the same interval);
* progressive: a ``pytorch_GAN_zoo``-style ProGAN at its final stage (equalised-lr convs,
  pixel norm, WGAN-GP + drift).

It reports images/s for both, the ratio (ours / reference), the FLOPs of one step
(torch's ``flop_counter`` formulas), and the fraction of the machine's fp32 peak measured in
the same run (the faster of a large ``torch.matmul`` and a large 3x3 convolution, re-measured
before every method, best kept). Where the CPU has fast bfloat16 kernels it also times our
step under the bfloat16 autocast the training loop applies with ``cpu_bf16`` (the lever that
pays most on such CPUs), against the same fp32 reference. Run ``python benchmarks/bench_training.py --json
out.json`` (``--quick`` for a short run). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from medgan_desktop.core.gan.methods.base import Batch, GanMethod, MethodConfig, Task, available_methods

SIZE = 64
BATCH = 16
LATENT = 128
NUM_CLASSES = 2

StepFn = Callable[[Tensor, Tensor | None, int], None]


# --------------------------------------------------------------------------- peak
def matmul_peak_gflops(
    n: int = 2048, reps: int = 5, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """Best-of-``reps`` GFLOP/s of an ``n x n`` matmul in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    best = math.inf
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def conv_peak_gflops(
    reps: int = 5, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """Best-of-``reps`` GFLOP/s of a large 3x3 convolution (256 -> 256 channels, 64x64).

    On CPUs where the BLAS behind ``torch.matmul`` does not use the widest vector units
    (MKL on AMD processors), oneDNN's convolutions run ~2x faster than the matmul, so a
    matmul alone understates the machine's peak (fractions above 1 were the symptom).
    """
    x = torch.randn(1, 256, 64, 64, device=device, dtype=dtype)
    w = torch.randn(256, 256, 3, 3, device=device, dtype=dtype)
    F.conv2d(x, w, padding=1)
    best = math.inf
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        F.conv2d(x, w, padding=1)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * 256 * 256 * 9 * 64 * 64 / best / 1e9


def peak_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """The faster of the matmul and convolution peaks (see :func:`conv_peak_gflops`)."""
    return max(matmul_peak_gflops(device=device, dtype=dtype), conv_peak_gflops(device=device, dtype=dtype))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class FlopCount(TorchDispatchMode):
    """Counts matmul/conv FLOPs with torch's own formulas (``FlopCounterMode`` without its
    module tracker, which breaks ``autograd.grad`` in gradient penalties)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


# --------------------------------------------------------------------------- DCGAN family
class _CBN(nn.Module):
    def __init__(self, nf: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(nf, affine=False)
        self.gamma = nn.Embedding(NUM_CLASSES, nf)
        self.beta = nn.Embedding(NUM_CLASSES, nf)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class ExamplesGenerator(nn.Module):
    """pytorch/examples ``dcgan/main.py`` Generator (ngf=64, 64x64); CBN when conditional."""

    def __init__(self, nz: int, nc: int, ngf: int = 64, conditional: bool = False) -> None:
        super().__init__()
        self.conditional = conditional
        w = [ngf * 8, ngf * 4, ngf * 2, ngf]
        self.convs = nn.ModuleList(
            [nn.ConvTranspose2d(nz, w[0], 4, 1, 0, bias=False)]
            + [nn.ConvTranspose2d(w[i], w[i + 1], 4, 2, 1, bias=False) for i in range(3)]
        )
        self.bns = nn.ModuleList([_CBN(c) if conditional else nn.BatchNorm2d(c) for c in w])
        self.out = nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = z[:, :, None, None]
        for conv, bn in zip(self.convs, self.bns, strict=True):
            x = conv(x)
            x = F.relu(bn(x, y) if self.conditional else bn(x), inplace=True)
        return torch.tanh(self.out(x))


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples Discriminator (ndf=64); ``norm`` batch/layer/none, optional SN + projection."""

    def __init__(
        self, nc: int, ndf: int = 64, norm: str = "batch", sn: bool = False, sigmoid: bool = False
    ) -> None:
        super().__init__()
        wrap: Callable[[nn.Module], nn.Module] = spectral_norm if sn else (lambda m: m)
        layers: list[nn.Module] = [
            wrap(nn.Conv2d(nc, ndf, 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for i in range(3):
            c_in, c_out = ndf * 2**i, ndf * 2 ** (i + 1)
            layers.append(wrap(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif norm == "layer":
                layers.append(nn.GroupNorm(1, c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.main = nn.Sequential(*layers)
        self.head = wrap(nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
        self.sigmoid = sigmoid
        self.embed = wrap(nn.Embedding(NUM_CLASSES, ndf * 8)) if sn else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.main(x)
        out = self.head(h).view(-1)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return torch.sigmoid(out) if self.sigmoid else out


def dcgan_family_reference(kind: str, device: torch.device) -> StepFn:
    """The pytorch/examples training step, with the loss of ``kind``."""
    cond = kind == "cgan"
    g = ExamplesGenerator(LATENT, 1, conditional=cond).to(device)
    norm = {"dcgan": "batch", "lsgan": "batch", "wgan_gp": "layer", "cgan": "none"}[kind]
    d = ExamplesDiscriminator(1, norm=norm, sn=cond, sigmoid=kind == "dcgan").to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()

    def d_loss(out: Tensor, real: bool) -> Tensor:
        if kind == "dcgan":
            return bce(out, torch.full_like(out, 1.0 if real else 0.0))
        if kind == "lsgan":
            return 0.5 * ((out - (1.0 if real else 0.0)) ** 2).mean()
        if kind == "cgan":
            return F.relu(1.0 - out).mean() if real else F.relu(1.0 + out).mean()
        return -out.mean() if real else out.mean()

    def step(real: Tensor, y: Tensor | None, i: int) -> None:
        d.zero_grad()
        d_loss(d(real, y), True).backward()
        fake = g(torch.randn(real.shape[0], LATENT, device=device), y)
        d_loss(d(fake.detach(), y), False).backward()
        if kind == "wgan_gp":
            alpha = torch.rand(real.shape[0], 1, 1, 1, device=device)
            interp = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
            (grad,) = torch.autograd.grad(d(interp).sum(), interp, create_graph=True)
            (10.0 * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()).backward()
        opt_d.step()
        if kind == "wgan_gp" and i % 5 != 0:
            return
        for p in d.parameters():
            p.requires_grad_(False)
        g.zero_grad()
        out = d(fake, y)
        (d_loss(out, True) if kind in ("dcgan", "lsgan") else -out.mean()).backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)

    return step


# --------------------------------------------------------------------------- StyleGAN2
def _ch(res: int, f: int = 64) -> int:
    return min(8 * f, f * SIZE // res)


class RosModConv(nn.Module):
    """rosinality ``ModulatedConv2d`` (fused: per-sample weights as one grouped conv)."""

    def __init__(self, cin: int, cout: int, k: int, demod: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.scale = 1 / math.sqrt(cin * k * k)
        self.mod_w = nn.Parameter(torch.randn(cin, LATENT))
        self.mod_b = nn.Parameter(torch.ones(cin))
        self.demod, self.pad, self.cin, self.cout = demod, k // 2, cin, cout

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        b, _, h, ww = x.shape
        style = F.linear(w, self.mod_w / math.sqrt(LATENT), self.mod_b).view(b, 1, self.cin, 1, 1)
        weight = self.scale * self.weight * style
        if self.demod:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(
                b, self.cout, 1, 1, 1
            )
        weight = weight.view(b * self.cout, self.cin, *weight.shape[3:])
        out = F.conv2d(x.reshape(1, b * self.cin, h, ww), weight, padding=self.pad, groups=b)
        return out.view(b, self.cout, h, ww)


class RosLayer(nn.Module):
    def __init__(self, cin: int, cout: int, up: bool) -> None:
        super().__init__()
        self.conv = RosModConv(cin, cout, 3)
        self.up = up
        self.noise_w = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        x = x + self.noise_w * x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
        return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class RosGenerator(nn.Module):
    def __init__(self, n_mlp: int = 4) -> None:
        super().__init__()
        self.mlp = nn.ModuleList([nn.Linear(LATENT, LATENT) for _ in range(n_mlp)])
        self.const = nn.Parameter(torch.randn(1, _ch(4), 4, 4))
        res = [2**k for k in range(3, int(math.log2(SIZE)) + 1)]
        self.layers = nn.ModuleList([RosLayer(_ch(4), _ch(4), False)])
        self.rgbs = nn.ModuleList([RosModConv(_ch(4), 1, 1, demod=False)])
        for r in res:
            self.layers.extend(
                [RosLayer(_ch(r // 2), _ch(r), True), RosLayer(_ch(r), _ch(r), False)]
            )
            self.rgbs.append(RosModConv(_ch(r), 1, 1, demod=False))

    def forward(self, z: Tensor) -> Tensor:
        w = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        for lin in self.mlp:
            w = F.leaky_relu(lin(w), 0.2) * math.sqrt(2)
        x = self.layers[0](self.const.repeat(z.shape[0], 1, 1, 1), w)
        img = self.rgbs[0](x, w)
        for i in range(1, len(self.rgbs)):
            x = self.layers[2 * i](self.layers[2 * i - 1](x, w), w)
            img = F.interpolate(
                img, scale_factor=2.0, mode="bilinear", align_corners=False
            ) + self.rgbs[i](x, w)
        return img


class ResDisc(nn.Module):
    """StyleGAN2 residual discriminator with plain ``nn.Conv2d`` layers and minibatch stddev."""

    def __init__(self) -> None:
        super().__init__()
        res = [2**k for k in range(int(math.log2(SIZE)), 2, -1)]
        self.rgb = nn.Conv2d(1, _ch(SIZE), 1)
        self.blocks = nn.ModuleList(
            [
                nn.ModuleList(
                    [
                        nn.Conv2d(_ch(r), _ch(r), 3, padding=1),
                        nn.Conv2d(_ch(r), _ch(r // 2), 3, padding=1),
                        nn.Conv2d(_ch(r), _ch(r // 2), 1, bias=False),
                    ]
                )
                for r in res
            ]
        )
        self.conv = nn.Conv2d(_ch(4) + 1, _ch(4), 3, padding=1)
        self.fc = nn.Linear(_ch(4) * 16, _ch(4))
        self.out = nn.Linear(_ch(4), 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.rgb(x), 0.2)
        for c0, c1, sk in self.blocks:  # type: ignore[misc]
            y = sk(F.avg_pool2d(x, 2))
            x = F.leaky_relu(c1(F.avg_pool2d(F.leaky_relu(c0(x), 0.2), 2)), 0.2)
            x = (x + y) / math.sqrt(2)
        _, c, h, w = x.shape
        s = x.view(4, -1, c, h, w)
        s = (
            torch.sqrt(s.var(0, unbiased=False) + 1e-8)
            .mean([1, 2, 3])
            .view(-1, 1, 1, 1)
            .repeat(4, 1, h, w)
        )
        x = F.leaky_relu(self.conv(torch.cat([x, s], 1)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2)).view(-1)


def stylegan2_reference(device: torch.device) -> StepFn:
    g, d = RosGenerator().to(device), ResDisc().to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.0, 0.99))

    def step(real: Tensor, y: Tensor | None, i: int) -> None:
        fake = g(torch.randn(real.shape[0], LATENT, device=device))
        loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        if i % 16 == 0:
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
            loss = loss + 0.5 * 0.05 * 16 * grad.pow(2).flatten(1).sum(1).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        opt_g.zero_grad()
        F.softplus(-d(fake)).mean().backward()
        opt_g.step()
        d.requires_grad_(True)

    return step


# --------------------------------------------------------------------------- ProGAN
class EqConv(nn.Conv2d):
    """pytorch_GAN_zoo ``EqualizedConv2d``: He-constant scaling applied in forward."""

    def forward(self, x: Tensor) -> Tensor:
        fan_in = self.weight[0].numel()
        return F.conv2d(x, self.weight * math.sqrt(2 / fan_in), self.bias, padding=self.padding)


def _pn(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


class ZooG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(LATENT, _ch(4) * 16)
        self.c4 = EqConv(_ch(4), _ch(4), 3, padding=1)
        res = [2**k for k in range(3, int(math.log2(SIZE)) + 1)]
        self.convs = nn.ModuleList()
        for r in res:
            self.convs.extend(
                [EqConv(_ch(r // 2), _ch(r), 3, padding=1), EqConv(_ch(r), _ch(r), 3, padding=1)]
            )
        self.rgb = EqConv(_ch(SIZE), 1, 1)

    def forward(self, z: Tensor) -> Tensor:
        x = _pn(F.leaky_relu(self.fc(_pn(z)).view(z.shape[0], -1, 4, 4), 0.2))
        x = _pn(F.leaky_relu(self.c4(x), 0.2))
        for i, conv in enumerate(self.convs):
            if i % 2 == 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = _pn(F.leaky_relu(conv(x), 0.2))
        return self.rgb(x)


class ZooD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        res = [2**k for k in range(int(math.log2(SIZE)), 2, -1)]
        self.rgb = EqConv(1, _ch(SIZE), 1)
        self.convs = nn.ModuleList()
        for r in res:
            self.convs.extend(
                [EqConv(_ch(r), _ch(r), 3, padding=1), EqConv(_ch(r), _ch(r // 2), 3, padding=1)]
            )
        self.c4 = EqConv(_ch(4) + 1, _ch(4), 3, padding=1)
        self.fc = nn.Linear(_ch(4) * 16, _ch(4))
        self.out = nn.Linear(_ch(4), 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.rgb(x), 0.2)
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)
            if i % 2 == 1:
                x = F.avg_pool2d(x, 2)
        _, c, h, w = x.shape
        s = x.view(4, -1, c, h, w)
        s = (
            torch.sqrt(s.var(0, unbiased=False) + 1e-8)
            .mean([1, 2, 3])
            .view(-1, 1, 1, 1)
            .repeat(4, 1, h, w)
        )
        x = F.leaky_relu(self.c4(torch.cat([x, s], 1)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2)).view(-1)


def progressive_reference(device: torch.device) -> StepFn:
    g, d = ZooG().to(device), ZooD().to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.0, 0.99))

    def step(real: Tensor, y: Tensor | None, i: int) -> None:
        fake = g(torch.randn(real.shape[0], LATENT, device=device))
        d_real = d(real)
        loss = d(fake.detach()).mean() - d_real.mean() + 0.001 * d_real.pow(2).mean()
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=device)
        interp = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(interp).sum(), interp, create_graph=True)
        loss = loss + 10.0 * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        opt_g.zero_grad()
        (-d(fake).mean()).backward()
        opt_g.step()
        d.requires_grad_(True)

    return step


REFERENCES: dict[str, tuple[str, Callable[[torch.device], StepFn]]] = {
    "dcgan": ("pytorch/examples dcgan", lambda dev: dcgan_family_reference("dcgan", dev)),
    "lsgan": ("pytorch/examples dcgan + MSE", lambda dev: dcgan_family_reference("lsgan", dev)),
    "wgan_gp": (
        "pytorch/examples nets + caogang/wgan-gp loop",
        lambda dev: dcgan_family_reference("wgan_gp", dev),
    ),
    "cgan": (
        "pytorch/examples nets + CBN/projection/SN, hinge",
        lambda dev: dcgan_family_reference("cgan", dev),
    ),
    "stylegan2": ("rosinality-style StyleGAN2 (grouped modconv)", stylegan2_reference),
    "progressive": ("pytorch_GAN_zoo-style ProGAN, final stage", progressive_reference),
}


# --------------------------------------------------------------------------- timing
def _first_step(name: str, method: GanMethod) -> int:
    """A steady-state step index (progressive: its final resolution)."""
    if name == "progressive":
        from medgan_desktop.core.gan.methods.progressive import steps_to_full_size

        return steps_to_full_size(SIZE, int(method.config.option("phase_steps", 500)))
    return 1


def _time_each(
    fn: StepFn, real: Tensor, y: Tensor | None, first: int, n: int, device: str
) -> list[float]:
    times = []
    for i in range(first, first + n):
        _sync(device)
        t = time.perf_counter()
        fn(real, y, i)
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def bench_method(
    name: str,
    cls: type[GanMethod],
    quick: bool,
    device: str,
    channels_last: bool,
    bf16: bool = False,
) -> dict[str, Any]:
    """Time ``cls``'s training step against its eager reference (interleaved rounds).

    ``bf16`` runs *our* step under the bfloat16 autocast the training loop uses with
    ``cpu_bf16`` on a CPU (``amp`` on CUDA); the reference stays the papers' fp32 code.
    """
    dev = torch.device(device)
    cond = bool(getattr(cls, "conditional", False))
    cfg = MethodConfig(
        size=SIZE, channels=1, latent_dim=LATENT, num_classes=NUM_CLASSES if cond else 0
    )
    torch.manual_seed(0)
    method = cls(cfg, dev)
    method.train()
    real = torch.rand(BATCH, 1, SIZE, SIZE, device=dev) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (BATCH,), device=dev) if cond else None
    if channels_last:
        for net in method.networks().values():
            net.to(memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    first = _first_step(name, method)

    def ours(r: Tensor, lab: Tensor | None, i: int) -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            method.train_step(Batch(target=r, labels=lab), i)

    n = 2 if quick else 10
    rounds = 2 if quick else 3
    ours(real, y, first - 1 if first > 0 else 0)  # warm-up
    ref_desc, ref_factory = REFERENCES.get(name, ("", None))  # type: ignore[arg-type]
    ref = ref_factory(dev) if ref_factory is not None else None
    if ref is not None:
        ref(real, y, first - 1)
    # Rounds are interleaved so background load hits both alike; each step index keeps its
    # fastest time over the rounds (steps differ: n_critic, lazy R1), then they are summed.
    best_ours, best_ref = [math.inf] * n, [math.inf] * n
    for _ in range(rounds):
        t = _time_each(ours, real, y, first, n, device)
        best_ours = [min(u, v) for u, v in zip(best_ours, t, strict=True)]
        if ref is not None:
            t = _time_each(ref, real, y, first, n, device)
            best_ref = [min(u, v) for u, v in zip(best_ref, t, strict=True)]
    t_ours, t_ref = sum(best_ours), sum(best_ref)
    with FlopCount() as counter:
        for i in range(first, first + n):
            ours(real, y, i)
    flops_per_step = counter.total / n
    out: dict[str, Any] = {
        "ours_images_per_s": BATCH * n / t_ours,
        "gflop_per_step": flops_per_step / 1e9,
        "ours_gflops": flops_per_step * n / t_ours / 1e9,
        "steps_timed": n,
        "channels_last": channels_last,
        "bf16_autocast": bf16,
    }
    if ref is not None:
        out.update(
            reference=ref_desc,
            reference_images_per_s=BATCH * n / t_ref,
            ratio_vs_reference=t_ref / t_ours,
        )
    return out


def run(
    quick: bool = True,
    device: str = "cpu",
    threads: int | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Benchmark every synthesis method; returns a JSON-serialisable report."""
    if threads is not None:
        torch.set_num_threads(threads)
    from medgan_desktop.core.training.devices import autocast_settings

    bf16_ok = autocast_settings(torch.device(device), amp=True, cpu_bf16=True)[0]
    # The peak is re-measured before every method and the best kept: a single measurement
    # taken while the machine was busy made "fraction of peak" exceed 1.
    peaks = [peak_gflops(device=device)]
    peaks_bf16 = [peak_gflops(device=device, dtype=torch.bfloat16)] if bf16_ok else []
    report: dict[str, Any] = {
        "device": device,
        "threads": torch.get_num_threads(),
        "size": SIZE,
        "batch": BATCH,
        "bf16_autocast_available": bf16_ok,
        "methods": {},
    }
    for name, cls in available_methods(Task.SYNTHESIS).items():
        if only and name not in only:
            continue
        peaks.append(peak_gflops(device=device))
        try:
            res = bench_method(name, cls, quick, device, channels_last=False)
            if not quick:
                cl = bench_method(name, cls, quick, device, channels_last=True)
                res["channels_last_images_per_s"] = cl["ours_images_per_s"]
            if bf16_ok:
                peaks_bf16.append(peak_gflops(device=device, dtype=torch.bfloat16))
                b = bench_method(name, cls, quick, device, channels_last=False, bf16=True)
                res["bf16_images_per_s"] = b["ours_images_per_s"]
                res["bf16_gflops"] = b["ours_gflops"]
                if "ratio_vs_reference" in b:
                    res["bf16_ratio_vs_fp32_reference"] = b["ratio_vs_reference"]
        except Exception as exc:  # report and go on with the other methods
            res = {"error": f"{type(exc).__name__}: {exc}"}
        report["methods"][name] = res
        print(
            name,
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}),
            flush=True,
        )
    peaks.append(peak_gflops(device=device))
    report["peak_gflops"] = max(peaks)
    report["peak_gflops_samples"] = peaks
    if peaks_bf16:
        report["peak_bf16_gflops"] = max(peaks_bf16)
    for res in report["methods"].values():
        if "ours_gflops" in res:
            res["fraction_of_peak"] = res["ours_gflops"] / report["peak_gflops"]
        if "bf16_gflops" in res and peaks_bf16:
            res["bf16_fraction_of_bf16_peak"] = res["bf16_gflops"] / report["peak_bf16_gflops"]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="2 timed steps x 2 rounds per method, no channels_last pass",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--methods", nargs="*", default=None, help="only these methods")
    ap.add_argument("--json", dest="json_out", default=None, help="write the report here")
    args = ap.parse_args()
    report = run(quick=args.quick, device=args.device, threads=args.threads, only=args.methods)
    if args.json_out:
        with Path(args.json_out).open("w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
