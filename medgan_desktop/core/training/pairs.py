"""MR/CT pairs for translation training: reading, registering, splitting by patient.

* A pair is an MR and a CT of one patient on the MR's grid (:class:`PairedVolume`): series
  or volume files (:func:`load_pair`, rigid/affine 3D registration on request), 2D image
  slices registered one by one (:func:`load_image_pair`), or the MR and CT series of each
  patient in the study index (:func:`index_pairs`).
* Splits are by patient (:func:`patient_split`) or, for a single volume, by
  contiguous slab with a gap of the 2.5D context (:func:`slab_split`), never by
  random slices: neighbouring slices are nearly identical and would leak.
* The datasets built from pairs are in :mod:`medgan_desktop.core.training.slice_data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE
from medgan_desktop.core.imaging.registration import register_2d, register_volumes
from medgan_desktop.core.imaging.resample import resample_to_reference
from medgan_desktop.core.imaging.tasks import DEFAULT_TASK, TranslationTask, degraded_source, get_task
from medgan_desktop.core.io import IMAGE_SUFFIXES, guess_modality, natural_key, open_volume, read_image_file
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import JsonObject
from medgan_desktop.core.volume import Volume

if TYPE_CHECKING:
    from medgan_desktop.core.dicom.index import SeriesRecord, StudyIndex


class PairedDataError(ValueError):
    """The MR/CT data cannot be used for translation training."""


# -- geometry of one slice <-> the network square -------------------------------------------
# -- splits -----------------------------------------------------------------------------------
def slab_split(
    n_slices: int, test_fraction: float = 0.2, gap: int = 1, at_end: bool = True
) -> tuple[list[int], list[int]]:
    """Split one volume's slices into a training part and a contiguous held-out slab.

    Args:
        n_slices: slices in the volume.
        test_fraction: fraction of slices in the held-out slab.
        gap: slices left out between the two parts (use ``context_slices + 1`` for 2.5D
            so no training input sees a held-out slice).
        at_end: held-out slab at the high end of the volume (else at the start).

    Returns:
        ``(train_indices, test_indices)``.
    """
    n_test = max(1, round(n_slices * test_fraction))
    if n_test + gap >= n_slices:
        raise PairedDataError(
            f"{n_slices} slices are too few for a held-out slab of {n_test} and a gap of {gap}"
        )
    if at_end:
        test = list(range(n_slices - n_test, n_slices))
        train = list(range(0, n_slices - n_test - gap))
    else:
        test = list(range(0, n_test))
        train = list(range(n_test + gap, n_slices))
    return train, test


def patient_split(
    patients: Sequence[str], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split patient ids (never slices) into train/test, reproducibly for ``seed``."""
    uniq = sorted(set(patients))
    if len(uniq) < 2:
        raise PairedDataError(
            "a patient split needs at least two patients; use slab_split for one volume"
        )
    rng = np.random.default_rng(seed)
    order = [uniq[i] for i in rng.permutation(len(uniq))]
    n_test = min(len(uniq) - 1, max(1, round(len(uniq) * test_fraction)))
    return sorted(order[n_test:]), sorted(order[:n_test])


# -- volumes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedVolume:
    """An MR and a CT of one patient on the same grid.

    Args:
        source: the MR (scanner units).
        target: the CT in HU, resampled onto the MR grid.
        patient: patient key used for splits.
        slices: slice indices (along k) that may be used; None for all.
        registration: registration quality (dict) when the CT was registered here.
    """

    source: Volume
    target: Volume
    patient: str = ""
    slices: tuple[int, ...] | None = None
    registration: JsonObject | None = None

    def __post_init__(self) -> None:
        if self.source.shape != self.target.shape:
            raise PairedDataError(
                f"MR {self.source.shape} and CT {self.target.shape} are not on the same grid: register first"
            )


def patient_name(path: Path | str) -> str:
    """A patient key from a file or folder name when no PatientID is known.

    ``pat01_mr.nii.gz`` -> ``pat01_mr``; a folder named after a modality or sequence
    (``Patient_01/T2``) is named after its parent (``Patient_01``).
    """
    p = Path(path)
    name = p.name
    for suffix in (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    if p.is_dir() and name.upper() in _SEQUENCE_FOLDERS and p.parent.name:
        return p.parent.name
    if p.is_file():
        if p.parent.name.upper() in _SEQUENCE_FOLDERS and p.parent.parent.name:
            return p.parent.parent.name
        return p.stem
    return name


_SEQUENCE_FOLDERS = frozenset(
    {"MR", "MRI", "CT", "T1", "T2", "T1W", "T2W", "T1C", "FLAIR", "PD", "DICOM", "IMAGES", "PNG"}
)


def pair_volumes(
    mr: Volume,
    ct: Volume,
    *,
    register: bool = False,
    affine: bool = False,
    patient: str = "",
    try_orientations: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    task: TranslationTask | None = None,
) -> PairedVolume:
    """Bring the target (``ct``) onto the source (``mr``) grid (registering it first with
    ``register``). The names are those of the default task, MR -> CT; ``task`` gives the
    modalities of others (CT -> MR: ``mr`` is the CT source, ``ct`` the MR target).

    Args:
        mr: the source (MR for MR -> CT; scanner units, HU for CT).
        ct: the target of the same patient (the CT in HU for MR -> CT).
        register: register CT to MR (rigid, Mattes MI) first; otherwise the CT must
            already share the MR's frame of reference (it is only resampled).
        affine: with ``register``, an affine stage after the rigid one (kept when it
            raises the MI).
        patient: patient key for splits (default: the MR's PatientID).
        try_orientations: with ``register``, try flipped starting orientations.
        progress: registration progress.
        cancel: cancel token checked during registration.
        task: the task (default MR -> CT).
    """
    task = task or get_task(DEFAULT_TASK)
    mr = _as_modality(mr, task.source_modality)
    ct = _as_modality(ct, task.target_modality)
    if mr.modality.upper() != task.source_modality:
        raise PairedDataError(f"the source is {mr.modality}, not {task.source_modality} ({task.title})")
    if ct.modality.upper() != task.target_modality:
        raise PairedDataError(f"the target is {ct.modality}, not {task.target_modality} ({task.title})")
    quality: JsonObject | None = None
    if register:
        res = register_volumes(
            mr,
            ct,
            affine=affine,
            try_orientations=try_orientations,
            progress=progress,
            cancel=cancel,
        )
        ct, quality = res.resampled, res.quality.to_dict()
    else:  # a no-op when the target already lies on the source grid
        fill = CT_HU_RANGE[0] if task.target_modality == "CT" else float(np.min(ct.array))
        ct = resample_to_reference(ct, mr, default_value=fill)
    key = patient or mr.source.patient_id or ""
    return PairedVolume(mr, ct, key, None, quality)


def _as_modality(v: Volume, modality: str) -> Volume:
    """A volume of unknown modality (files without a header) taken as ``modality``."""
    if v.modality not in ("", "OT"):
        return v
    return replace(v, modality=modality, units="HU" if modality == "CT" else v.units)


def degraded_pair(target: Volume, task: TranslationTask, patient: str = "", seed: int = 0) -> PairedVolume:
    """A self-supervised pair: the real ``target`` and its degraded copy as the source."""
    target = _as_modality(target, task.target_modality)
    if target.modality.upper() != task.target_modality:
        raise PairedDataError(f"{task.title} learns from {task.target_modality}, not {target.modality}")
    try:
        source = degraded_source(target, task, seed)
    except ValueError as exc:
        raise PairedDataError(str(exc)) from exc
    return PairedVolume(source, target, patient or target.source.patient_id or "")


def load_degraded(path: Path, task: TranslationTask, patient: str = "", seed: int = 0) -> PairedVolume:
    """Read a real image (series folder or volume file) and pair it with its degraded copy."""
    pair = degraded_pair(open_volume(path), task, patient, seed)
    return pair if pair.patient else replace(pair, patient=patient_name(path))


def load_pair(
    mr_path: Path,
    ct_path: Path,
    register: bool = False,
    patient: str = "",
    try_orientations: bool = True,
    *,
    affine: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    task: TranslationTask | None = None,
) -> PairedVolume:
    """Read an MR and a CT and bring the CT onto the MR grid (see :func:`pair_volumes`).

    Args:
        mr_path: MR series folder or volume file.
        ct_path: CT series folder or volume file (HU).
        register: register CT to MR (rigid, Mattes MI) first.
        patient: patient key for splits (default: the MR's PatientID, else
            :func:`patient_name` of ``mr_path``).
        try_orientations: with ``register``, try flipped starting orientations.
        affine: with ``register``, an affine stage after the rigid one.
        progress: registration progress.
        cancel: cancel token.
    """
    pair = pair_volumes(open_volume(mr_path), open_volume(ct_path), register=register, affine=affine, patient=patient,
                        try_orientations=try_orientations, progress=progress, cancel=cancel, task=task)
    if pair.patient:
        return pair
    return replace(pair, patient=patient_name(mr_path))


# -- 2D image pairs -----------------------------------------------------------------------------
def is_image_source(path: Path | str) -> bool:
    """True for a PNG/JPEG/BMP/TIFF file or a folder holding only such images (a 2D pair)."""
    p = Path(path)
    if p.is_file():
        return p.name.lower().endswith(IMAGE_SUFFIXES)
    if not p.is_dir():
        return False
    files = [f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")]
    return bool(files) and all(f.name.lower().endswith(IMAGE_SUFFIXES) for f in files)


def _image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(files, key=natural_key)


def _match_images(mr: list[Path], ct: list[Path]) -> list[tuple[Path, Path]]:
    """MR and CT images paired by file name, else (same count) by natural order."""
    ct_by_name = {f.name: f for f in ct}
    by_name = [(m, ct_by_name[m.name]) for m in mr if m.name in ct_by_name]
    if by_name and (len(by_name) == len(mr) or len(mr) != len(ct)):
        return by_name
    if len(mr) == len(ct):
        return list(zip(mr, ct, strict=True))
    raise PairedDataError(
        f"{len(mr)} MR and {len(ct)} CT images and no common file names: cannot match the slices"
    )


def _resize2d(img: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.float32]:
    if img.shape == shape:
        return img
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    antialias = shape[0] < img.shape[0] or shape[1] < img.shape[1]
    out = F.interpolate(t, size=shape, mode="bilinear", antialias=antialias, align_corners=False)
    return np.asarray(out[0, 0].numpy(), dtype=np.float32)


def _scaled_shape(shape: tuple[int, ...], longest: int) -> tuple[int, int]:
    h, w = int(shape[0]), int(shape[1])
    f = longest / float(max(h, w))
    return max(1, round(h * f)), max(1, round(w * f))


def grey_to_hu(img: NDArray[np.float32]) -> tuple[NDArray[np.float32], str]:
    """A CT image's grey levels in HU, and how they were mapped.

    8-bit images (values within 0..255) are already windowed: their grey levels are
    mapped linearly onto the SynthRAD range [-1024, 3000] HU. Wider ranges are taken as HU.
    """
    lo, hi = CT_HU_RANGE
    if float(img.min()) >= 0.0 and float(img.max()) <= 255.0:
        return (img / 255.0 * (hi - lo) + lo).astype(
            np.float32
        ), f"grey 0..255 -> [{lo:g}, {hi:g}] HU"
    return img.astype(np.float32, copy=False), "values taken as HU"


def slice_qc(per_slice: list[JsonObject], min_ratio: float) -> list[bool]:
    """Which registered slices pass the quality control (marks each entry ``"kept"``).

    A slice passes when its final mutual information is at least ``min_ratio`` times the
    median final MI of the pair's slices and the registration did not lower it below the
    starting alignment's. ``min_ratio`` 0 keeps every slice.
    """
    final = np.array([float(q["final_mi"]) for q in per_slice], dtype=np.float64)
    median = float(np.median(final)) if len(final) else 0.0
    keep = []
    for q, f in zip(per_slice, final, strict=True):
        ok = min_ratio <= 0.0 or (f >= min_ratio * median and f >= float(q["initial_mi"]) - 1e-6)
        q["kept"] = bool(ok)
        keep.append(bool(ok))
    return keep


def load_image_pair(mr_path: Path, ct_path: Path, *, register: bool = True, affine: bool = False, max_side: int = 256,
                    patient: str = "", progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None, task: TranslationTask | None = None,
                    qc_ratio: float = 0.0) -> PairedVolume:
    """2D MR/CT image pairs (PNG/JPEG, one file or a folder of slices) as a paired volume.

    The slices are matched by file name (else by order). The MR slices are scaled so the
    longer side is at most ``max_side``, each CT slice to the same longer side, and, with
    ``register``, aligned to its MR slice in 2D (:func:`~medgan_desktop.core.imaging.
    registration.register_2d`: similarity, then affine with ``affine``) since 2D pairs
    often differ in field of view, scale and position. Without ``register`` the CT slice
    is only resized onto the MR slice. CT grey levels are mapped to HU by :func:`grey_to_hu`.

    With ``register`` and ``qc_ratio`` > 0 the slices that register poorly (see
    :func:`slice_qc`) are left out of the pair's usable ``slices`` (training and held-out
    scoring alike); every slice's values and verdict stay in ``registration["per_slice"]``.

    Returns:
        The pair; ``registration`` holds the mean initial/final MI and the per-slice values.
    """
    mr_path, ct_path = Path(mr_path), Path(ct_path)
    task = task or get_task(DEFAULT_TASK)
    src_mod, tgt_mod = task.source_modality, task.target_modality
    if src_mod != tgt_mod and guess_modality(mr_path.name) == tgt_mod and guess_modality(ct_path.name) == src_mod:
        raise PairedDataError(
            f"{mr_path.name} looks like the {tgt_mod} and {ct_path.name} like the {src_mod}: swap them"
        )
    pairs = _match_images(_image_files(mr_path), _image_files(ct_path))
    if not pairs:
        raise PairedDataError(f"no images in {mr_path} and {ct_path}")
    mr_slices: list[NDArray[np.float32]] = []
    ct_slices: list[NDArray[np.float32]] = []
    per_slice: list[JsonObject] = []
    mapping = ""
    shape: tuple[int, int] | None = None
    for n, (mf, cf) in enumerate(pairs):
        if cancel is not None:
            cancel.check()
        progress(
            Progress(
                n,
                len(pairs),
                f"{'registering' if register else 'reading'} image {n + 1}/{len(pairs)}",
            )
        )
        mr = read_image_file(mf)
        if src_mod == "CT":
            mr, _ = grey_to_hu(mr)
        if shape is None:
            shape = _scaled_shape(mr.shape, min(max_side, max(mr.shape)))
        mr = _resize2d(mr, shape)
        ct = read_image_file(cf)
        if register:
            # Registered on non-negative grey levels: the centre-of-mass start needs
            # background ~0 (it would be pulled off by -1024 HU air), MI ignores the scaling.
            floor = float(ct.min())
            ct = _resize2d(ct - floor, _scaled_shape(ct.shape, max(shape)))
            try:
                ct, q = register_2d(mr - float(mr.min()), ct, affine=affine, fill=0.0)
            except RuntimeError as exc:
                raise PairedDataError(
                    f"2D registration of {mf.name} and {cf.name} failed "
                    f"({str(exc).strip().splitlines()[-1]})"
                ) from exc
            ct = ct + floor
            per_slice.append(
                {
                    "file": mf.name,
                    "initial_mi": q.initial_mi,
                    "final_mi": q.final_mi,
                    "stages": list(q.stages),
                }
            )
        else:
            ct = _resize2d(ct, shape)
        if tgt_mod == "CT":
            ct, mapping = grey_to_hu(ct)
            ct = np.clip(ct, CT_HU_RANGE[0], CT_HU_RANGE[1])
        else:
            mapping = "grey levels as read"
        mr_slices.append(mr)
        ct_slices.append(ct.astype(np.float32))
    progress(Progress(len(pairs), len(pairs), "images ready"))
    quality: JsonObject | None = None
    if per_slice:
        stages = sorted(
            {s for q in per_slice for s in q["stages"]}, key=("similarity", "affine").index
        )
        quality = {
            "initial_mi": float(np.mean([q["initial_mi"] for q in per_slice])),
            "final_mi": float(np.mean([q["final_mi"] for q in per_slice])),
            "stages": stages,
            "kind": "2d per slice",
            "slices": len(per_slice),
            "per_slice": per_slice,
        }
        quality["improvement"] = quality["final_mi"] - quality["initial_mi"]
        keep = slice_qc(per_slice, qc_ratio)
        quality["qc_ratio"] = qc_ratio
        quality["kept"] = sum(keep)
        quality["excluded"] = [q["file"] for q in per_slice if not q["kept"]]
        if not any(keep):
            raise PairedDataError(f"no slice of {mr_path.name} passed the registration quality control "
                                  f"(final MI at least {qc_ratio:g} x the median)")
    desc = f"{mr_path.name} ({len(pairs)} images)"
    mr_vol = Volume(
        np.stack(mr_slices),
        modality=src_mod,
        units="HU" if src_mod == "CT" else "scanner",
        description=desc,
        warnings=("PNG/JPEG images carry no patient geometry: spacing, position and "
                  "orientation are unknown (1 mm placeholders)",),
        geometry_known=False,
    )
    ct_vol = Volume(
        np.stack(ct_slices),
        modality=tgt_mod,
        units="HU" if tgt_mod == "CT" else "scanner",
        description=f"{ct_path.name} ({mapping})",
        meta={"grey_to_hu": mapping},
        geometry_known=False,
    )
    kept: tuple[int, ...] | None = None
    if quality is not None and quality["excluded"]:
        kept = tuple(k for k, q in enumerate(per_slice) if q["kept"])
    return PairedVolume(mr_vol, ct_vol, patient or patient_name(mr_path), kept, quality)


def index_pairs(index: StudyIndex) -> list[tuple[str, str, str]]:
    """``(patient_id, mr_series_uid, ct_series_uid)`` for every patient holding both in the index.

    The MR and CT of the same study are preferred; otherwise any of the patient's. Synthetic
    series (generated images re-imported) are never taken as training data.
    """
    by_patient: dict[str, dict[str, list[SeriesRecord]]] = {}
    for rec in index.all_series():
        if getattr(rec, "synthetic", False):
            continue
        mod = str(rec.modality).upper()
        if mod in ("MR", "CT"):
            by_patient.setdefault(rec.patient_id or rec.study_uid, {}).setdefault(mod, []).append(
                rec
            )
    out: list[tuple[str, str, str]] = []
    for pid, mods in sorted(by_patient.items()):
        if "MR" not in mods or "CT" not in mods:
            continue
        for mr in mods["MR"]:
            same = [c for c in mods["CT"] if c.study_uid == mr.study_uid]
            ct = max(same or mods["CT"], key=lambda r: r.instance_count)
            out.append((pid, mr.series_uid, ct.series_uid))
    return out

