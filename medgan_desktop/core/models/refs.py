"""Which model a user means, in one place for the GUI and the CLI.

A reference is text: ``"model:<id>"`` (a shipped or imported model of the catalogue),
``"run:<folder>"`` (a local training run), or, as typed on a command line, a bare model
id, a run folder, a run's weights file or one of its checkpoints. Every catalogue model is
loaded only after its weights were checked against the manifest's sha256 (also when it is
given as a folder inside a models folder); training runs are not in a manifest and load
directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.models.registry import ModelEntry, ModelError, ModelRegistry
from medgan_desktop.core.models.runs import (
    CHECKPOINTS,
    RUN_JSON,
    LoadedModel,
    ModelLoadError,
    RunInfo,
    load_model,
    load_run,
)

MODEL_PREFIX = "model:"
RUN_PREFIX = "run:"


def model_ref(model_id: str) -> str:
    return MODEL_PREFIX + model_id


def run_ref(folder: Path) -> str:
    return RUN_PREFIX + str(Path(folder).resolve())


@dataclass(frozen=True)
class Resolved:
    """A reference resolved to what can be loaded.

    Args:
        folder: the run/model folder (verified against the manifest for catalogue models).
        entry: the catalogue entry, or None for a training run.
        checkpoint: a checkpoint file to load instead of the latest weights.
    """

    folder: Path
    entry: ModelEntry | None = None
    checkpoint: Path | None = None

    @property
    def model_id(self) -> str:
        return self.entry.id if self.entry is not None else self.folder.name

    def version(self, info: RunInfo | None = None) -> str:
        """The version written into outputs: the catalogue version, else the run's date."""
        if self.entry is not None:
            return self.entry.version
        if self.checkpoint is not None:
            return f"run checkpoint {self.checkpoint.stem}"
        created = info.created if info is not None else ""
        return f"run {created}".strip() if created else "run (unversioned)"


def _looks_like_path(text: str) -> bool:
    return os.sep in text or bool(os.altsep and os.altsep in text) or Path(text).exists()


def resolve_ref(ref: str, paths: AppPaths | None = None, *, verify: bool = True) -> Resolved:
    """Resolve a reference (see the module docs).

    Args:
        ref: the reference text.
        paths: where the catalogue lives (default: the application's).
        verify: check catalogue weights against their sha256 (off only for showing a card).

    Raises:
        ModelError: unknown id, tampered weights, or a path that is not a run.
    """
    reg = ModelRegistry(paths)
    text = ref.strip()
    if not text:
        raise ModelError("no model given")
    if text.startswith(MODEL_PREFIX):
        entry = reg.get(text[len(MODEL_PREFIX):])
        return Resolved(reg.verify(entry) if verify else entry.folder, entry)
    if text.startswith(RUN_PREFIX):
        text = text[len(RUN_PREFIX):]
    elif not _looks_like_path(text):
        entry = reg.get(text)
        return Resolved(reg.verify(entry) if verify else entry.folder, entry)
    p = Path(text).expanduser()
    if p.is_file() and p.suffix == ".safetensors" and p.parent.name == CHECKPOINTS:
        run_dir = p.parent.parent
        if not (run_dir / RUN_JSON).is_file():
            raise ModelError(f"{p} is a checkpoint outside a run folder (no {RUN_JSON} above it)")
        if reg.entry_for_folder(run_dir) is not None or reg.in_models_dir(run_dir):
            raise ModelError(f"{p}: catalogue models are loaded by their id, not by checkpoint")
        return Resolved(run_dir, None, p)
    folder = reg.resolve(p) if verify else (p.parent if p.is_file() else p)
    return Resolved(Path(folder), reg.entry_for_folder(Path(folder)))


def load_ref(ref: str, paths: AppPaths | None = None, device: torch.device | str = "cpu"
             ) -> tuple[LoadedModel, Resolved]:
    """Resolve, verify and load a reference.

    Raises:
        ModelError: the reference cannot be resolved or its weights fail the check.
        ModelLoadError: the run folder or weights are unreadable or do not fit the method.
    """
    resolved = resolve_ref(ref, paths)
    return load_model(resolved.folder, device, checkpoint=resolved.checkpoint), resolved


def ref_name(ref: str | None) -> str:
    """A short name for a reference: the model id or the run folder's name."""
    if not ref:
        return "unknown"
    if ref.startswith(MODEL_PREFIX):
        return ref[len(MODEL_PREFIX):]
    return Path(ref.removeprefix(RUN_PREFIX)).name


def card_text(ref: str | None, paths: AppPaths | None = None) -> str:
    """The model card (``card.md``), or for a training run a summary of its ``run.json``."""
    if not ref:
        return "No model selected."
    try:
        resolved = resolve_ref(ref, paths, verify=False)
    except ModelError as exc:
        return f"# {ref_name(ref)}\n\n{exc}"
    card = resolved.entry.card_path if resolved.entry is not None else resolved.folder / "card.md"
    if card.is_file():
        try:
            return card.read_text(encoding="utf-8")
        except OSError as exc:
            return f"# {ref_name(ref)}\n\nCannot read the model card {card}: {exc}"
    try:
        info = load_run(resolved.folder)
    except ModelLoadError as exc:
        return f"# {resolved.folder.name}\n\nCannot read this model: {exc}"
    pre = info.preprocessing
    if info.task == "translation":
        what = (f"{pre.modality_in} → {pre.modality_out}, {pre.size} px, "
                f"2.5D context {pre.context_slices}")
    else:
        classes = f", classes {', '.join(pre.class_names)}" if pre.class_names else ""
        what = f"{pre.modality_out} images, {pre.size} px, {pre.channels} channel(s){classes}"
    return (
        f"# {resolved.folder.name}\n\nA local training run without a model card.\n\n"
        f"- method: {info.method}\n- {what}\n- created: {info.created}\n- data: {info.data}\n\n"
        "Not validated: research and review only, not for diagnosis."
    )
