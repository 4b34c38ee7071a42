"""MR/CT slice datasets for translation training (paired and unpaired).

Both follow the training loop's dataset protocol (see
:mod:`medgan_desktop.core.training.data`): items are dicts with ``"source"``
``(2c+1, S, S)`` (2.5D: ``c`` neighbouring slices each side as channels),
``"target"`` ``(1, S, S)`` and ``"mask"`` ``(1, S, S)`` (the body mask), all
float32, images in [-1, 1]; the loop turns them into
``Batch(source=, target=, mask=)``.

* CT is clipped to [-1024, 3000] HU (SynthRAD) and mapped linearly to [-1, 1].
* MR is normalised per volume between its 0.5 and 99.5 percentiles, the same
  rule :func:`medgan_desktop.core.inference.translate.translate` applies.
* Slices are padded to a centred square (with the window floor) and resized;
  inference inverts exactly this mapping (:func:`fit_square` / :func:`unfit_square`).
* Splits are by patient (:func:`patient_split`) or, for a single volume, by
  contiguous slab with a gap of the 2.5D context (:func:`slab_split`), never by
  random slices: neighbouring slices are nearly identical and would leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE, IntensityWindow
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.training.run import Preprocessing
from medgan_desktop.core.volume import Volume


class PairedDataError(ValueError):
    """The MR/CT data cannot be used for translation training."""


# -- geometry of one slice <-> the network square -------------------------------------------
def fit_square(img: torch.Tensor, size: int, pad_value: float = -1.0) -> torch.Tensor:
    """Pad ``(..., H, W)`` to a centred square with ``pad_value`` and resize to ``size``."""
    h, w = img.shape[-2:]
    s = max(h, w)
    if h != w:
        top, left = (s - h) // 2, (s - w) // 2
        img = F.pad(img, (left, s - w - left, top, s - h - top), value=pad_value)
    if s != size:
        x = img.reshape(-1, 1, s, s) if img.ndim != 4 else img
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=s > size, align_corners=False
        )
        img = x.reshape(*img.shape[:-2], size, size)
    return img


def unfit_square(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`fit_square`: resize ``(B, C, S, S)`` back and crop to ``height x width``."""
    s = max(height, width)
    if img.shape[-1] != s:
        img = F.interpolate(
            img, size=(s, s), mode="bilinear", antialias=img.shape[-1] > s, align_corners=False
        )
    top, left = (s - height) // 2, (s - width) // 2
    return img[..., top : top + height, left : left + width]


def context_indices(k: int, n: int, context: int) -> list[int]:
    """Slice indices ``k - c .. k + c`` clamped to ``[0, n)`` (edge slices repeat)."""
    return [min(max(k + d, 0), n - 1) for d in range(-context, context + 1)]


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
    n_test = max(1, int(round(n_slices * test_fraction)))
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
    n_test = min(len(uniq) - 1, max(1, int(round(len(uniq) * test_fraction))))
    return sorted(order[n_test:]), sorted(order[:n_test])


# -- volumes ------------------------------------------------------------------------------------
def ct_body_mask(ct: Volume | NDArray[Any]) -> NDArray[np.bool_]:
    """Body mask of a CT in HU (threshold -500 HU, largest component, holes filled)."""
    from medgan_desktop.core.metrics.paired import body_mask

    return body_mask(ct if isinstance(ct, Volume) else np.asarray(ct), threshold=-500.0)


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
    registration: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.source.shape != self.target.shape:
            raise PairedDataError(
                f"MR {self.source.shape} and CT {self.target.shape} are not on the same grid: register first"
            )


def read_any(path: Path) -> Volume:
    """Open a DICOM series folder/file or NIfTI/MHA file as one volume."""
    path = Path(path)
    try:
        from medgan_desktop.core.io import open_path
    except ImportError:  # pragma: no cover - fallback while core.io is absent
        import SimpleITK as sitk

        if path.is_dir():
            r = sitk.ImageSeriesReader()
            r.SetFileNames(r.GetGDCMSeriesFileNames(str(path)))
            return Volume.from_sitk(r.Execute())
        return Volume.from_sitk(sitk.ReadImage(str(path)))
    vols = open_path(path)
    if len(vols) != 1:
        raise PairedDataError(f"{path} holds {len(vols)} series; point at one series")
    return vols[0]


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
) -> PairedVolume:
    """Bring ``ct`` onto ``mr``'s grid (registering it first with ``register``).

    Args:
        mr: the MR (scanner units).
        ct: the CT in HU of the same patient.
        register: register CT to MR (rigid, Mattes MI) first; otherwise the CT must
            already share the MR's frame of reference (it is only resampled).
        affine: with ``register``, an affine stage after the rigid one (kept when it
            raises the MI).
        patient: patient key for splits (default: the MR's PatientID).
        try_orientations: with ``register``, try flipped starting orientations.
        progress: registration progress.
        cancel: cancel token checked during registration.
    """
    from dataclasses import replace

    mr = replace(mr, modality="MR") if mr.modality in ("", "OT") else mr
    ct = replace(ct, modality="CT", units="HU") if ct.modality in ("", "OT") else ct
    if mr.modality.upper() != "MR":
        raise PairedDataError(f"the source is {mr.modality}, not MR")
    if ct.modality.upper() != "CT":
        raise PairedDataError(f"the target is {ct.modality}, not CT")
    quality: dict[str, Any] | None = None
    if register:
        from medgan_desktop.core.imaging.registration import register_volumes

        res = register_volumes(
            mr,
            ct,
            affine=affine,
            try_orientations=try_orientations,
            progress=progress,
            cancel=cancel,
        )
        ct, quality = res.resampled, res.quality.to_dict()
    else:  # a no-op when the CT already lies on the MR grid
        from medgan_desktop.core.imaging.resample import resample_to_reference

        ct = resample_to_reference(ct, mr, default_value=CT_HU_RANGE[0])
    key = patient or mr.source.patient_id or ""
    return PairedVolume(mr, ct, key, None, quality)


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
    pair = pair_volumes(
        read_any(mr_path),
        read_any(ct_path),
        register=register,
        affine=affine,
        patient=patient,
        try_orientations=try_orientations,
        progress=progress,
        cancel=cancel,
    )
    if pair.patient:
        return pair
    from dataclasses import replace

    return replace(pair, patient=patient_name(mr_path))


# -- 2D image pairs -----------------------------------------------------------------------------
def is_image_source(path: Path | str) -> bool:
    """True for a PNG/JPEG/BMP/TIFF file or a folder holding only such images (a 2D pair)."""
    from medgan_desktop.core.io import IMAGE_SUFFIXES

    p = Path(path)
    if p.is_file():
        return p.name.lower().endswith(IMAGE_SUFFIXES)
    if not p.is_dir():
        return False
    files = [f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")]
    return bool(files) and all(f.name.lower().endswith(IMAGE_SUFFIXES) for f in files)


def _image_files(path: Path) -> list[Path]:
    from medgan_desktop.core.io import IMAGE_SUFFIXES, _natural_key

    if path.is_file():
        return [path]
    files = [f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(files, key=_natural_key)


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


def load_image_pair(
    mr_path: Path,
    ct_path: Path,
    *,
    register: bool = True,
    affine: bool = False,
    max_side: int = 256,
    patient: str = "",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> PairedVolume:
    """2D MR/CT image pairs (PNG/JPEG, one file or a folder of slices) as a paired volume.

    The slices are matched by file name (else by order). The MR slices are scaled so the
    longer side is at most ``max_side``, each CT slice to the same longer side, and, with
    ``register``, aligned to its MR slice in 2D (:func:`~medgan_desktop.core.imaging.
    registration.register_2d`: similarity, then affine with ``affine``) since 2D pairs
    often differ in field of view, scale and position. Without ``register`` the CT slice
    is only resized onto the MR slice. CT grey levels are mapped to HU by :func:`grey_to_hu`.

    Returns:
        The pair; ``registration`` holds the mean initial/final MI and the per-slice values.
    """
    from medgan_desktop.core.io import guess_modality, read_image_file

    mr_path, ct_path = Path(mr_path), Path(ct_path)
    if guess_modality(mr_path.name) == "CT" and guess_modality(ct_path.name) == "MR":
        raise PairedDataError(
            f"{mr_path.name} looks like the CT and {ct_path.name} like the MR: swap them"
        )
    pairs = _match_images(_image_files(mr_path), _image_files(ct_path))
    if not pairs:
        raise PairedDataError(f"no images in {mr_path} and {ct_path}")
    mr_slices: list[NDArray[np.float32]] = []
    ct_slices: list[NDArray[np.float32]] = []
    per_slice: list[dict[str, Any]] = []
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
        if shape is None:
            shape = _scaled_shape(mr.shape, min(max_side, max(mr.shape)))
        mr = _resize2d(mr, shape)
        ct = read_image_file(cf)
        if register:
            from medgan_desktop.core.imaging.registration import register_2d

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
        ct, mapping = grey_to_hu(ct)
        mr_slices.append(mr)
        ct_slices.append(np.clip(ct, CT_HU_RANGE[0], CT_HU_RANGE[1]).astype(np.float32))
    progress(Progress(len(pairs), len(pairs), "images ready"))
    quality: dict[str, Any] | None = None
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
    desc = f"{mr_path.name} ({len(pairs)} images)"
    mr_vol = Volume(
        np.stack(mr_slices),
        modality="MR",
        units="scanner",
        description=desc,
        warnings=("pixel spacing unknown for PNG/JPEG images: 1 mm assumed",),
    )
    ct_vol = Volume(
        np.stack(ct_slices),
        modality="CT",
        units="HU",
        description=f"{ct_path.name} ({mapping})",
        meta={"grey_to_hu": mapping},
    )
    return PairedVolume(mr_vol, ct_vol, patient or patient_name(mr_path), None, quality)


# -- datasets -----------------------------------------------------------------------------------
def _split_key(key: Any) -> tuple[int, int | None]:
    if isinstance(key, tuple | list):
        return int(key[0]), int(key[1])
    return int(key), None


class _SliceStore:
    """Normalised volumes and the per-slice bookkeeping shared by both datasets."""

    def __init__(self, volumes: Sequence[Volume], window: IntensityWindow) -> None:
        self.arrays: list[NDArray[np.float32]] = []
        self.bounds: list[tuple[float, float]] = []
        for v in volumes:
            arr = np.asarray(v.array, dtype=np.float32)
            b = window.resolve(arr)
            self.bounds.append(b)
            self.arrays.append(window.to_unit(arr, b))

    def stack(self, vi: int, k: int, context: int) -> torch.Tensor:
        arr = self.arrays[vi]
        idx = context_indices(k, arr.shape[0], context)
        return torch.from_numpy(np.ascontiguousarray(arr[idx]))


def _flip(x: torch.Tensor, seed: int | None, flip: bool) -> torch.Tensor:
    if not flip or seed is None:
        return x
    return torch.flip(x, dims=(-1,)) if (seed % 2) else x


class PairedSliceDataset:
    """Registered MR/CT slice pairs (pix2pix, the baseline, distillation).

    Args:
        pairs: the paired volumes (MR source, CT target on the same grid).
        size: network image size.
        context_slices: 2.5D neighbours each side (input channels ``2c + 1``).
        min_body_fraction: skip slices whose body mask covers less than this.
        flip: random left-right flips (the same for source, target and mask).
        description: JSON-able description stored in ``run.json``.
    """

    def __init__(
        self,
        pairs: Sequence[PairedVolume],
        size: int = 128,
        context_slices: int = 0,
        min_body_fraction: float = 0.02,
        flip: bool = False,
        description: dict[str, Any] | None = None,
    ) -> None:
        if not pairs:
            raise PairedDataError("no MR/CT pairs")
        self.size = size
        self.context = context_slices
        self.flip = flip
        self.source_window = IntensityWindow.mr()
        self.target_window = IntensityWindow.ct()
        self._src = _SliceStore([p.source for p in pairs], self.source_window)
        self._tgt = _SliceStore([p.target for p in pairs], self.target_window)
        self._masks = [ct_body_mask(p.target) for p in pairs]
        self.items: list[tuple[int, int]] = []
        for vi, p in enumerate(pairs):
            ks = p.slices if p.slices is not None else range(p.source.shape[0])
            for k in ks:
                if self._masks[vi][k].mean() >= min_body_fraction:
                    self.items.append((vi, int(k)))
        if not self.items:
            raise PairedDataError(
                "no slice contains enough body (check the CT is in HU and registered)"
            )
        self._description = {
            "kind": "paired_mr_ct",
            "patients": sorted({p.patient for p in pairs}),
            "n_pairs": len(pairs),
            "n_slices": len(self.items),
            "registration": [p.registration for p in pairs if p.registration],
            **(description or {}),
        }
        self.preprocessing = Preprocessing(
            target=self.target_window,
            source=self.source_window,
            modality_in="MR",
            modality_out="CT",
            size=size,
            channels=1,
            context_slices=context_slices,
        )

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        i, seed = _split_key(key)
        vi, k = self.items[i]
        src = fit_square(self._src.stack(vi, k, self.context), self.size).clamp(-1, 1)
        tgt = fit_square(self._tgt.stack(vi, k, 0), self.size).clamp(-1, 1)
        m = torch.from_numpy(self._masks[vi][k : k + 1].astype(np.float32))
        mask = (fit_square(m, self.size, pad_value=0.0) > 0.5).float()
        return {
            "source": _flip(src, seed, self.flip).contiguous(),
            "target": _flip(tgt, seed, self.flip).contiguous(),
            "mask": _flip(mask, seed, self.flip).contiguous(),
        }

    def describe(self) -> dict[str, Any]:
        return dict(self._description)


class UnpairedSliceDataset:
    """MR slices and CT slices drawn independently (CycleGAN, UNIT).

    Item ``i`` is MR slice ``i`` and a CT slice chosen from the per-sample seed
    (deterministic for a resumed run).

    Args:
        sources: MR volumes.
        targets: CT volumes in HU (any grid, other patients allowed).
        size: network image size.
        context_slices: 2.5D neighbours each side for the MR.
        min_body_fraction: skip CT slices with less body than this and MR slices whose
            normalised intensity is mostly background.
        description: JSON-able description.
    """

    def __init__(
        self,
        sources: Sequence[Volume],
        targets: Sequence[Volume],
        size: int = 128,
        context_slices: int = 0,
        min_body_fraction: float = 0.02,
        description: dict[str, Any] | None = None,
    ) -> None:
        if not sources or not targets:
            raise PairedDataError("unpaired training needs MR and CT volumes")
        self.size = size
        self.context = context_slices
        self.source_window = IntensityWindow.mr()
        self.target_window = IntensityWindow.ct()
        self._src = _SliceStore(sources, self.source_window)
        self._tgt = _SliceStore(targets, self.target_window)
        self._masks = [ct_body_mask(t.array) for t in targets]
        self.src_items = [
            (vi, k)
            for vi, a in enumerate(self._src.arrays)
            for k in range(a.shape[0])
            if float((a[k] > -0.9).mean()) >= min_body_fraction
        ]
        self.tgt_items = [
            (vi, k)
            for vi, m in enumerate(self._masks)
            for k in range(m.shape[0])
            if float(m[k].mean()) >= min_body_fraction
        ]
        if not self.src_items or not self.tgt_items:
            raise PairedDataError("no usable MR or CT slices")
        self._description = {
            "kind": "unpaired_mr_ct",
            "n_mr_slices": len(self.src_items),
            "n_ct_slices": len(self.tgt_items),
            **(description or {}),
        }
        self.preprocessing = Preprocessing(
            target=self.target_window,
            source=self.source_window,
            modality_in="MR",
            modality_out="CT",
            size=size,
            channels=1,
            context_slices=context_slices,
        )

    def __len__(self) -> int:
        return len(self.src_items)

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        i, seed = _split_key(key)
        vi, k = self.src_items[i]
        j = (seed if seed is not None else i * 7919) % len(self.tgt_items)
        ti, tk = self.tgt_items[j]
        src = fit_square(self._src.stack(vi, k, self.context), self.size).clamp(-1, 1)
        tgt = fit_square(self._tgt.stack(ti, tk, 0), self.size).clamp(-1, 1)
        m = torch.from_numpy(self._masks[ti][tk : tk + 1].astype(np.float32))
        mask = (fit_square(m, self.size, pad_value=0.0) > 0.5).float()
        return {"source": src.contiguous(), "target": tgt.contiguous(), "mask": mask.contiguous()}

    def describe(self) -> dict[str, Any]:
        return dict(self._description)


def index_pairs(index: Any) -> list[tuple[str, str, str]]:
    """``(patient_id, mr_series_uid, ct_series_uid)`` for every patient holding both in the index.

    The MR and CT of the same study are preferred; otherwise any of the patient's.
    """
    by_patient: dict[str, dict[str, list[Any]]] = {}
    for rec in index.all_series():
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


def volume_slab(vol: Volume, slices: Sequence[int]) -> Volume:
    """A sub-volume of contiguous slices ``slices`` (origin moved accordingly)."""
    ks = list(slices)
    if not ks or ks != list(range(ks[0], ks[0] + len(ks))):
        raise ValueError("volume_slab needs contiguous ascending slice indices")
    origin = tuple(float(x) for x in vol.index_to_lps((0.0, 0.0, float(ks[0]))))
    from dataclasses import replace

    return replace(vol, array=np.ascontiguousarray(vol.array[ks[0] : ks[-1] + 1]), origin=origin)  # type: ignore[arg-type]
