"""What the Sample and Translate panels offer in their model lists, and how they load it.

A list entry holds a reference string, never a bare folder: ``"model:<id>"`` for a shipped
or imported model of the catalogue, ``"run:<folder>"`` for a local training run. Catalogue
models are loaded only through :class:`~medgan_desktop.core.models.registry.ModelRegistry`,
which checks their weights against the manifest's sha256 (a tampered or missing file raises
:class:`~medgan_desktop.core.models.registry.ModelError`); training runs are not in a
manifest and load directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from medgan_desktop.core.config import AppPaths

if TYPE_CHECKING:
    from medgan_desktop.core.models.registry import ModelEntry
    from medgan_desktop.core.training.run import LoadedModel

MODEL_PREFIX = "model:"
RUN_PREFIX = "run:"


def model_ref(model_id: str) -> str:
    return MODEL_PREFIX + model_id


def run_ref(folder: Path) -> str:
    return RUN_PREFIX + str(Path(folder).resolve())


def catalogue_entry(ref: str | None, paths: AppPaths) -> ModelEntry | None:
    """The catalogue entry of a ``model:`` reference (None for runs and unknown ids)."""
    if not ref or not ref.startswith(MODEL_PREFIX):
        return None
    from medgan_desktop.core.models.registry import ModelError, ModelRegistry

    try:
        return ModelRegistry(paths).get(ref[len(MODEL_PREFIX):])
    except ModelError:
        return None


def ref_folder(ref: str | None, paths: AppPaths) -> Path | None:
    """The folder a reference points at, for showing its description (nothing is verified)."""
    if not ref:
        return None
    if ref.startswith(RUN_PREFIX):
        return Path(ref[len(RUN_PREFIX):])
    entry = catalogue_entry(ref, paths)
    return entry.folder if entry is not None else None


def ref_name(ref: str | None) -> str:
    """A short name for a reference: the model id or the run folder's name."""
    if not ref:
        return "unknown"
    if ref.startswith(MODEL_PREFIX):
        return ref[len(MODEL_PREFIX):]
    return Path(ref[len(RUN_PREFIX):]).name


def verified_folder(ref: str, paths: AppPaths) -> Path:
    """The folder to load: catalogue models verified against their sha256, runs as they are.

    Raises:
        ModelError: an unknown id, or weights that are missing or do not match the manifest.
    """
    from medgan_desktop.core.models.registry import ModelError, ModelRegistry

    if ref.startswith(MODEL_PREFIX):
        reg = ModelRegistry(paths)
        return reg.verify(reg.get(ref[len(MODEL_PREFIX):]))
    if ref.startswith(RUN_PREFIX):
        return Path(ref[len(RUN_PREFIX):])
    raise ModelError(f"not a model reference: {ref!r}")


def load_ref(ref: str, paths: AppPaths, device: str = "cpu") -> LoadedModel:
    """Verify (catalogue models) and load a reference; runs in a worker."""
    from medgan_desktop.core.training.run import load_model

    return load_model(verified_folder(ref, paths), device)


def card_text(ref: str | None, paths: AppPaths) -> str:
    """The model card (``card.md``), or for a training run a summary of its ``run.json``."""
    folder = ref_folder(ref, paths)
    if folder is None:
        return "No model selected."
    entry = catalogue_entry(ref, paths)
    card = entry.card_path if entry is not None else folder / "card.md"
    if card.is_file():
        try:
            return card.read_text(encoding="utf-8")
        except OSError as exc:
            return f"# {ref_name(ref)}\n\nCannot read the model card {card}: {exc}"
    from medgan_desktop.core.training.run import load_run

    try:
        info = load_run(folder)
    except Exception as exc:  # shown to the user in the card window
        return f"# {folder.name}\n\nCannot read this model: {exc}"
    pre = info.preprocessing
    if info.task == "translation":
        what = (f"{pre.modality_in} → {pre.modality_out}, {pre.size} px, "
                f"2.5D context {pre.context_slices}")
    else:
        classes = f", classes {', '.join(pre.class_names)}" if pre.class_names else ""
        what = f"{pre.modality_out} images, {pre.size} px, {pre.channels} channel(s){classes}"
    return (
        f"# {folder.name}\n\nA local training run without a model card.\n\n"
        f"- method: {info.method}\n- {what}\n- created: {info.created}\n- data: {info.data}\n\n"
        "Not validated: research and review only, not for diagnosis."
    )


def show_card_dialog(parent: QWidget, text: str, title: str = "Model card") -> QDialog:
    """A non-modal window showing a Markdown model card."""
    dlg = QDialog(parent)
    dlg.setWindowTitle(title)
    lay = QVBoxLayout(dlg)
    view = QTextBrowser()
    view.setMarkdown(text)
    lay.addWidget(view)
    close = QPushButton("Close")
    close.clicked.connect(dlg.accept)
    lay.addWidget(close)
    dlg.resize(640, 520)
    dlg.show()
    return dlg
