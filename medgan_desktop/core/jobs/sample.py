"""Sample images from a synthesis model: ``medgan sample`` and the Sample panel.

A model is any reference (catalogue id, run folder, run checkpoint). Conditional models
take one class or a class mix (``{"NORMAL": 234, "PNEUMONIA": 390}``; class names match
case-insensitively, or give class indices). The same spec always gives the same images and
the same files. Files are written as a set, all or none, and never over existing files:
PNG (with the synthetic mark in the PNG text chunks) or Secondary Capture DICOM marked
synthetic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medgan_desktop import __version__
from medgan_desktop.core.atomic import writable_target
from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.dicom.write import write_secondary_capture
from medgan_desktop.core.imaging.display import to_display
from medgan_desktop.core.inference.sample import SampleError, interpolate, sample, truncation_mode
from medgan_desktop.core.io import write_png_slices
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.models.refs import Resolved, load_ref
from medgan_desktop.core.models.registry import ModelError
from medgan_desktop.core.models.runs import LoadedModel, ModelLoadError
from medgan_desktop.core.progress import CancelToken, ProgressCallback, Stage, no_progress, notice, stage
from medgan_desktop.core.training.devices import select_device


class SampleFormat(StrEnum):
    NONE = "none"
    PNG = "png"
    DICOM = "dicom"


@dataclass(frozen=True)
class SampleSpec:
    """What to sample.

    Args:
        model: a model reference.
        n: images (when no class mix is given).
        seed: the noise seed; the same spec gives the same images.
        label: one class (name, case-insensitive, or index) for all ``n`` images.
        mix: images per class instead of ``n`` (``{"NORMAL": 234, "PNEUMONIA": 390}``).
        truncation: the truncation threshold, where the method supports it.
        out: the output folder ("" with format none).
        format: png, dicom or none.
        device: where to run.
        interpolate: ``(seed_a, seed_b, steps)``: images along the latent path instead.
    """

    model: str
    n: int = 16
    seed: int = 0
    label: str | None = None
    mix: Mapping[str, int] = field(default_factory=dict)
    truncation: float | None = None
    out: str = ""
    format: SampleFormat = SampleFormat.NONE
    device: str = "cpu"
    interpolate: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class SampleResult:
    """The images ``(n, C, H, W)`` in [-1, 1], each one's class, and what was written."""

    images: NDArray[np.float32]
    classes: tuple[str, ...]
    model: str
    model_version: str
    written: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()


class ModelCache:
    """One loaded model kept between calls (the Sample panel samples again and again)."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._value: tuple[LoadedModel, Resolved] | None = None

    def get(self, ref: str, paths: AppPaths, device: str) -> tuple[LoadedModel, Resolved]:
        key = (ref, device)
        if self._key != key or self._value is None:
            try:
                self._value = load_ref(ref, paths, select_device(device))
            except (ModelError, ModelLoadError, ValueError) as exc:
                raise JobError(f"cannot use the model {ref!r}: {exc}") from exc
            self._key = key
        return self._value


def class_index(model: LoadedModel, label: str | int) -> int:
    """A class name (case-insensitive) or index of ``model``.

    Raises:
        JobError: an unknown class, or a model without classes.
    """
    names = model.info.preprocessing.class_names
    n = model.method.config.num_classes
    if not model.method.uses_labels:
        raise JobError(f"{model.info.method} is not class-conditional; drop the class")
    text = str(label).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        if not 0 <= idx < n:
            raise JobError(f"class {idx} is out of range 0..{n - 1}")
        return idx
    folded = [c.casefold() for c in names]
    if text.casefold() not in folded:
        raise JobError(f"unknown class {text!r}; the model knows {', '.join(names) or 'no names'}")
    return folded.index(text.casefold())


def _file_names(spec: SampleSpec, model_id: str, classes: list[str]) -> list[str]:
    names = []
    counts: dict[str, int] = {}
    for c in classes:
        i = counts.get(c, 0)
        counts[c] = i + 1
        tag = f"_{c}" if c else ""
        names.append(f"{model_id}_seed{spec.seed}{tag}_{i:04d}.png")
    return names


def run_sample(spec: SampleSpec, paths: AppPaths | None = None,
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
               cache: ModelCache | None = None) -> SampleResult:
    """Sample (or interpolate) and write the images (see the module docs).

    Raises:
        JobError: a bad request for this model (a class it does not know, a translation
            model), an output folder that already holds these files, a model that fails.
        WriteError: writing failed; nothing of the set was left.
    """
    paths = paths or AppPaths.default()
    fmt = SampleFormat(spec.format)
    if spec.n < 1 and not spec.mix and spec.interpolate is None:
        raise JobError("the number of images must be at least 1")
    out = Path(spec.out).expanduser() if spec.out else None
    if fmt != SampleFormat.NONE:
        if out is None:
            raise JobError("give the output folder")
        if out.exists() and not out.is_dir():
            raise JobError(f"{out} is a file: give a folder (it is created when missing)")
        if fmt == SampleFormat.DICOM and out.is_dir() and any(out.iterdir()):
            raise JobError(f"{out} is not empty: a DICOM series is written into a new or empty folder")
        if not (os.access(out, os.W_OK | os.X_OK) if out.is_dir() else writable_target(out)):
            raise JobError(f"cannot write to {out}: its folder is missing, not a folder, or read-only")
    stage(progress, Stage.LOAD, "checking and loading the model")
    model, resolved = (cache or ModelCache()).get(spec.model, paths, spec.device)
    if model.info.task != "synthesis":
        raise JobError(f"{resolved.model_id} is a {model.info.task} model: translate with it, "
                       "it does not sample")
    warnings: list[str] = []
    truncation = spec.truncation
    if truncation is not None and truncation_mode(model) is None:
        warnings.append(f"{model.info.method} has no truncation trick; truncation {truncation:g} "
                        "does not apply and is ignored")
        notice(progress, warnings[-1])
        truncation = None
    names = model.info.preprocessing.class_names
    stage(progress, Stage.TRAIN, "generating")
    try:
        if spec.interpolate is not None:
            a, b, steps = spec.interpolate
            label = class_index(model, spec.label) if spec.label is not None else None
            images = interpolate(model, a, b, steps, label=label)
            classes = [names[label] if label is not None and names else ""] * len(images)
        elif spec.mix:
            parts, classes = [], []
            for key, count in spec.mix.items():
                idx = class_index(model, key)
                if count < 0:
                    raise JobError(f"the count of class {key} must be 0 or more")
                if count:
                    seed = spec.seed * 1_000_003 + idx  # a class's images do not depend on the others
                    parts.append(sample(model, count, seed=seed, label=idx, truncation=truncation))
                    classes += [names[idx] if idx < len(names) else str(idx)] * count
            if not parts:
                raise JobError("the class mix asks for no images")
            images = np.concatenate(parts)
        else:
            label = class_index(model, spec.label) if spec.label is not None else None
            images = sample(model, spec.n, seed=spec.seed, label=label, truncation=truncation)
            classes = [names[label] if label is not None and names else ""] * len(images)
    except SampleError as exc:
        raise JobError(str(exc)) from exc
    version = resolved.version(model.info)
    written: list[Path] = []
    if out is not None and fmt == SampleFormat.PNG:
        stage(progress, Stage.WRITE, f"writing {len(images)} PNG files to {out}")
        text = {"Description": f"SYNTHETIC image by {resolved.model_id} {version}; not for diagnosis",
                "Software": f"medgan_desktop {__version__}", "SyntheticData": "YES"}
        try:
            written = write_png_slices([to_display(im) for im in images], out,
                                       _file_names(spec, resolved.model_id, classes), text=text)
        except FileExistsError as exc:
            raise JobError(f"{exc} (use another seed or folder)") from exc
    elif out is not None and fmt == SampleFormat.DICOM:
        stage(progress, Stage.WRITE, f"writing {len(images)} DICOM files to {out}")
        grey = [img.mean(axis=0) for img in images]
        written = write_secondary_capture(
            grey, out, description=f"{model.info.method} seed {spec.seed}",
            model_id=resolved.model_id, model_version=version, value_range=(-1.0, 1.0),
            progress=progress, cancel=cancel)
    return SampleResult(np.asarray(images, dtype=np.float32), tuple(classes), resolved.model_id,
                        version, tuple(written), tuple(warnings))


def parse_mix(text: str) -> dict[str, int]:
    """``"NORMAL=234,PNEUMONIA=390"`` -> ``{"NORMAL": 234, "PNEUMONIA": 390}``.

    Raises:
        JobError: not ``NAME=COUNT`` pairs.
    """
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.strip().partition("=")
        if not sep or not name.strip() or not count.strip().isdigit():
            raise JobError(f"a class mix is NAME=COUNT,NAME=COUNT (got {part.strip()!r})")
        out[name.strip()] = int(count)
    return out


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """What the Sample panel shows about a loaded model."""
    pre = model.info.preprocessing
    return {"method": model.info.method, "size": pre.size, "channels": pre.channels,
            "classes": list(pre.class_names) if model.method.uses_labels else [],
            "truncation": truncation_mode(model)}
