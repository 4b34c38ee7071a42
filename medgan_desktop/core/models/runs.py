"""The run/model folder format and its loader (shared by training, sampling and translation).

```
RUN_DIR/
  run.json                 method, task, method_config, train_config, preprocessing, data
  metrics.jsonl            one JSON object per logged step
  checkpoints/step_XXXXXXXX.safetensors   every network, keys "<network>.<param>"
  checkpoints/step_XXXXXXXX.state.pt      optimisers, step, RNG (torch.load(weights_only=True))
  weights.safetensors      latest weights (what inference loads)
  samples/step_XXXXXXXX.png
```
Shipped models (``models/<id>/``) use the same layout. Every write is atomic.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from medgan_desktop import __version__
from medgan_desktop.core.atomic import atomic_write_bytes
from medgan_desktop.core.gan.methods.base import GanMethod, MethodConfig, get_method
from medgan_desktop.core.imaging.intensity import IntensityWindow
from medgan_desktop.core.models.registry import run_description
from medgan_desktop.core.types import JsonObject

FORMAT = 1
RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
WEIGHTS = "weights.safetensors"
#: The weights of the step with the best validation score (runs trained with ``val_every``).
BEST_WEIGHTS = "best.safetensors"
#: ``{"step": N, "val_fd": x}`` of :data:`BEST_WEIGHTS`.
BEST_INFO = "best.json"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
_STEP_RE = re.compile(r"^step_(\d{8})\.safetensors$")


class ModelLoadError(Exception):
    """A run/model folder or weight file is missing, corrupt or does not match its method."""


@dataclass(frozen=True)
class Preprocessing:
    """How images were mapped to the networks' [-1, 1] (inverted at sampling/export).

    Args:
        target: window of the generated domain (HU for CT).
        source: window of the input domain (translation), else None.
        modality_in: input modality for translation ("MR"), else None.
        modality_out: modality of generated images ("CT", "CR", "OT", ...).
        size: square image size.
        channels: image channels.
        context_slices: 2.5D neighbours each side (translation).
        class_names: label names by index (conditional methods).
        task: the image-to-image task of a translation model
            (:mod:`medgan_desktop.core.imaging.tasks`; runs made before tasks: "mr_to_ct").
        slice_axis: the plane the network sees ("axial", or "coronal" for
            through-plane super-resolution).
        upsample: through-plane factor: the input is interpolated onto a grid this many
            times finer along k before the network refines it (1: the source grid).
        patches: the network was trained on ``size``-pixel crops at the images' own
            resolution (denoising, super-resolution) and runs on whole slices at that
            resolution; otherwise slices are fitted to ``size`` and back.
    """

    target: IntensityWindow = field(default_factory=IntensityWindow.uint8)
    source: IntensityWindow | None = None
    modality_in: str | None = None
    modality_out: str = "OT"
    size: int = 64
    channels: int = 1
    context_slices: int = 0
    class_names: tuple[str, ...] = ()
    task: str = ""
    slice_axis: str = "axial"
    upsample: int = 1
    patches: bool = False

    def to_dict(self) -> JsonObject:
        return {
            "target": self.target.to_dict(),
            "source": None if self.source is None else self.source.to_dict(),
            "modality_in": self.modality_in,
            "modality_out": self.modality_out,
            "size": self.size,
            "channels": self.channels,
            "context_slices": self.context_slices,
            "class_names": list(self.class_names),
            "task": self.task,
            "slice_axis": self.slice_axis,
            "upsample": self.upsample,
            "patches": self.patches,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        src = d.get("source")
        return cls(
            target=IntensityWindow.from_dict(dict(d.get("target") or {})),
            source=None if src is None else IntensityWindow.from_dict(dict(src)),
            modality_in=d.get("modality_in"),
            modality_out=str(d.get("modality_out") or "OT"),
            size=int(d.get("size", 64)),
            channels=int(d.get("channels", 1)),
            context_slices=int(d.get("context_slices", 0)),
            class_names=tuple(str(c) for c in d.get("class_names") or ()),
            task=str(d.get("task") or ("mr_to_ct" if d.get("modality_in") == "MR" and d.get("modality_out") == "CT"
                                        else "")),
            slice_axis=str(d.get("slice_axis") or "axial"),
            upsample=int(d.get("upsample") or 1),
            patches=bool(d.get("patches", False)),
        )


def method_config_to_dict(c: MethodConfig) -> JsonObject:
    d = dataclasses.asdict(c)
    d["betas"] = list(c.betas)
    d["extra"] = dict(c.extra)
    return d


def method_config_from_dict(d: Mapping[str, Any]) -> MethodConfig:
    names = {f.name for f in dataclasses.fields(MethodConfig)}
    kw = {k: v for k, v in d.items() if k in names}
    if "betas" in kw:
        kw["betas"] = tuple(float(b) for b in kw["betas"])
    kw["extra"] = dict(kw.get("extra") or {})
    return MethodConfig(**kw)


@dataclass(frozen=True)
class RunInfo:
    """A parsed ``run.json``.

    Args:
        path: the run folder.
        method: registry name of the method.
        task: "synthesis" or "translation".
        method_config: the method's hyperparameters.
        train_config: the training settings as stored (see ``TrainConfig.from_dict``).
        preprocessing: how images were normalised.
        data: description of the training data.
        created: ISO timestamp.
        software_version: medgan_desktop version that wrote it.
        label: what the user asked for, when it was not a plain method ("recommended: ...").
    """

    path: Path
    method: str
    task: str
    method_config: MethodConfig
    train_config: JsonObject
    preprocessing: Preprocessing
    data: JsonObject
    created: str = ""
    software_version: str = ""
    label: str = ""

    def to_json_dict(self) -> JsonObject:
        return {
            "format": FORMAT,
            "method": self.method,
            "label": self.label,
            "task": self.task,
            "method_config": method_config_to_dict(self.method_config),
            "train_config": self.train_config,
            "preprocessing": self.preprocessing.to_dict(),
            "data": self.data,
            "created": self.created,
            "software_version": self.software_version,
        }


def new_run_info(run_dir: Path, method: str, task: str, method_config: MethodConfig, train_config: JsonObject,
                 preprocessing: Preprocessing, data: JsonObject, label: str = "") -> RunInfo:
    return RunInfo(path=Path(run_dir), method=method, task=task, method_config=method_config, train_config=train_config,
                   preprocessing=preprocessing, data=data, created=datetime.now(UTC).isoformat(timespec="seconds"),
                   software_version=__version__, label=label)


def write_run_json(info: RunInfo) -> Path:
    path = info.path / RUN_JSON
    atomic_write_bytes(path, (json.dumps(info.to_json_dict(), indent=2) + "\n").encode("utf-8"))
    return path


def load_run(run_dir: Path) -> RunInfo:
    """Parse ``run_dir/run.json``; :class:`ModelLoadError` when absent or malformed."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_JSON
    if not path.is_file():
        raise ModelLoadError(f"{run_dir} is not a run or model folder (no {RUN_JSON})")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if int(d.get("format", 0)) > FORMAT:
            raise ModelLoadError(f"{path} has format {d['format']}; this version reads up to {FORMAT}")
        return RunInfo(
            path=run_dir,
            method=str(d["method"]),
            task=str(d.get("task", "synthesis")),
            method_config=method_config_from_dict(d.get("method_config") or {}),
            train_config=dict(d.get("train_config") or {}),
            preprocessing=Preprocessing.from_dict(d.get("preprocessing") or {}),
            data=dict(d.get("data") or {}),
            created=str(d.get("created", "")),
            software_version=str(d.get("software_version", "")),
            label=str(d.get("label", "")),
        )
    except ModelLoadError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path} is malformed: {exc}") from exc


# -- weights -------------------------------------------------------------------------------
def network_state(method: GanMethod) -> dict[str, torch.Tensor]:
    """Every network's parameters and buffers as ``"<network>.<name>"`` -> contiguous CPU tensor."""
    out: dict[str, torch.Tensor] = {}
    for net_name, net in method.networks().items():
        for k, v in net.state_dict().items():
            out[f"{net_name}.{k}"] = v.detach().to("cpu").contiguous().clone()
    return out


#: safetensors metadata key/value marking a file that holds only the inference network.
SCOPE_KEY = "medgan.scope"
SCOPE_INFERENCE = "inference"
#: safetensors metadata key holding the text of the run's ``run.json`` (self-describing weights).
RUN_META_KEY = "medgan.run"


def _run_json_text(weights_path: Path) -> str | None:
    """The ``run.json`` text of the run a weights file belongs to (beside it, or one level up
    for ``checkpoints/``), or None when there is none to read."""
    path = Path(weights_path)
    candidates = [path.parent / RUN_JSON]
    if path.parent.name == CHECKPOINTS:
        candidates.append(path.parent.parent / RUN_JSON)
    for c in candidates:
        try:
            return c.read_text(encoding="utf-8")
        except OSError:
            continue
    return None


def save_weights(path: Path, method: GanMethod, metadata: dict[str, str] | None = None,
                 run_json: str | None = None) -> None:
    """Atomically write all networks of ``method`` as safetensors.

    The file's metadata carries the run's ``run.json`` text under :data:`RUN_META_KEY`
    (``run_json``, else the run.json of the run folder the file is written into), so a
    weights file copied out of its run still says how to use it.
    """
    meta = dict(metadata or {"method": method.name})
    text = run_json if run_json is not None else _run_json_text(path)
    if text is not None:
        meta[RUN_META_KEY] = text
    atomic_write_bytes(path, st_save(network_state(method), metadata=meta))


def weights_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's bytes (empty when absent or unreadable)."""
    if len(data) < 8:
        return {}
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        return {}
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, UnicodeDecodeError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def read_weights_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, reading only its header.

    Raises:
        ModelLoadError: the file cannot be read or is not a safetensors file.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if n <= 0 or n > 100 * 2**20:
                raise ModelLoadError(f"{path} is not a safetensors weights file")
            header = head + fh.read(n)
    except OSError as exc:
        raise ModelLoadError(f"cannot read weights {path}: {exc}") from exc
    if len(header) < 8 + n:
        raise ModelLoadError(f"weights file {path} is truncated")
    return weights_metadata(header)


def embedded_run(path: Path) -> JsonObject | None:
    """The ``run.json`` content embedded in a weights file (:data:`RUN_META_KEY`), or None.

    Raises:
        ModelLoadError: unreadable file, or embedded text that is not a run description.
    """
    text = read_weights_metadata(path).get(RUN_META_KEY)
    if text is None:
        return None
    try:
        return run_description(text, f"{path}: its embedded {RUN_META_KEY!r} metadata")
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc


def inference_network_name(method: GanMethod) -> str:
    """The name under :meth:`GanMethod.networks` of the network inference uses."""
    target = method.inference_network()
    for name, net in method.networks().items():
        if net is target:
            return name
    raise ModelLoadError(f"{method.name}: its inference network is not one of {sorted(method.networks())}")


def export_inference(run_dir: Path, out_dir: Path, half: bool = False) -> Path:
    """Write a shippable copy of a finished run holding only the inference network.

    Training networks (discriminators, the reverse generator of a CycleGAN, ...) are
    left out, and with ``half`` floating-point tensors are stored as float16 (loaded back
    into float32 networks). ``run.json`` and ``heldout_metrics.json`` are copied. The
    copy translates or samples exactly like the run (up to float16 rounding) but cannot be
    resumed; the file is marked ``medgan.scope=inference`` so loaders know, and carries the
    ``run.json`` text under :data:`RUN_META_KEY` so the file alone can be imported.

    Returns:
        The written weights file.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model = load_model(run_dir)
    name = inference_network_name(model.method)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.method.networks()[name].state_dict().items():
        t = v.detach().to("cpu").contiguous().clone()
        if half and t.is_floating_point():
            t = t.half()
        tensors[f"{name}.{k}"] = t
    out_dir.mkdir(parents=True, exist_ok=True)
    for extra in (RUN_JSON, "heldout_metrics.json"):
        if (run_dir / extra).is_file():
            atomic_write_bytes(out_dir / extra, (run_dir / extra).read_bytes())
    meta = {"method": model.method.name, SCOPE_KEY: SCOPE_INFERENCE, "network": name,
            "dtype": "float16" if half else "float32", "exported_from": str(run_dir.name),
            RUN_META_KEY: (run_dir / RUN_JSON).read_text(encoding="utf-8")}
    dest = out_dir / WEIGHTS
    atomic_write_bytes(dest, st_save(tensors, metadata=meta))
    return dest


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; truncated/corrupt files raise :class:`ModelLoadError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read weights {path}: {exc}") from exc
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise ModelLoadError(f"weights file {path} is corrupt or truncated ({exc}); retrain or restore it") from exc


def apply_weights(
    method: GanMethod,
    state: Mapping[str, torch.Tensor],
    source: Path | str = "weights",
    inference_only: bool = False,
) -> None:
    """Load ``"<network>.<param>"`` tensors into the method's networks (all must match).

    With ``inference_only`` (a file written by :func:`export_inference`) only the
    inference network must be present; the others keep their initial weights.
    """
    nets = method.networks()
    if inference_only:
        keep = inference_network_name(method)
        nets = {keep: nets[keep]}
    per: dict[str, dict[str, torch.Tensor]] = {n: {} for n in nets}
    for key, t in state.items():
        net_name, _, param = key.partition(".")
        if net_name not in per:
            raise ModelLoadError(f"{source}: unexpected network {net_name!r} (method {method.name} has {sorted(nets)})")
        per[net_name][param] = t
    for net_name, net in nets.items():
        if not per[net_name]:
            raise ModelLoadError(f"{source}: no weights for network {net_name!r}")
        try:
            net.load_state_dict(per[net_name], strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"{source}: weights do not fit network {net_name!r}: {exc}") from exc


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:08d}.safetensors"


def state_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.pt"))


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, weights path)`` of the checkpoints with both files present, oldest first."""
    d = Path(run_dir) / CHECKPOINTS
    out: list[tuple[int, Path]] = []
    if d.is_dir():
        for p in d.iterdir():
            m = _STEP_RE.match(p.name)
            if m and state_path(p).is_file():
                out.append((int(m.group(1)), p))
    return sorted(out)


def save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_state(path: Path) -> dict[str, Any]:
    """Load optimiser/RNG state with the safe loader only."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"checkpoint state {path} is not a weights-only file (it holds objects the safe "
            "loader refuses to run): it was not written by this program"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - truncated, corrupt: every failure is a reason
        raise ModelLoadError(f"checkpoint state {path} is corrupt or truncated: {exc}") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise ModelLoadError(f"checkpoint state {path} is not a medgan training state")
    return state


def checkpoint_problem(weights: Path) -> str | None:
    """Why the checkpoint ``weights`` (and its state file) cannot be resumed from, or None.

    Reads both files in full: weights that safetensors cannot parse, or a state the safe
    loader cannot read (a truncated file after a crash or a full disk), are problems.
    """
    weights = Path(weights)
    spath = state_path(weights)
    try:
        read_weights(weights)
    except ModelLoadError as exc:
        return _unreadable(weights, exc)
    try:
        state = read_state(spath)
    except ModelLoadError as exc:
        return _unreadable(spath, exc)
    m = _STEP_RE.match(weights.name)
    if m and int(state["step"]) != int(m.group(1)):
        return f"checkpoint state {state_path(weights)} holds step {state['step']}, not {int(m.group(1))}"
    return None


def _unreadable(path: Path, exc: ModelLoadError) -> str:
    if "not a weights-only file" in str(exc):
        return f"{path.name} is not a weights-only file (the safe loader refuses it)"
    cause = str(exc.__cause__ or exc).split(". ")[0].strip()
    return f"{path.name} is corrupt or truncated ({cause[:160]})"


@dataclass(frozen=True)
class BrokenCheckpoint:
    """A checkpoint newer than the newest intact one, and why it cannot be used."""

    step: int
    weights: Path
    reason: str


def newest_intact_checkpoint(run_dir: Path) -> tuple[tuple[int, Path] | None, list[BrokenCheckpoint]]:
    """The newest checkpoint that reads back, and the broken ones newer than it (newest first).

    ``(None, [...])`` when no checkpoint is intact; ``(None, [])`` when there is none.
    """
    broken: list[BrokenCheckpoint] = []
    for step, p in reversed(list_checkpoints(run_dir)):
        why = checkpoint_problem(p)
        if why is None:
            return (step, p), broken
        broken.append(BrokenCheckpoint(step, p, why))
    return None, broken


#: Suffix of checkpoint files moved aside by :func:`set_aside_checkpoint`.
BROKEN_SUFFIX = ".broken"


def set_aside_checkpoint(weights: Path) -> list[Path]:
    """Rename a broken checkpoint's files to ``*.broken`` so that :func:`list_checkpoints`
    (and a resume) skips it while the files stay for inspection; returns the new paths."""
    weights = Path(weights)
    moved = []
    for f in (weights, state_path(weights)):
        if f.exists():
            dest = f.with_name(f.name + BROKEN_SUFFIX)
            f.replace(dest)
            moved.append(dest)
    return moved


# -- loading a model -----------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A method with its weights loaded, in eval mode, plus its run description."""

    method: GanMethod
    info: RunInfo
    weights: Path


def build_method(info: RunInfo, device: torch.device) -> GanMethod:
    try:
        cls = get_method(info.method)
    except KeyError as exc:
        raise ModelLoadError(f"{info.path}: {exc.args[0]}") from exc
    try:
        return cls(info.method_config, device)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{info.path}: cannot build {info.method} from its config: {exc}") from exc


def load_model(run_dir: Path, device: torch.device | str = "cpu", checkpoint: Path | None = None) -> LoadedModel:
    """Build the run's method on ``device`` and load its weights: ``checkpoint`` when given,
    else ``best.safetensors`` (the best validation score) when the run kept one, else
    ``weights.safetensors`` (the newest step).

    Raises:
        ModelLoadError: missing/malformed run.json, unknown method, corrupt or mismatched weights.
    """
    info = load_run(Path(run_dir))
    dev = torch.device(device)
    weights = Path(checkpoint) if checkpoint is not None else Path(run_dir) / WEIGHTS
    if checkpoint is None and (Path(run_dir) / BEST_WEIGHTS).is_file():
        weights = Path(run_dir) / BEST_WEIGHTS
    if not weights.is_file():
        ckpts = list_checkpoints(Path(run_dir))
        if checkpoint is None and ckpts:
            weights = ckpts[-1][1]
        else:
            raise ModelLoadError(f"{run_dir} has no weights ({weights.name} missing): the run has not saved yet")
    method = build_method(info, dev)
    state = read_weights(weights)  # first: its error names a corrupt file best
    inference_only = read_weights_metadata(weights).get(SCOPE_KEY) == SCOPE_INFERENCE
    apply_weights(method, state, weights, inference_only=inference_only)
    method.train(False)
    for net in method.networks().values():
        net.eval()
    return LoadedModel(method=method, info=info, weights=weights)
