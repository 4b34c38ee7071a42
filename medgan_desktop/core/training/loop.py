"""The training loop: any registered GAN method, any dataset, one self-describing run folder.

* deterministic: one seed sets model init, noise, data order and augmentation; the data
  order is a pure function of ``(seed, step)`` (:class:`StepBatchSampler`) and RNG states
  are checkpointed, so a resumed run continues bit-for-bit on the CPU;
* checkpoints every N steps and at stop/cancel, written atomically (see :mod:`.run`);
* mixed precision (bfloat16 autocast) on CUDA, and on request on CPUs with fast bfloat16
  kernels (``cpu_bf16``); fp32 elsewhere (:func:`.devices.autocast_settings`);
* data parallel under ``torchrun`` (:mod:`.distributed`): when the torchrun environment is
  present the process group is initialised (gloo on CPU, NCCL on GPUs), each rank takes its
  slice of the global batch, every trainable network of the method runs behind
  ``torch.nn.parallel.DistributedDataParallel`` (batch norms synchronised on CUDA), the
  logged losses are averaged over ranks, the replicas are checked to be identical at every
  checkpoint, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from medgan_desktop.core.atomic import atomic_write_bytes, why
from medgan_desktop.core.gan.methods.base import Batch, GanMethod, LossDict, MethodConfig, Task, get_method
from medgan_desktop.core.imaging.display import grid, png_bytes
from medgan_desktop.core.models.runs import (
    METRICS,
    RUN_JSON,
    SAMPLES,
    WEIGHTS,
    ModelLoadError,
    apply_weights,
    checkpoint_path,
    list_checkpoints,
    load_run,
    new_run_info,
    read_state,
    read_weights,
    save_state,
    save_weights,
    state_path,
    write_run_json,
)
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback, StepEvent, no_progress
from medgan_desktop.core.training.config import StopReason, TrainConfig
from medgan_desktop.core.training.data import DataError, TrainingDataset
from medgan_desktop.core.training.devices import autocast_settings, configure_threads, select_device
from medgan_desktop.core.training.distributed import (
    DistInfo,
    average_losses,
    init_distributed,
    make_data_parallel,
    replica_mismatch,
)
from medgan_desktop.core.training.stop import StopRequest, stop_on_terminate
from medgan_desktop.core.training.validation import Validator

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, bad configuration); the last checkpoint is intact."""


class TrainingOOMError(TrainingError):
    """The device ran out of memory; the message suggests a smaller batch."""


class RunWriteError(TrainingError):
    """Writing a checkpoint/metrics file failed (disk full, read-only); earlier checkpoints are intact."""


class TrainingTerminated(TrainingError):
    """A termination signal (SIGTERM: logout, service manager, cluster scheduler) stopped the
    run; a checkpoint of the last step was written first, so the run resumes from there."""


def _write_error(run_dir: Path, what: str, exc: OSError) -> RunWriteError:
    last = list_checkpoints(run_dir)
    intact = (
        f"the checkpoint at step {last[-1][0]} is intact: free space and resume the run"
        if last
        else "no checkpoint had been written yet"
    )
    return RunWriteError(f"could not write the {what} in {run_dir}: {why(exc)}; {intact}")


@dataclass(frozen=True)
class RunSummary:
    """What a call to :func:`train` did.

    Args:
        run_dir: the run folder.
        method: registry name.
        step: steps completed in all (including earlier sessions of a resumed run).
        total_steps: the configured total.
        cancelled: stopped by the cancel token before the total.
        stopped_by: why the run stopped (the total, the user, a time or CPU budget).
        seconds: wall time of this session.
        cpu_seconds: CPU time of the whole run so far (every session, all threads).
        images_per_s: training throughput of this session (global batch).
        losses: the last step's losses.
        weights: the weights file written last.
    """

    run_dir: Path
    method: str
    step: int
    total_steps: int
    cancelled: bool
    seconds: float
    images_per_s: float
    stopped_by: StopReason = StopReason.TOTAL
    cpu_seconds: float = 0.0
    losses: LossDict = field(default_factory=dict)
    weights: Path | None = None


# -- data order ------------------------------------------------------------------------------
class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Infinite batches of ``(index, augmentation seed)`` determined by ``(seed, step)`` only.

    Each epoch is a permutation seeded with ``seed + epoch``; step ``s`` takes the global
    batch ``perm[k*B:(k+1)*B]`` (``k = s mod steps_per_epoch``, incomplete tails dropped) and
    rank ``r`` of ``W`` keeps its contiguous slice. Starting at ``start_step`` reproduces
    exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, n: int, global_batch: int, rank: int, world: int, seed: int, start_step: int = 0) -> None:
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
        if n < global_batch:
            raise ValueError(f"{n} images are fewer than one batch of {global_batch}")
        self.n, self.global_batch, self.rank, self.world = n, global_batch, rank, world
        self.local = global_batch // world
        self.seed, self.start_step = seed, start_step
        self.steps_per_epoch = n // global_batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        cached_epoch, perm = -1, torch.empty(0, dtype=torch.long)
        while True:
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != cached_epoch:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                perm, cached_epoch = torch.randperm(self.n, generator=g), epoch
            lo = k * self.global_batch + self.rank * self.local
            idx = perm[lo : lo + self.local].tolist()
            yield [(i, (self.seed * 7_919 + epoch) * 1_000_003 + i) for i in idx]
            step += 1


# -- RNG state -----------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(st["cuda"]))


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _to_batch(item: dict[str, torch.Tensor], device: torch.device) -> Batch:
    nb = device.type == "cuda"

    def mv(key: str) -> torch.Tensor | None:
        t = item.get(key)
        return None if t is None else t.to(device, non_blocking=nb)

    target = mv("target")
    assert target is not None
    return Batch(target=target, source=mv("source"), labels=mv("label"), mask=mv("mask"))


# -- the loop --------------------------------------------------------------------------------
class _Run:
    """State of one training session (kept small; :func:`train` is the API)."""

    def __init__(self, run_dir: Path, method: GanMethod, cfg: TrainConfig, info: DistInfo) -> None:
        self.run_dir, self.method, self.cfg, self.dist = run_dir, method, cfg, info
        self.last_weights: Path | None = None

    def save_checkpoint(self, step: int, extra: dict[str, Any]) -> Path | None:
        if not self.dist.main:
            return None
        wpath = checkpoint_path(self.run_dir, step)
        state: dict[str, Any] = {
            "step": step,
            "optimizers": {k: o.state_dict() for k, o in self.method.optimizers().items()},
            "rng": _rng_state(),
            "extra": extra,
        }
        method_state = self.method.extra_state()
        if method_state:
            state["method"] = method_state
        # state first, then weights: a checkpoint counts only when both files exist
        try:
            save_state(state_path(wpath), state)
            save_weights(wpath, self.method)
        except OSError as exc:  # disk full / read-only: leave no half checkpoint behind
            for f in (wpath, state_path(wpath)):
                with contextlib.suppress(OSError):
                    f.unlink(missing_ok=True)
            raise _write_error(self.run_dir, f"checkpoint for step {step}", exc) from exc
        try:
            save_weights(self.run_dir / WEIGHTS, self.method)
        except OSError as exc:
            raise _write_error(self.run_dir, f"{WEIGHTS} for step {step}", exc) from exc
        self.last_weights = self.run_dir / WEIGHTS
        self._prune()
        return wpath

    def _prune(self) -> None:
        keep = self.cfg.keep_checkpoints
        if keep <= 0:
            return
        for _, p in list_checkpoints(self.run_dir)[:-keep]:
            for f in (p, state_path(p)):
                f.unlink(missing_ok=True)

    def restore(self, device: torch.device) -> tuple[int, float]:
        """Load the newest checkpoint; ``(step, CPU seconds the run had used)``."""
        ckpts = list_checkpoints(self.run_dir)
        if not ckpts:
            raise TrainingError(f"{self.run_dir} has no complete checkpoint to resume from")
        _, wpath = ckpts[-1]
        apply_weights(self.method, read_weights(wpath), wpath)
        state = read_state(state_path(wpath))
        for k, opt in self.method.optimizers().items():
            opt.load_state_dict(state["optimizers"][k])
        if "method" in state:
            self.method.load_extra_state(state["method"])
        _set_rng_state(state["rng"])
        return int(state["step"]), float(dict(state.get("extra") or {}).get("cpu_s", 0.0))

    def sample_grid(self, step: int, labels: torch.Tensor | None) -> Path | None:
        if not self.dist.main or self.cfg.sample_every <= 0 or self.method.task != Task.SYNTHESIS:
            return None
        g = torch.Generator().manual_seed(self.cfg.seed + 2_147_483)
        imgs = self.method.generate(self.cfg.sample_count, generator=g, labels=labels)
        path = self.run_dir / SAMPLES / f"step_{step:08d}.png"
        try:
            atomic_write_bytes(path, png_bytes(grid(imgs.detach().float().cpu().numpy())))
        except OSError as exc:
            raise _write_error(self.run_dir, f"sample grid for step {step}", exc) from exc
        return path

    def validate(self, validator: Validator, step: int) -> None:
        """Score the generator on the validation set, log it, keep the weights when best."""
        fd = validator.score(self.method)
        try:
            best = validator.keep_if_best(self.run_dir, self.method, step, fd)
        except OSError as exc:
            raise _write_error(self.run_dir, f"best weights for step {step}", exc) from exc
        self._append_metrics({"step": step, "time": round(time.time(), 3), "val_fd": round(fd, 6), "best": best})

    def log_metrics(self, step: int, ips: float, losses: LossDict) -> None:
        if not self.dist.main:
            return
        self._append_metrics({"step": step, "time": round(time.time(), 3), "images_per_s": round(ips, 3),
                              "losses": losses})

    def _append_metrics(self, line: dict[str, Any]) -> None:
        try:
            with (self.run_dir / METRICS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
        except OSError as exc:
            raise _write_error(self.run_dir, METRICS, exc) from exc


def _validator(cfg: TrainConfig, dataset: TrainingDataset, method: GanMethod) -> Validator | None:
    """The validation scorer for ``val_every`` (None when off)."""
    if not cfg.val_every:
        return None
    if method.task != Task.SYNTHESIS:
        raise TrainingError("validation by Fréchet distance is for synthesis runs (image generation)")
    images = getattr(dataset, "validation_images", None)
    if images is None:
        raise TrainingError("a validation set needs an image folder (volume slices have no patient split)")
    imgs, labels = images()
    if len(imgs) < 2:
        raise TrainingError("the validation share left fewer than two validation images")
    return Validator(imgs, labels if method.uses_labels else None)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past ``step`` (logged after the checkpoint a resume starts from)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(x + "\n" for x in keep), encoding="utf-8")


def _sample_labels(method: GanMethod, n: int) -> torch.Tensor | None:
    return torch.arange(n) % method.config.num_classes if method.uses_labels else None


def _discard_failed_start(run_dir: Path, created: bool, before: set[Path]) -> None:
    """Remove what a failed new run wrote (never files that were there before it)."""
    import shutil

    try:
        for p in set(run_dir.iterdir()) - before:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()
    except OSError:
        log.warning("could not clean up the failed run folder %s", run_dir)


def train(
    method: str | type[GanMethod],
    method_config: MethodConfig,
    train_config: TrainConfig,
    dataset: TrainingDataset,
    run_dir: Path,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    resume: bool = False,
    frozen_networks: Mapping[str, nn.Module] | None = None,
    label: str = "",
) -> RunSummary:
    """Train ``method`` on ``dataset`` into ``run_dir`` (or continue it with ``resume=True``).

    The run stops at ``train_config.steps``, or earlier when a budget of the config is spent
    (``cpu_seconds``: CPU time of the whole run, all threads, counted across resumes;
    ``budget_minutes``: wall time of this session), when ``cancel`` is set, or on SIGINT /
    SIGTERM. Every stop writes a checkpoint of the last step first. Checkpoints are also
    written every ``checkpoint_every`` steps and every ``checkpoint_minutes`` minutes, so an
    unplanned end (a crash, SIGKILL) loses at most that much work.

    Args:
        method: registry name or class.
        method_config: hyperparameters (ignored on resume: run.json's are used).
        train_config: loop settings; on resume ``steps`` is the new total (the rest is kept
            from run.json except ``steps``, ``device``, ``threads``, ``num_workers`` and the
            budgets).
        dataset: a :class:`~medgan_desktop.core.training.data.TrainingDataset`.
        run_dir: the run folder (created; must not hold a run unless resuming).
        progress: receives a :class:`~medgan_desktop.core.progress.StepEvent` per step.
        cancel: pause/cancel token; on cancel a checkpoint is written and the summary says so.
        resume: continue the run in ``run_dir`` from its newest checkpoint.
        frozen_networks: networks the method uses but does not train (a distillation
            teacher), by the names in the method's ``frozen_inputs``.
        label: what the user asked for ("recommended: ..."), recorded in run.json.

    Raises:
        DataError: too few images for the batch.
        TrainingOOMError: out of device memory (the last checkpoint is intact).
        RunWriteError: a checkpoint/metrics/sample write failed (disk full, read-only);
            no half-written checkpoint is left and the previous one is intact.
        TrainingTerminated: SIGTERM; a checkpoint of the last step was written.
        TrainingError: diverged (non-finite loss), nothing to resume, or a missing input.
    """
    run_dir = Path(run_dir)
    cfg = train_config.validate()
    if resume:
        info_json = load_run(run_dir)
        stored = TrainConfig.from_dict(info_json.train_config)
        cfg = stored.replace(
            steps=cfg.steps, device=cfg.device, threads=cfg.threads, num_workers=cfg.num_workers,
            cpu_seconds=cfg.cpu_seconds, budget_minutes=cfg.budget_minutes,
        ).validate()
        method_config = info_json.method_config
        method = info_json.method
    elif (run_dir / RUN_JSON).exists():
        raise TrainingError(f"{run_dir} already holds a run; resume it or choose a new folder")
    dinfo = init_distributed(cfg.device)
    device = select_device(cfg.device)
    if device.type == "cuda" and dinfo.world > 1:
        device = torch.device("cuda", dinfo.local_rank)
    if device.type == "cpu":
        configure_threads(cfg.threads)
    else:
        torch.backends.cudnn.benchmark = device.type == "cuda"
    if cfg.batch_size % dinfo.world:
        raise TrainingError(f"batch {cfg.batch_size} must be divisible by the {dinfo.world} processes")
    n = len(dataset)
    if n < 2 * cfg.batch_size:
        raise DataError(
            f"only {n} training images for a batch of {cfg.batch_size}: need at least {2 * cfg.batch_size} "
            "(use a smaller --batch or more data)"
        )
    cls = get_method(method) if isinstance(method, str) else method
    _seed_everything(cfg.seed)
    try:
        gm = cls(method_config, device)
    except (RuntimeError, MemoryError) as exc:
        if _is_oom(exc):
            raise TrainingOOMError(f"out of memory building {cls.name} on {device}: try a smaller size") from exc
        raise
    try:
        gm.provide(dict(frozen_networks or {}))
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
    run = _Run(run_dir, gm, cfg, dinfo)
    validator = _validator(cfg, dataset, gm) if dinfo.main else None
    start, cpu_before = 0, 0.0
    if resume:
        try:
            start, cpu_before = run.restore(device)
        except ModelLoadError as exc:
            raise TrainingError(f"cannot resume {run_dir}: {exc}") from exc
        if dinfo.main:
            _truncate_metrics(run_dir / METRICS, start)
    if dinfo.world > 1:
        make_data_parallel(gm, dinfo, device)
    created = not run_dir.exists()
    before = set(run_dir.iterdir()) if run_dir.is_dir() else set()
    if dinfo.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        pre = dataset.preprocessing
        info = new_run_info(
            run_dir, cls.name, str(cls.task), method_config, cfg.to_dict(), pre, dataset.describe(),
            label=label,
        )
        if resume:
            old = load_run(run_dir)
            info = new_run_info(run_dir, old.method, old.task, old.method_config, cfg.to_dict(),
                                old.preprocessing, old.data, label=old.label)
        write_run_json(info)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()

    sampler = StepBatchSampler(n, cfg.batch_size, dinfo.rank, dinfo.world, cfg.seed, start)
    loader: DataLoader[Any] = DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
        persistent_workers=cfg.num_workers > 0,
    )
    amp, amp_dtype = autocast_settings(device, cfg.amp, cfg.cpu_bf16)
    sample_labels = _sample_labels(gm, cfg.sample_count)
    gm.train(True)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    t_window, n_window = t0, 0
    last_ckpt_t = t0
    ips = 0.0
    losses: LossDict = {}
    step = start
    stopped_by = StopReason.TOTAL
    cancel = cancel or CancelToken()
    it = iter(loader)

    def cpu_used() -> float:
        return cpu_before + time.process_time() - cpu0

    def checkpoint(at: int) -> Path | None:
        nonlocal last_ckpt_t
        last_ckpt_t = time.perf_counter()
        return run.save_checkpoint(at, {"losses": losses, "cpu_s": cpu_used()})

    def checkpointed(at: int) -> bool:
        return list_checkpoints(run_dir)[-1:] == [(at, checkpoint_path(run_dir, at))]

    try:
        with stop_on_terminate() as term:
            try:
                while step < cfg.steps:
                    cancel.check()
                    if term.requested:
                        raise StopRequest(term.signal_name)
                    budget = _budget_spent(cfg, cpu_used(), time.perf_counter() - t0)
                    if budget is not None:
                        stopped_by = budget
                        break
                    batch = _to_batch(next(it), device)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                        losses = gm.train_step(batch, step)
                    losses = average_losses(losses, dinfo, device)
                    step += 1
                    bad = [k for k, v in losses.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingError(
                            f"training diverged at step {step} (non-finite {', '.join(bad)}); the last checkpoint "
                            "is intact: lower the learning rate or try another method"
                        )
                    n_window += cfg.batch_size
                    sample_path = ckpt_path = ""
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        now = time.perf_counter()
                        ips = n_window / max(now - t_window, 1e-9)
                        t_window, n_window = now, 0
                        run.log_metrics(step, ips, losses)
                    if cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                        p = run.sample_grid(step, sample_labels)
                        sample_path = "" if p is None else str(p)
                    due_by_time = (
                        cfg.checkpoint_minutes > 0
                        and time.perf_counter() - last_ckpt_t >= 60.0 * cfg.checkpoint_minutes
                    )
                    if step % cfg.checkpoint_every == 0 or step == cfg.steps or due_by_time:
                        differ = replica_mismatch(gm, dinfo)
                        if differ:
                            raise TrainingError(
                                f"at step {step} the {dinfo.world} processes hold different weights for "
                                f"{', '.join(differ)}: their gradients were not averaged; the last checkpoint is intact"
                            )
                        c = checkpoint(step)
                        ckpt_path = "" if c is None else str(c)
                    if validator is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                        run.validate(validator, step)
                    elapsed = time.perf_counter() - t0
                    rate = (step - start) / max(elapsed, 1e-9)
                    event = StepEvent(
                        step=step,
                        total=cfg.steps,
                        losses=dict(losses),
                        images_per_s=ips or rate * cfg.batch_size,
                        eta_s=_eta(cfg, step, rate, cpu_used(), time.process_time() - cpu0, elapsed),
                        cpu_s=cpu_used(),
                        wall_s=elapsed,
                        sample=sample_path,
                        checkpoint=ckpt_path,
                    )
                    progress(Progress(step, cfg.steps, f"step {step}/{cfg.steps}", event))
            except Cancelled:
                if step > start and not checkpointed(step):
                    checkpoint(step)
                stopped_by = StopReason.USER
            except (KeyboardInterrupt, StopRequest) as exc:
                if step > start and not checkpointed(step):
                    checkpoint(step)
                if isinstance(exc, StopRequest):
                    kept = (f"a checkpoint of step {step} was written: resume the run to go on"
                            if step > start else "no step had been trained")
                    raise TrainingTerminated(f"stopped by {exc.args[0]} at step {step}; {kept}") from None
                raise
            except (RuntimeError, MemoryError) as exc:
                if isinstance(exc, TrainingError) or not _is_oom(exc):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                last = list_checkpoints(run_dir)
                where = f"checkpoint at step {last[-1][0]} is intact" if last else "no checkpoint was written yet"
                raise TrainingOOMError(
                    f"out of memory on {device} with batch {cfg.batch_size} at {cfg.data.size or ''}px "
                    f"(step {step}); the {where}. Try --batch {max(1, cfg.batch_size // 2)}"
                ) from exc
            else:
                if stopped_by != StopReason.TOTAL and step > start and not checkpointed(step):
                    checkpoint(step)
                if dinfo.world > 1:
                    dist.barrier()  # rank 0's last checkpoint is on disk before any process returns
            finally:
                if dinfo.world > 1:
                    gm.disable_data_parallel()
                    gc.collect()  # free the wrappers (reference cycles) while the group is alive
                if dinfo.owned and dist.is_initialized():
                    dist.destroy_process_group()
    except BaseException:
        # A run that fails before its first checkpoint (unreadable data, out of memory,
        # Ctrl-C) leaves nothing behind that could be resumed: remove what this start
        # created, so the same folder can be used again and no dead run is listed.
        if not resume and dinfo.main and not list_checkpoints(run_dir):
            _discard_failed_start(run_dir, created, before)
        raise
    seconds = time.perf_counter() - t0
    done_ips = (step - start) * cfg.batch_size / max(seconds, 1e-9)
    return RunSummary(
        run_dir=run_dir,
        method=cls.name,
        step=step,
        total_steps=cfg.steps,
        cancelled=stopped_by == StopReason.USER,
        seconds=seconds,
        images_per_s=done_ips,
        losses=losses,
        weights=run.last_weights,
        stopped_by=stopped_by,
        cpu_seconds=cpu_used(),
    )


def _budget_spent(cfg: TrainConfig, cpu_s: float, wall_s: float) -> StopReason | None:
    """Which budget of ``cfg`` is spent, if one is."""
    if cfg.cpu_seconds > 0 and cpu_s >= cfg.cpu_seconds:
        return StopReason.CPU_BUDGET
    if cfg.budget_minutes > 0 and wall_s >= 60.0 * cfg.budget_minutes:
        return StopReason.TIME_BUDGET
    return None


def _eta(cfg: TrainConfig, step: int, rate: float, cpu_total: float, cpu_session: float,
         wall_s: float) -> float:
    """Wall seconds left: to the total at the current rate, or to the nearest budget."""
    left = (cfg.steps - step) / rate if rate > 0 else 0.0
    if cfg.budget_minutes > 0:
        left = min(left, max(0.0, 60.0 * cfg.budget_minutes - wall_s))
    if cfg.cpu_seconds > 0 and wall_s > 0 and cpu_session > 0:
        cpu_rate = cpu_session / wall_s  # CPU seconds per wall second (the threads in use)
        left = min(left, max(0.0, cfg.cpu_seconds - cpu_total) / cpu_rate)
    return left
