"""Translate a series with a model and write what came out: ``medgan translate`` and the
Translate panel.

:func:`run_translate` does, in order:

1. checks the output (format, file name, a writable and empty target) before any work;
2. loads the source (a DICOM series folder/file, a NIfTI/MHA volume, PNG/JPEG slices, or an
   indexed series) and reports every loader warning (geometry resampled, slices left out,
   unreadable files) as a notice;
3. chooses the model: the one asked for, or the best fit among the catalogue's and the
   local runs' translation models (:func:`~medgan_desktop.core.models.fit.best_fit`), and
   says which and why; a model that does not fit the series (modality, MR weighting, body
   part, field of view, orientation, 2D images given to a volume model) is refused with a
   :class:`~medgan_desktop.core.jobs.base.ModelMismatchError` unless ``force``;
4. translates on the source grid (:func:`~medgan_desktop.core.inference.translate.translate`);
5. writes the result atomically: an anonymised synthetic CT/MR DICOM series (never for a
   source without patient geometry), NIfTI with a JSON provenance sidecar, or PNG slices of
   the same size and grey scale as the training CT (provenance in the PNG text chunks);
6. optionally (the GUI) registers a real CT of the same patient from the index onto the MR
   and scores the synthetic CT against it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medgan_desktop import __version__
from medgan_desktop.core.atomic import writable_target
from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer
from medgan_desktop.core.dicom.index import IndexError_, StudyIndex
from medgan_desktop.core.dicom.reader import DicomReadError, read_header_located
from medgan_desktop.core.dicom.series import load_series_from_index
from medgan_desktop.core.dicom.write import (
    GeometryUnknownError,
    provenance_notes,
    read_source_headers,
    write_synthetic_series,
)
from medgan_desktop.core.imaging.intensity import CT_HU_RANGE
from medgan_desktop.core.imaging.masks import ct_body_mask
from medgan_desktop.core.imaging.registration import register_volumes
from medgan_desktop.core.imaging.slices import volume_slab
from medgan_desktop.core.imaging.tasks import MR_DISPLAY_RANGE
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.inference.uncertainty import calibration as uncertainty_calibration
from medgan_desktop.core.inference.uncertainty import describe as describe_uncertainty
from medgan_desktop.core.inference.uncertainty import summary as uncertainty_summary
from medgan_desktop.core.inference.uncertainty import tta_uncertainty
from medgan_desktop.core.io import UnsupportedFileError, open_volume, write_nifti, write_png_slices
from medgan_desktop.core.jobs.base import JobError, ModelMismatchError, warn_all
from medgan_desktop.core.jobs.translation_eval import display_mr
from medgan_desktop.core.metrics.paired import evaluate_pair, scaled_metrics
from medgan_desktop.core.models.fit import (
    Applicability,
    Fit,
    Ranked,
    SeriesTraits,
    assess,
    best_fit,
    orientation_of,
    region_of,
    weighting_of,
)
from medgan_desktop.core.models.refs import Resolved, load_ref, model_ref, resolve_ref, run_ref
from medgan_desktop.core.models.registry import ModelError, ModelRegistry
from medgan_desktop.core.models.runs import WEIGHTS, ModelLoadError, RunInfo, load_run
from medgan_desktop.core.progress import CancelToken, ProgressCallback, Stage, no_progress, notice, stage
from medgan_desktop.core.training.devices import configure_threads, select_device
from medgan_desktop.core.types import JsonObject
from medgan_desktop.core.volume import Volume


class OutputFormat(StrEnum):
    """What :func:`run_translate` writes."""

    NONE = "none"  # nothing (the GUI shows the result; export later)
    DICOM = "dicom"  # an anonymised synthetic CT/MR series, one file per slice
    NIFTI = "nifti"  # one .nii.gz with a .json provenance sidecar
    PNG = "png"  # one 8-bit PNG per slice (2D images in, 2D images out)


@dataclass(frozen=True)
class TranslateSpec:
    """One translation.

    Args:
        source: a DICOM series folder/file, a NIfTI/MHA volume, a PNG/JPEG slice or a
            folder of them; with ``from_index`` a SeriesInstanceUID of the study index.
        from_index: ``source`` is an indexed series (``index_db``).
        index_db: the study index database (also used to find a real CT to compare with).
        model: a model reference (``model:<id>``, ``run:<folder>``, an id, a run folder or
            checkpoint); empty: the best fit for the series.
        out: the output (a folder for DICOM and PNG sets, a file for NIfTI or one PNG).
        format: what to write (:class:`OutputFormat`).
        force: translate even when the model does not fit the series (said in the result).
        tta: average with the left-right flipped prediction.
        batch: slices per network call.
        device: cpu | cuda | mps | auto.
        threads: CPU threads of torch and ITK (0: all cores but one).
        compare_real: register a real CT of the same patient (from the index) and score.
        within_source_study: DICOM written into the source study without anonymisation
            (an explicit choice, for PACS review beside the source).
        uncertainty: also compute the per-voxel uncertainty map
            (:mod:`medgan_desktop.core.inference.uncertainty`, four predictions) and write it
            beside the result (``<name>_uncertainty``: NIfTI, a derived synthetic DICOM
            series, or PNGs with one grey level per unit of standard deviation).
    """

    source: str
    from_index: bool = False
    index_db: str = ""
    model: str = ""
    out: str = ""
    format: OutputFormat = OutputFormat.NONE
    force: bool = False
    tta: bool = False
    batch: int = 8
    device: str = "cpu"
    threads: int = 0
    compare_real: bool = False
    within_source_study: bool = False
    uncertainty: bool = False


@dataclass(frozen=True)
class TranslateResult:
    """What :func:`run_translate` did.

    Args:
        source: the loaded source volume.
        synthetic: the synthetic volume (on the source grid, marked synthetic).
        model: the model's id (or run folder name) and ``model_version`` its version.
        fit: how the model fits the series (``fit.ok`` False when forced).
        choice: why this model (when it was chosen, not given).
        written: the files written.
        warnings: everything the user was told (loader, fit, compatibility).
        seconds: time spent translating.
        real: the registered real CT, when one was compared.
        metrics: scores against it (MAE/PSNR/SSIM; with an uncertainty map also its
            calibration: ``uncertainty_spearman``, ``uncertainty_beyond_2sd``).
        note: what the comparison did, in words.
        uncertainty: the uncertainty map (same grid as ``synthetic``), when asked for.
        uncertainty_summary: its summary inside the body (see
            :func:`~medgan_desktop.core.inference.uncertainty.summary`).
    """

    source: Volume
    synthetic: Volume
    model: str
    model_version: str
    fit: Fit
    choice: str = ""
    written: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    real: Volume | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    uncertainty: Volume | None = None
    uncertainty_summary: JsonObject = field(default_factory=dict)


# -- output checks ----------------------------------------------------------------------------
def check_output(out: str, fmt: OutputFormat) -> Path | None:
    """Refuse an output the writer would reject, before any model is loaded.

    Raises:
        JobError: a wrong suffix, an existing non-empty folder, a missing or read-only parent.
    """
    if fmt == OutputFormat.NONE:
        return None
    if not out:
        raise JobError(f"give the output ({'a .nii.gz file' if fmt == OutputFormat.NIFTI else 'a folder'})")
    p = Path(out).expanduser()
    if fmt == OutputFormat.NIFTI:
        if not p.name.lower().endswith((".nii.gz", ".nii")):
            raise JobError("a NIfTI output must end in .nii.gz (or .nii)")
        if p.is_dir():
            raise JobError(f"{p} is a folder; a NIfTI output is a .nii.gz file")
        if p.exists():
            raise JobError(f"{p} already exists: nothing is overwritten; choose another name")
        if not writable_target(p):
            raise JobError(f"cannot create {p}: its folder is missing or not writable")
        return p
    if fmt == OutputFormat.PNG and p.suffix.lower() == ".png":
        if p.exists():
            raise JobError(f"{p} already exists: nothing is overwritten; choose another name")
        if not writable_target(p):
            raise JobError(f"cannot create {p}: its folder is missing or not writable")
        return p
    if p.exists():
        if not p.is_dir():
            raise JobError(f"{p} is a file; this output is a new (or empty) folder")
        if any(p.iterdir()):
            raise JobError(f"{p} exists and is not empty: choose a new or empty folder")
    elif not writable_target(p):
        raise JobError(f"cannot create the folder {p}: its parent is missing or not writable")
    return p


# -- source -----------------------------------------------------------------------------------
def load_source(spec: TranslateSpec, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> Volume:
    """The source volume of ``spec``.

    Raises:
        JobError: it does not exist, cannot be read, or holds several series.
    """
    stage(progress, Stage.LOAD, "loading the source")
    try:
        if spec.from_index:
            if not spec.index_db:
                raise JobError("an indexed series needs the study index")
            with StudyIndex(Path(spec.index_db)) as index:
                return load_series_from_index(index, spec.source, cancel=cancel)
        p = Path(spec.source).expanduser()
        if not p.exists():
            raise JobError(f"the input {p} does not exist")
        return open_volume(p, cancel=cancel)
    except (UnsupportedFileError, DicomReadError, IndexError_, FileNotFoundError, ValueError) as exc:
        if isinstance(exc, JobError):
            raise
        raise JobError(f"cannot read {spec.source}: {exc}") from exc


# -- model choice -----------------------------------------------------------------------------
def applicability_of(resolved: Resolved, info: RunInfo) -> Applicability:
    """What a model was trained on: its manifest entry, its run.json, else its modality."""
    raw = resolved.entry.raw.get("applicability") if resolved.entry is not None else None
    if not raw:
        raw = info.data.get("applicability")
    if raw:
        return Applicability.from_dict(raw)
    return Applicability(modality=(info.preprocessing.modality_in or "").upper())


def translation_models(paths: AppPaths) -> list[tuple[str, Applicability, str]]:
    """``(reference, applicability, label)`` of every translation model a user can pick:
    the catalogue's (shipped and imported), then the local training runs, newest first."""
    out: list[tuple[str, Applicability, str]] = []
    try:
        entries = ModelRegistry(paths).find(task="translation")
    except ModelError:
        entries = []
    for e in entries:
        try:
            info = load_run(e.folder)
        except ModelLoadError:
            continue
        app = applicability_of(Resolved(e.folder, e), info)
        out.append((model_ref(e.id), app, f"model: {e.label}"))
    runs = paths.runs_dir
    if runs.is_dir():
        for d in sorted(runs.iterdir(), reverse=True):
            if not ((d / "run.json").is_file() and (d / WEIGHTS).is_file()):
                continue
            try:
                info = load_run(d)
            except ModelLoadError:
                continue
            if info.task != "translation":
                continue
            pre = info.preprocessing
            label = f"run: {d.name} ({pre.modality_in or '?'}→{pre.modality_out}, {info.method})"
            out.append((run_ref(d), applicability_of(Resolved(d), info), label))
    return out


def rank_models(volume: Volume, paths: AppPaths) -> Ranked:
    """The translation models available, best fit for ``volume`` first."""
    cands = [(ref, app) for ref, app, _ in translation_models(paths)]
    return best_fit(cands, SeriesTraits.of(volume))


def _choose(spec: TranslateSpec, volume: Volume, paths: AppPaths) -> tuple[str, str]:
    """``(model reference, why it was chosen)``."""
    if spec.model:
        return spec.model, ""
    ranked = rank_models(volume, paths)
    best = ranked.best
    if best is None:
        raise JobError("no translation model is available: train one (medgan translate-train) "
                       "or import one (medgan models import)")
    return best.model, ranked.why()


# -- writing ----------------------------------------------------------------------------------
def provenance(result_volume: Volume, model: str, version: str, method: str,
               fit: Fit) -> JsonObject:
    """What a NIfTI sidecar and PNG text chunks record (no identity, no paths)."""
    return {
        "SyntheticData": "YES",
        "modality": result_volume.modality,
        "description": f"SYNTHETIC {result_volume.modality} by {model} {version}; not for diagnosis",
        "model": model,
        "model_version": version,
        "method": method,
        "software": f"medgan_desktop {__version__}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_modality": str(result_volume.meta.get("source_modality", "")),
        "source_geometry": "known" if result_volume.geometry_known else "none (2D images)",
        "units": result_volume.units,
        "model_fits_source": fit.ok,
        "fit": fit.sentence(),
        "notes": list(provenance_notes(result_volume.warnings)),
        "intended_use": "research and review only, not for diagnosis",
    }


def to_grey(volume: Volume) -> NDArray[np.uint8]:
    """A synthetic image as 8-bit grey levels: a CT's HU as the grey levels of a windowed
    training CT, an MR's display scale 0..1000 as 0..255.

    For CT the inverse of the mapping 2D training images go through (grey 0..255 ->
    [-1024, 3000] HU, :func:`~medgan_desktop.core.training.pairs.grey_to_hu`), so a model
    trained on 8-bit PNG CT writes PNGs on the same grey scale.
    """
    lo, hi = CT_HU_RANGE if volume.modality == "CT" else MR_DISPLAY_RANGE
    a = (np.asarray(volume.array, dtype=np.float64) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _png_names(source: Volume, n: int) -> list[str]:
    files = [Path(f) for f in source.source.files]
    if len(files) == n and all(f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
                               for f in files):
        names = [f.with_suffix(".png").name for f in files]
        if len(set(names)) == n:
            return names
    return [f"slice_{k + 1:04d}.png" for k in range(n)]


def write_result(spec: TranslateSpec, source: Volume, synthetic: Volume, model: str, version: str,
                 method: str, fit: Fit, progress: ProgressCallback = no_progress,
                 cancel: CancelToken | None = None, label: str = "",
                 anonymizer: Anonymizer | None = None) -> list[Path]:
    """Write ``synthetic`` as ``spec`` asks (see :class:`OutputFormat`); ``label`` names a map
    derived from it (the uncertainty) in descriptions.

    Raises:
        JobError: the output cannot hold this result (a CT series from 2D images).
        WriteError: the write failed; nothing partial is left.
    """
    fmt = OutputFormat(spec.format)
    if fmt == OutputFormat.NONE:
        return []
    out = Path(spec.out).expanduser()
    stage(progress, Stage.WRITE, f"writing {fmt.value.upper()} to {out}")
    prov = provenance(synthetic, model, version, method, fit)
    if label:
        prov["description"] = f"{label} of a SYNTHETIC {synthetic.modality} by {model} {version}; not for diagnosis"
        prov["map"] = synthetic.meta.get("method", label)
    if fmt == OutputFormat.NIFTI:
        try:
            return write_nifti(synthetic, out, prov)
        except UnsupportedFileError as exc:
            raise JobError(str(exc)) from exc
    if fmt == OutputFormat.PNG:
        if synthetic.modality not in ("CT", "MR"):
            raise JobError(f"PNG output is written for a synthetic CT or MR, not {synthetic.modality}")
        grey = (np.clip(np.rint(np.asarray(synthetic.array)), 0, 255).astype(np.uint8) if label
                else to_grey(synthetic))  # a map: one grey level per unit of standard deviation
        text = {"Description": prov["description"], "Software": prov["software"],
                "SyntheticData": "YES", "Comment": prov["fit"]}
        try:
            return write_png_slices(list(grey), out, _png_names(source, grey.shape[0]),
                                    text=text)
        except FileExistsError as exc:
            raise JobError(str(exc)) from exc
    try:
        return write_synthetic_series(
            synthetic, out,
            source_datasets=read_source_headers(source.source.files),
            model_id=model, model_version=version,
            within_source_study=spec.within_source_study,
            anonymize=AnonymizeOptions(), anonymizer=anonymizer, progress=progress, cancel=cancel, label=label,
            series_number=(2000 + (source.source.series_number or 0)) if label else None,
        )
    except GeometryUnknownError as exc:
        raise JobError(str(exc)) from exc
    except FileExistsError as exc:
        raise JobError(str(exc)) from exc


# -- comparison with a real CT ------------------------------------------------------------------
def find_real_ct(index: StudyIndex, volume: Volume, modality: str = "CT") -> str | None:
    """A real ``modality`` series of the same patient (same study preferred) in the index."""
    pid = volume.source.patient_id
    study = volume.source.study_instance_uid
    if not pid and not study:
        return None
    cands = [
        r for r in index.all_series()
        if str(r.modality).upper() == modality and not r.synthetic
        and r.series_uid != volume.source.series_instance_uid
        and ((pid and r.patient_id == pid) or (study and r.study_uid == study))
    ]
    if not cands:
        return None
    cands.sort(key=lambda r: (r.study_uid != study, -int(r.instance_count or 0)))
    return str(cands[0].series_uid)


def compare_with_real(volume: Volume, synthetic: Volume, index_db: str,
                      progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
                      ) -> tuple[Volume | None, dict[str, float], str]:
    """Register a real image of the target modality of the patient onto the source and score
    the synthetic image against it (MR -> CT: a real CT; CT -> MR: a real MR on the display
    scale). Tasks within one modality (denoising, super-resolution, MR contrast) have no
    other real series to compare with here: their held-out scores are in the run."""
    target = synthetic.modality.upper()
    if target == volume.modality.upper():
        return None, {}, (f"A {target} -> {target} result has no other real series to compare with here; "
                          "the model's held-out scores are in its run folder and card.")
    if not index_db:
        return None, {}, "No study index: nothing to compare with."
    with StudyIndex(Path(index_db)) as index:
        uid = find_real_ct(index, volume, target)
        if uid is None:
            return None, {}, f"No {target} of this patient in the index: nothing to compare with."
        stage(progress, Stage.EVALUATE, f"registering the real {target} onto the {volume.modality}")
        real = load_series_from_index(index, uid, cancel=cancel)
    reg = register_volumes(volume, real, try_orientations=True, iterations=60, max_size=96,
                           cancel=cancel)
    mask = ct_body_mask(reg.resampled) if target == "CT" else ct_body_mask(volume) & (
        np.asarray(reg.resampled.array) > float(np.min(reg.resampled.array)))
    ks = [int(k) for k in range(mask.shape[0]) if mask[k].any()]
    if not ks:
        return reg.resampled, {}, (f"Real {target} found but it does not overlap the "
                                   f"{volume.modality} after registration.")
    k0, k1 = ks[0], ks[-1] + 1  # score only the slices the real image covers
    if target == "CT":
        rep = evaluate_pair(volume_slab(synthetic, range(k0, k1)),
                            volume_slab(reg.resampled, range(k0, k1)), mask=mask[k0:k1],
                            cancel=cancel)
        metrics = {"MAE (HU)": rep.mae, "PSNR (dB)": rep.psnr, "SSIM": rep.ssim}
    else:
        real_display = display_mr(volume_slab(reg.resampled, range(k0, k1)))
        m = scaled_metrics(volume_slab(synthetic, range(k0, k1)).array, real_display.array, mask[k0:k1],
                           MR_DISPLAY_RANGE)
        metrics = {"MAE (MR display units)": m["mae"], "PSNR (dB)": m["psnr"], "SSIM": m["ssim"]}
    return reg.resampled, metrics, (
        f"Compared with {target} series {uid} (rigid registration, MI {reg.quality.final_mi:.3f}).")


# -- the job ------------------------------------------------------------------------------------
def run_translate(spec: TranslateSpec, paths: AppPaths | None = None,
                  progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> TranslateResult:
    """Load, choose and check the model, translate, write (see the module docs).

    Raises:
        JobError: bad settings, an unreadable input, a model that cannot be loaded.
        ModelMismatchError: the model does not fit the series and ``force`` is off.
        WriteError: the output could not be written (nothing partial is left).
        Cancelled: cancelled between slices.
    """
    paths = paths or AppPaths.default()
    if spec.batch < 1:
        raise JobError(f"the batch must be at least 1 (got {spec.batch})")
    if spec.threads < 0:
        raise JobError(f"threads must be 0 or more (got {spec.threads})")
    fmt = OutputFormat(spec.format)
    check_output(spec.out, fmt)
    if spec.uncertainty and fmt != OutputFormat.NONE:
        check_output(str(uncertainty_path(Path(spec.out), fmt)), fmt)
    try:
        device = select_device("cuda" if spec.device.lower() == "gpu" else spec.device)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    if device.type == "cpu":
        configure_threads(spec.threads)
    volume = load_source(spec, progress, cancel)
    warnings = list(warn_all(progress, volume.warnings, "input: "))
    ref, why = _choose(spec, volume, paths)
    if why:
        notice(progress, f"model: {why}")
    stage(progress, Stage.LOAD, "checking and loading the model")
    try:
        described = load_run(resolve_ref(ref, paths, verify=False).folder)
    except (ModelError, ModelLoadError) as exc:
        raise JobError(f"cannot use the model {ref!r}: {exc}") from exc
    if described.task != "translation":
        raise JobError(f"{ref} is a {described.task} model ({described.method}), not a translation "
                       "model; list the translation models with `medgan models list`")
    try:
        model, resolved = load_ref(ref, paths, device)
    except (ModelError, ModelLoadError) as exc:
        raise JobError(f"cannot use the model {ref!r}: {exc}") from exc
    fit = assess(resolved.model_id, applicability_of(resolved, model.info), SeriesTraits.of(volume))
    if not fit.ok:
        if not spec.force:
            raise ModelMismatchError(fit.sentence() + " Choose a model that fits, or force it.")
        warnings += warn_all(progress, [fit.sentence() + " Translated anyway (forced)."])
    version = resolved.version(model.info)
    t0 = time.perf_counter()
    try:
        syn = translate(volume, model, progress=progress, cancel=cancel, batch_size=spec.batch,
                        tta_flip=spec.tta, device=device)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    seconds = time.perf_counter() - t0
    syn = replace(syn, meta={**syn.meta, "model_id": resolved.model_id, "model_version": version,
                             "model_fits": fit.ok})
    warnings += warn_all(progress, [w for w in syn.warnings if w not in volume.warnings])
    unc: Volume | None = None
    unc_summary: JsonObject = {}
    if spec.uncertainty:
        stage(progress, Stage.EVALUATE, "computing the uncertainty map (four predictions)")
        unc = tta_uncertainty(volume, model, device=device, batch_size=spec.batch, progress=progress,
                              cancel=cancel)
        unc = replace(unc, meta={**unc.meta, "model_id": resolved.model_id, "model_version": version})
        unc_summary = uncertainty_summary(unc, syn)
        stage(progress, Stage.EVALUATE, describe_uncertainty(unc_summary))
    # one anonymiser for both series, so the map lands in the same anonymised study
    shared = Anonymizer(AnonymizeOptions()) if unc is not None and fmt == OutputFormat.DICOM else None
    out_folder_existed = Path(spec.out).expanduser().exists()
    written = write_result(spec, volume, syn, resolved.model_id, version, model.info.method,
                           fit, progress, cancel, anonymizer=shared)
    if unc is not None and fmt != OutputFormat.NONE:
        try:
            written += write_result(replace(spec, out=str(uncertainty_path(Path(spec.out), fmt))), volume, unc,
                                    resolved.model_id, version, model.info.method, fit, progress, cancel,
                                    label="UNCERTAINTY SD", anonymizer=shared)
        except BaseException:
            # the result and its map go together, or neither
            folder = Path(spec.out).expanduser() if fmt in (OutputFormat.DICOM, OutputFormat.PNG) else None
            remove_written(written, None if out_folder_existed else folder)
            raise
    real: Volume | None = None
    metrics: dict[str, float] = {}
    note = ""
    if spec.compare_real:
        real, metrics, note = compare_with_real(volume, syn, spec.index_db, progress, cancel)
        if real is not None and unc is not None and real.shape == syn.shape:
            cal = uncertainty_calibration(unc, syn, real)
            metrics["uncertainty_spearman"] = float(cal["spearman"])
            metrics["uncertainty_beyond_2sd"] = float(cal["share_beyond_2sd"])
    return TranslateResult(
        source=volume, synthetic=syn, model=resolved.model_id, model_version=version, fit=fit,
        choice=why, written=tuple(written), warnings=tuple(dict.fromkeys(warnings)),
        seconds=seconds, real=real, metrics=metrics, note=note, uncertainty=unc,
        uncertainty_summary=unc_summary,
    )


def uncertainty_sentence(summary: JsonObject) -> str:
    """The uncertainty summary in one sentence (panel and CLI)."""
    return describe_uncertainty(summary)


def uncertainty_path(out: Path, fmt: OutputFormat) -> Path:
    """Where the uncertainty map of an output at ``out`` goes: ``<name>_uncertainty`` beside it
    (same suffix for a file)."""
    name = out.name
    for suffix in (".nii.gz", ".nii", ".png"):
        if fmt != OutputFormat.DICOM and name.lower().endswith(suffix):
            return out.with_name(name[: -len(suffix)] + "_uncertainty" + name[-len(suffix):])
    return out.with_name(name + "_uncertainty")


def remove_written(paths: Sequence[Path], created_folder: Path | None = None) -> None:
    """Remove files this job wrote, and ``created_folder`` (a folder it created) when that is
    then empty; nothing that was there before is touched."""
    for p in paths:
        p.unlink(missing_ok=True)
    if created_folder is not None:
        for d in sorted((p.parent for p in paths if created_folder in p.parents), key=lambda d: -len(d.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            created_folder.rmdir()


def fit_for(volume: Volume, ref: str, paths: AppPaths | None = None) -> Fit | None:
    """How the model ``ref`` fits ``volume`` (None when it cannot be read), for the GUI's
    warning bar before a run."""
    paths = paths or AppPaths.default()
    try:
        resolved = resolve_ref(ref, paths, verify=False)
        info = load_run(resolved.folder)
    except (ModelError, ModelLoadError):
        return None
    return assess(resolved.model_id, applicability_of(resolved, info), SeriesTraits.of(volume))


def series_traits(index: StudyIndex, uid: str) -> SeriesTraits | None:
    """What an indexed series is, from its first header (no pixels are read), or None."""
    rec = index.series(uid)
    files = index.series_files(uid)
    if rec is None or not files:
        return None
    try:
        h, tags, _loc = read_header_located(files[0])
    except DicomReadError:
        return None
    names = " ".join(x for x in (h.series_description, h.protocol_name, h.sequence) if x)
    spacing = None
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        value = tags.get(kw)
        try:
            spacing = (float(value[0]), float(value[1])) if value else None
        except (TypeError, ValueError, IndexError):
            spacing = None
        if spacing:
            break
    known = h.image_position is not None and h.image_orientation is not None
    orientation = ""
    if h.image_orientation is not None:
        r = np.asarray(h.image_orientation[:3], dtype=np.float64)
        c = np.asarray(h.image_orientation[3:], dtype=np.float64)
        orientation = orientation_of(np.stack([r, c, np.cross(r, c)], axis=1))
    fov = max(h.rows * spacing[0], h.columns * spacing[1]) if spacing and known else None
    mod = (rec.modality or h.modality).upper()
    return SeriesTraits(
        modality=mod,
        weighting=weighting_of(names, h.echo_time, h.repetition_time, h.inversion_time)
        if mod == "MR" else "",
        region=region_of(h.body_part) or region_of(names) or region_of(h.study_description),
        fov_mm=fov,
        spacing_mm=min(spacing) if spacing and known else None,
        orientation=orientation,
        geometry_known=known,
        description=names,
    )


def fits_for_series(index: StudyIndex, uid: str, paths: AppPaths | None = None) -> Ranked | None:
    """The translation models ranked for an indexed series (the Translate panel's default)."""
    traits = series_traits(index, uid)
    if traits is None:
        return None
    cands = [(ref, app) for ref, app, _ in translation_models(paths or AppPaths.default())]
    return best_fit(cands, traits)
