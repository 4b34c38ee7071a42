"""The model catalogue: ``medgan models list|verify|import|card|export`` and File > Import model.

Importing checks what it imports: the weights must be a safetensors file that builds and
loads into the method its ``run.json`` names (a pickle or a truncated file is refused, so
``verify`` never vouches for weights that cannot be loaded). Exporting writes a shippable
copy of a run holding only its inference network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.models.refs import card_text
from medgan_desktop.core.models.registry import ModelEntry, ModelError, ModelExistsError, ModelRegistry
from medgan_desktop.core.models.runs import ModelLoadError, export_inference, load_model, read_weights


@dataclass(frozen=True)
class VerifyLine:
    """One model's check: ``ok`` and, when not, why."""

    model: str
    ok: bool
    reason: str = ""


def entries(paths: AppPaths | None = None) -> list[ModelEntry]:
    """Every catalogue model (shipped, then the user's)."""
    try:
        return ModelRegistry(paths).entries()
    except ModelError as exc:
        raise JobError(str(exc)) from exc


def run_verify(paths: AppPaths | None = None) -> list[VerifyLine]:
    """Check every model's weights against its sha256 and that they load."""
    reg = ModelRegistry(paths)
    out = []
    for e in entries(paths):
        try:
            reg.verify(e)
            load_model(e.folder)
            out.append(VerifyLine(e.id, True))
        except (ModelError, ModelLoadError) as exc:
            out.append(VerifyLine(e.id, False, str(exc)))
    return out


@dataclass(frozen=True)
class ImportSpec:
    """A run folder or weights file to import as a user model."""

    source: Path
    model_id: str | None = None
    card: Path | None = None
    replace: bool = False


def _check_loadable(source: Path) -> None:
    """Refuse weights that are not safetensors or do not load into their method."""
    weights = source if source.is_file() else source / "weights.safetensors"
    if weights.is_file():
        try:
            read_weights(weights)
        except ModelLoadError as exc:
            raise JobError(f"{weights} cannot be imported: {exc}") from exc
    if source.is_dir() and (source / "run.json").is_file():
        try:
            load_model(source)
        except ModelLoadError as exc:
            raise JobError(f"{source} cannot be imported: {exc}") from exc


def run_import(spec: ImportSpec, paths: AppPaths | None = None) -> ModelEntry:
    """Copy and register the model after checking it loads.

    Raises:
        JobError: not a run, weights that are not safetensors or do not fit the method,
            an id taken by a shipped model, or (without ``replace``) by a user model.
    """
    _check_loadable(Path(spec.source))
    try:
        entry = ModelRegistry(paths).import_model(spec.source, spec.model_id, spec.card,
                                                  replace=spec.replace)
    except ModelExistsError as exc:
        raise JobError(str(exc)) from exc
    except ModelError as exc:
        raise JobError(str(exc)) from exc
    try:
        load_model(entry.folder)
    except ModelLoadError as exc:  # the copied file alone (a weights file with embedded run.json)
        raise JobError(f"the imported model {entry.id} does not load: {exc}") from exc
    return entry


def model_card(model_id: str, paths: AppPaths | None = None) -> str:
    """A model's card text (catalogue id, run folder or reference)."""
    try:
        ModelRegistry(paths).get(model_id)
    except ModelError:
        if not Path(model_id).expanduser().is_dir():
            raise JobError(f"no model with id {model_id!r}; list them with medgan models list") from None
    return card_text(model_id, paths)


def run_export(run_dir: Path, out_dir: Path, half: bool = False) -> Path:
    """A shippable copy of a finished run holding only its inference network.

    Raises:
        JobError: the export folder is the run folder, or the run cannot be loaded.
        WriteError: writing failed.
    """
    if Path(out_dir).resolve() == Path(run_dir).resolve():
        raise JobError("the export folder must differ from the run folder (the run is never modified)")
    try:
        return export_inference(run_dir, out_dir, half=half)
    except ModelLoadError as exc:
        raise JobError(str(exc)) from exc
