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

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.types import JsonObject

MANIFEST_NAME = "manifest.json"
SCHEMA_NAME = "manifest.schema.json"
INTENDED_USE = "research and review only, not for diagnosis"


class ModelError(Exception):
    """A model is missing, tampered with or malformed; the message says which and why."""


class ModelExistsError(ModelError):
    """A user model with the requested id already exists (import with ``replace``)."""



def run_description(text: str, where: str) -> JsonObject:
    """``run.json`` text as a run description (an object naming its method).

    Raises:
        ValueError: one sentence starting with ``where``: not JSON, or no method named.
    """
    try:
        run = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(run, dict) or "method" not in run:
        raise ValueError(f"{where} names no method")
    return run

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
    raw: JsonObject = field(default_factory=dict, compare=False, repr=False)

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


def _entry_from_json(d: JsonObject, root: Path, shipped: bool) -> ModelEntry:
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

    def entry_for_folder(self, folder: Path) -> ModelEntry | None:
        """The catalogue entry whose folder is ``folder`` (compared resolved), or None."""
        target = _resolved(folder)
        for e in self.entries():
            if _resolved(e.folder) == target:
                return e
        return None

    def in_models_dir(self, path: Path) -> bool:
        """True when ``path`` lies under the shipped or the user models folder."""
        p = _resolved(path)
        return any(p.is_relative_to(_resolved(root))
                   for root in (self.paths.shipped_models_dir, self.paths.user_models_dir))

    def resolve(self, ref: str | Path) -> Path:
        """A catalogue id, a run folder or a run's weights file, to a folder ready to load.

        Ids and folders of catalogue models (also when given as a path inside the shipped or
        user models folder) are looked up in their manifest and their weights checked
        against its sha256; other run folders (training runs) are returned as they are.
        """
        p = Path(ref)
        text = str(ref)
        if os.sep in text or (os.altsep and os.altsep in text) or p.exists():
            if p.is_dir() and (p / "run.json").is_file():
                folder = p
            elif p.suffix == ".safetensors" and p.is_file() and (p.parent / "run.json").is_file():
                folder = p.parent
            else:
                raise ModelError(f"{ref} is not a run folder (no run.json) nor a known model id")
            entry = self.entry_for_folder(folder)
            if entry is not None:
                if folder is not p and _resolved(p) != _resolved(entry.weights_path):
                    raise ModelError(
                        f"{p.name} is not the weights file of model {entry.id!r} "
                        f"({entry.weights}); load the model by its id"
                    )
                return self.verify(entry)
            if self.in_models_dir(folder):
                raise ModelError(
                    f"{folder} lies in a models folder but is not in its manifest, so its "
                    "weights cannot be checked; import it with 'medgan models import'"
                )
            return folder
        return self.verify(self.get(text))

    def import_model(self, source: Path, model_id: str | None = None,
                     card: Path | None = None, replace: bool = False) -> ModelEntry:
        """Copy a run folder or a weights file into the user's model folder and register it.

        Args:
            source: a run folder with ``run.json``, or a ``.safetensors`` file with a
                ``run.json`` beside it or embedded in its metadata (``medgan.run``, written
                by training and ``medgan models export``).
            model_id: the id to register (defaults to the folder name, or the file's stem).
            card: an optional Markdown model card to copy.
            replace: overwrite a user model that already has this id.

        Raises:
            ModelExistsError: a user model with this id exists and ``replace`` is False.
            ModelError: the source cannot be used, or the id is taken by a shipped model.
        """
        source = Path(source)
        if source.is_dir():
            run_dir, weights = source, source / "weights.safetensors"
            if not (run_dir / "run.json").is_file():
                raise ModelError(f"{source} has no run.json; cannot tell how to use it")
            if not weights.is_file():
                raise ModelError(f"{run_dir} has no weights.safetensors (train it or pick a checkpoint)")
        elif source.is_file():
            if source.suffix != ".safetensors":
                raise ModelError(f"{source} is not a .safetensors weights file nor a run folder")
            run_dir, weights = source.parent, source
        else:
            raise ModelError(f"{source} does not exist")
        if card is not None and not Path(card).is_file():
            raise ModelError(f"model card {card} does not exist")
        run_json_text = self._run_json_for(run_dir, weights)
        try:
            run = run_description(run_json_text, f"the run description of {source}")
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
        if model_id is None:
            model_id = run_dir.name if source.is_dir() else (
                source.stem if source.stem != "weights" else run_dir.name)
        if not model_id or not model_id.replace("_", "").replace("-", "").isalnum():
            raise ModelError(f"model id {model_id!r} may only hold letters, digits, - and _")
        shipped_ids = {e.id for e in read_manifest(self.paths.shipped_models_dir, shipped=True)}
        if model_id in shipped_ids:
            raise ModelError(f"{model_id!r} is the id of a shipped model; choose another id")
        dest_root = self.paths.user_models_dir
        dest = dest_root / model_id
        user_ids = {e.id for e in read_manifest(dest_root, shipped=False)}
        if not replace and (model_id in user_ids or dest.exists()):
            raise ModelExistsError(
                f"a user model with id {model_id!r} already exists; choose another id or "
                "replace it (medgan models import --replace)"
            )
        dest_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest_root) as tmp:
            stage = Path(tmp) / model_id
            stage.mkdir()
            (stage / "run.json").write_text(run_json_text, encoding="utf-8")
            shutil.copy2(weights, stage / "weights.safetensors")
            card_src = card or run_dir / "card.md"
            if card_src.is_file():
                shutil.copy2(card_src, stage / "card.md")
            else:
                (stage / "card.md").write_text(
                    f"# {model_id}\n\nImported from `{source}`.\n\nIntended use: {INTENDED_USE}.\n",
                    encoding="utf-8",
                )
            if dest.exists():
                shutil.rmtree(dest)
            stage.replace(dest)
        pre = run.get("preprocessing") or {}
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
        data: JsonObject = {"format": 1, "models": []}
        if manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
        data["models"] = [m for m in data.get("models", []) if m.get("id") != model_id] + [entry]
        tmp_manifest = manifest.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp_manifest.replace(manifest)
        return _entry_from_json(entry, dest_root, shipped=False)

    @staticmethod
    def _run_json_for(run_dir: Path, weights: Path) -> str:
        """``run.json`` beside the weights, else the one embedded in the weights' metadata."""
        beside = run_dir / "run.json"
        if beside.is_file():
            return beside.read_text(encoding="utf-8")
        from medgan_desktop.core.models.runs import RUN_META_KEY, ModelLoadError, embedded_run

        try:
            run = embedded_run(weights)
        except ModelLoadError as exc:
            raise ModelError(str(exc)) from exc
        if run is None:
            raise ModelError(
                f"{weights} has no run.json beside it and no run description in its metadata "
                f"({RUN_META_KEY!r}; files written by older versions lack it), so it cannot "
                "tell how to use it: import the run folder, or put its run.json beside the file"
            )
        return json.dumps(run, indent=2) + "\n"


def _resolved(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except OSError:
        return Path(os.path.abspath(path))


def resolve_model(ref: str | Path, paths: AppPaths | None = None) -> Path:
    """A run folder, or the verified folder of a shipped/user model id."""
    return ModelRegistry(paths).resolve(ref)
