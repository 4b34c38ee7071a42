"""The model catalogue: shipped models (``models/manifest.json``) and the user's own.

The catalogue is data (as SlicerMONAIAuto3DSeg keeps ``Models.json``): each
entry names its folder, weights file and sha256, task, modalities, size,
normalisation, training data with licence, held-out metrics and intended use.
Shipped models sit in the install folder (read-only); models a user imports go
to ``<data dir>/models`` with their own manifest. Weights are checked against
the sha256 before they are loaded; there are never URLs (workstations are offline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan_desktop.core.config import AppPaths

MANIFEST_NAME = "manifest.json"
SCHEMA_NAME = "manifest.schema.json"
INTENDED_USE = "research and review only, not for diagnosis"


class ModelError(Exception):
    """A model is missing, tampered with or malformed; the message says which and why."""


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue entry (see ``models/manifest.schema.json`` for every field)."""

    id: str
    method: str
    task: str
    folder: Path
    weights: str
    sha256: str
    version: str = "1.0.0"
    modality_in: str | None = None
    modality_out: str | None = None
    size: int = 0
    card: str = "card.md"
    shipped: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def weights_path(self) -> Path:
        return self.folder / self.weights

    @property
    def card_path(self) -> Path:
        return self.folder / self.card

    @property
    def label(self) -> str:
        arrow = f"{self.modality_in}→{self.modality_out}" if self.modality_in else self.task
        return f"{self.id} ({arrow}, {self.method})"

    def card_text(self) -> str:
        try:
            return self.card_path.read_text(encoding="utf-8")
        except OSError:
            return f"# {self.id}\n\nNo model card was found at {self.card_path}."


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _entry_from_json(d: dict[str, Any], root: Path, shipped: bool) -> ModelEntry:
    try:
        return ModelEntry(
            id=str(d["id"]),
            method=str(d["method"]),
            task=str(d["task"]),
            folder=root / str(d.get("folder", d["id"])),
            weights=str(d.get("weights", "weights.safetensors")),
            sha256=str(d["sha256"]),
            version=str(d.get("version", "1.0.0")),
            modality_in=d.get("modality_in"),
            modality_out=d.get("modality_out"),
            size=int(d.get("size", 0)),
            card=str(d.get("card", "card.md")),
            shipped=shipped,
            raw=dict(d),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"malformed manifest entry {d.get('id', '?')!r}: {exc}") from exc


def read_manifest(root: Path, shipped: bool) -> list[ModelEntry]:
    """Entries of ``root/manifest.json`` (an empty list when there is none)."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model manifest {path}: {exc}") from exc
    schema_path = root / SCHEMA_NAME
    if not schema_path.is_file():
        schema_path = AppPaths.default().shipped_models_dir / SCHEMA_NAME
    if schema_path.is_file():
        import jsonschema

        try:
            jsonschema.validate(data, json.loads(schema_path.read_text(encoding="utf-8")))
        except jsonschema.ValidationError as exc:
            raise ModelError(f"{path} does not match its schema: {exc.message}") from exc
    return [_entry_from_json(m, root, shipped) for m in data.get("models", [])]


class ModelRegistry:
    """Shipped and user models, looked up by id."""

    def __init__(self, paths: AppPaths | None = None) -> None:
        self.paths = paths or AppPaths.default()

    def entries(self) -> list[ModelEntry]:
        shipped = read_manifest(self.paths.shipped_models_dir, shipped=True)
        user = read_manifest(self.paths.user_models_dir, shipped=False)
        ids = {e.id for e in shipped}
        return shipped + [e for e in user if e.id not in ids]

    def get(self, model_id: str) -> ModelEntry:
        for e in self.entries():
            if e.id == model_id:
                return e
        known = ", ".join(e.id for e in self.entries()) or "none"
        raise ModelError(f"no model with id {model_id!r}; known models: {known}")

    def find(self, task: str | None = None, modality_in: str | None = None,
             modality_out: str | None = None) -> list[ModelEntry]:
        """Entries matching a task and modalities (None matches anything)."""
        out = []
        for e in self.entries():
            if task is not None and e.task != task:
                continue
            if modality_in is not None and (e.modality_in or "").upper() != modality_in.upper():
                continue
            if modality_out is not None and (e.modality_out or "").upper() != modality_out.upper():
                continue
            out.append(e)
        return out

    def verify(self, entry: ModelEntry) -> Path:
        """Check the weights exist and match the sha256; return the model folder."""
        if not entry.weights_path.is_file():
            raise ModelError(f"model {entry.id!r}: weights file missing: {entry.weights_path}")
        digest = sha256_file(entry.weights_path)
        if digest != entry.sha256:
            raise ModelError(
                f"model {entry.id!r}: weights file {entry.weights_path.name} does not match the "
                f"manifest (sha256 {digest[:12]}…, expected {entry.sha256[:12]}…); it may be "
                "corrupt or tampered with. Reinstall the application or re-import the model."
            )
        return entry.folder

    def resolve(self, ref: str | Path) -> Path:
        """A run folder as is, or a catalogue id to its verified model folder."""
        p = Path(ref)
        if p.is_dir() and (p / "run.json").is_file():
            return p
        if p.suffix == ".safetensors" and p.is_file() and (p.parent / "run.json").is_file():
            return p.parent
        if os.sep in str(ref) or p.exists():
            raise ModelError(f"{ref} is not a run folder (no run.json) nor a known model id")
        return self.verify(self.get(str(ref)))

    def import_model(self, source: Path, model_id: str | None = None,
                     card: Path | None = None) -> ModelEntry:
        """Copy a run folder (or a run's weights file) into the user's model folder.

        Args:
            source: a run folder with ``run.json`` or a ``.safetensors`` file beside one.
            model_id: the id to register (defaults to the folder name).
            card: an optional Markdown model card to copy.
        """
        run_dir = source if source.is_dir() else source.parent
        run_json = run_dir / "run.json"
        if not run_json.is_file():
            raise ModelError(f"{source} has no run.json beside it; cannot tell how to use it")
        weights = source if source.is_file() else run_dir / "weights.safetensors"
        if not weights.is_file():
            raise ModelError(f"{run_dir} has no weights.safetensors (train it or pick a checkpoint)")
        run = json.loads(run_json.read_text(encoding="utf-8"))
        model_id = model_id or run_dir.name
        if not model_id.replace("_", "").replace("-", "").isalnum():
            raise ModelError(f"model id {model_id!r} may only hold letters, digits, - and _")
        dest_root = self.paths.user_models_dir
        dest_root.mkdir(parents=True, exist_ok=True)
        dest = dest_root / model_id
        with tempfile.TemporaryDirectory(dir=dest_root) as tmp:
            stage = Path(tmp) / model_id
            stage.mkdir()
            shutil.copy2(run_json, stage / "run.json")
            shutil.copy2(weights, stage / "weights.safetensors")
            card_src = card or run_dir / "card.md"
            if card_src.is_file():
                shutil.copy2(card_src, stage / "card.md")
            else:
                (stage / "card.md").write_text(
                    f"# {model_id}\n\nImported from `{run_dir}`.\n\nIntended use: {INTENDED_USE}.\n",
                    encoding="utf-8",
                )
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(stage, dest)
        pre = run.get("preprocessing", {})
        entry = {
            "id": model_id,
            "version": "user",
            "method": run.get("method", "?"),
            "task": str(run.get("task", "synthesis")),
            "modality_in": pre.get("modality_in"),
            "modality_out": pre.get("modality_out"),
            "size": int(pre.get("size", 0) or 0),
            "folder": model_id,
            "weights": "weights.safetensors",
            "sha256": sha256_file(dest / "weights.safetensors"),
            "card": "card.md",
            "training_data": run.get("data", {}),
            "intended_use": INTENDED_USE,
        }
        manifest = dest_root / MANIFEST_NAME
        data: dict[str, Any] = {"format": 1, "models": []}
        if manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
        data["models"] = [m for m in data.get("models", []) if m.get("id") != model_id] + [entry]
        tmp_manifest = manifest.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp_manifest, manifest)
        return _entry_from_json(entry, dest_root, shipped=False)


def resolve_model(ref: str | Path, paths: AppPaths | None = None) -> Path:
    """A run folder, or the verified folder of a shipped/user model id."""
    return ModelRegistry(paths).resolve(ref)
