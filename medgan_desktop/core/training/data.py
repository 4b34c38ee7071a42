"""Training datasets: image folders and 2D slices of volumes, normalised to [-1, 1].

Every dataset here implements the small protocol the training loop needs:

* ``__len__`` and ``__getitem__(key)`` where ``key`` is an index or ``(index, aug_seed)``
  (the loop's sampler passes a per-sample seed so augmentation is reproducible and a
  resumed run sees exactly the same images); an item is a dict with ``"target"``
  ``(C, H, W)`` float32 in [-1, 1] and, for labelled data, ``"label"`` (int64 scalar);
* ``preprocessing``: a :class:`~medgan_desktop.core.models.runs.Preprocessing`;
* ``describe()``: a JSON-able description stored in ``run.json``.

Translation datasets (paired MR/CT) live with the translation code and follow the same
protocol, adding ``"source"`` (and optionally ``"mask"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

from medgan_desktop.core.imaging.intensity import IntensityWindow
from medgan_desktop.core.models.runs import Preprocessing
from medgan_desktop.core.training.config import DataConfig, DataKind
from medgan_desktop.core.types import JsonObject
from medgan_desktop.core.volume import Volume

if TYPE_CHECKING:
    from medgan_desktop.core.dicom.index import StudyIndex

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


class DataError(ValueError):
    """The training data cannot be used (missing, unreadable, too few images, ...)."""


#: An item: its index, or ``(index, seed)`` as the training loop's sampler draws it (the seed
#: picks the item's augmentation).
SampleKey = int | tuple[int, int]


@runtime_checkable
class TrainingDataset(Protocol):
    preprocessing: Preprocessing

    def __len__(self) -> int: ...

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]: ...

    def describe(self) -> JsonObject: ...


def split_key(key: SampleKey) -> tuple[int, int | None]:
    """``(index, seed)`` of an item key (seed None: no augmentation)."""
    if isinstance(key, tuple | list):
        return int(key[0]), int(key[1])
    return int(key), None


def augment(x: torch.Tensor, seed: int | None, flip: bool, rotate90: bool) -> torch.Tensor:
    """Random flip / 90-degree rotation of one ``(C, H, W)`` image from ``seed`` (None: none)."""
    if seed is None or not (flip or rotate90):
        return x
    rng = np.random.default_rng(seed)
    if flip and rng.random() < 0.5:
        x = torch.flip(x, dims=(2,))
    if rotate90:
        k = int(rng.integers(0, 4))
        if k:
            x = torch.rot90(x, k, dims=(1, 2))
    return x.contiguous()


#: Default pattern of the patient identifier in an image's file name: ``person123_virus_4``,
#: ``IM-0115-0001``, ``patient07_slice3``, ``case_12``, ``sub-03``. A file whose name does not
#: match is its own patient.
PATIENT_PATTERN = r"(?i)(?:person|patient|pat|case|subject|sub|im)[-_]?\d+"


def patient_key(name: str, pattern: str = "") -> str:
    """The patient a file belongs to, from its name (``pattern``: a regex, default
    :data:`PATIENT_PATTERN`; the first match, or the whole stem when none)."""
    stem = Path(name).name.split(".")[0]
    m = re.search(pattern or PATIENT_PATTERN, stem)
    return (m.group(0) if m else stem).lower()


def patient_split(
    names: Sequence[str], labels: Sequence[int], share: float, seed: int, pattern: str = "",
) -> tuple[list[int], list[int]]:
    """``(train, validation)`` indices with no patient on both sides.

    Per class, whole patients (in a seeded random order) go to validation until it holds
    ``share`` of the class; a patient chosen for one class leaves the training side for all.
    """
    if not 0.0 < share < 1.0:
        raise DataError(f"validation share must be between 0 and 1, got {share}")
    keys = [patient_key(n, pattern) for n in names]
    lab = list(labels) if labels else [0] * len(names)
    rng = np.random.default_rng(seed + 7919)
    val_keys: set[str] = set()
    for c in sorted(set(lab)):
        members = [i for i, y in enumerate(lab) if y == c]
        groups = sorted({keys[i] for i in members})
        want = share * len(members)
        got = 0
        for g in (groups[j] for j in rng.permutation(len(groups))):
            if got >= want:
                break
            val_keys.add(g)
            got += sum(1 for i in members if keys[i] == g)
    val = [i for i, k in enumerate(keys) if k in val_keys]
    train = [i for i, k in enumerate(keys) if k not in val_keys]
    if not train or not val:
        raise DataError(f"cannot hold out {share:.0%} by patient: {len(set(keys))} patients in {len(names)} files")
    return train, val


def _subset(n: int, max_images: int, seed: int) -> NDArray[np.int64]:
    idx = np.arange(n)
    if 0 < max_images < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))
    return idx


class ImageFolderDataset:
    """PNG/JPEG images under a folder (recursively); labels from first-level subfolders.

    Args:
        root: the folder.
        size: output size (centre-cropped to square, then resized).
        channels: 1 (grey) or 3 (RGB).
        label_from_subfolders: label = index of the sorted first-level subfolder name.
        max_images: keep a fixed random subset of this size (0: all).
        flip: random horizontal flips.
        rotate90: random 90 degree rotations.
        seed: seed of the subset choice.
        modality: recorded modality ("CR" for radiographs, "OT" otherwise).
        val_share: hold out this share of the images, whole patients at a time (see
            :func:`patient_split`), as a validation set the loop never trains on (0: none).
        patient_pattern: regex of the patient identifier in file names ("" : the default).
    """

    def __init__(
        self,
        root: Path,
        size: int = 64,
        channels: int = 1,
        label_from_subfolders: bool = False,
        max_images: int = 0,
        flip: bool = False,
        rotate90: bool = False,
        seed: int = 0,
        modality: str = "OT",
        val_share: float = 0.0,
        patient_pattern: str = "",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"image folder {self.root} does not exist")
        if channels not in (1, 3):
            raise DataError(f"channels must be 1 or 3, got {channels}")
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not files:
            raise DataError(f"no PNG/JPEG images found under {self.root}")
        self.class_names: tuple[str, ...] = ()
        labels: list[int] = []
        if label_from_subfolders:
            tops = [p.relative_to(self.root).parts for p in files]
            if any(len(t) < 2 for t in tops):
                files = [f for f, t in zip(files, tops, strict=True) if len(t) >= 2]
                tops = [t for t in tops if len(t) >= 2]
            self.class_names = tuple(sorted({t[0] for t in tops}))
            if len(self.class_names) < 2:
                raise DataError(
                    f"labels from subfolders need at least two class folders under {self.root}, "
                    f"found {list(self.class_names)}"
                )
            labels = [self.class_names.index(t[0]) for t in tops]
        self.val_files: list[Path] = []
        self.val_labels: list[int] = []
        self.val_patients = 0
        if val_share > 0:
            tr, va = patient_split([f.name for f in files], labels, val_share, seed, patient_pattern)
            self.val_files = [files[i] for i in va]
            self.val_labels = [labels[i] for i in va] if labels else []
            self.val_patients = len({patient_key(f.name, patient_pattern) for f in self.val_files})
            files = [files[i] for i in tr]
            labels = [labels[i] for i in tr] if labels else []
        keep = _subset(len(files), max_images, seed)
        self.files = [files[i] for i in keep]
        self.labels = [labels[i] for i in keep] if labels else []
        self.size = size
        self.channels = channels
        self.flip = flip
        self.rotate90 = rotate90
        self._cache: dict[int, torch.Tensor] = {}
        self.preprocessing = Preprocessing(
            target=IntensityWindow.uint8(),
            modality_out=modality or "OT",
            size=size,
            channels=channels,
            class_names=self.class_names,
        )

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` preprocessed, ``(C, size, size)`` in [-1, 1] (cached)."""
        cached = self._cache.get(i)
        if cached is None:
            cached = self._cache[i] = self._read(self.files[i])
        return cached

    def validation_images(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The held-out validation images ``(N, C, size, size)`` in [-1, 1] and their labels
        (None when unlabelled); empty when no validation share was asked for."""
        if not self.val_files:
            return torch.zeros((0, self.channels, self.size, self.size)), None
        imgs = torch.stack([self._read(f) for f in self.val_files])
        labels = torch.tensor(self.val_labels, dtype=torch.long) if self.val_labels else None
        return imgs, labels

    def _read(self, path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as src:
                im: Image.Image = src.convert("L" if self.channels == 1 else "RGB")
            w, h = im.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
            im = im.resize((self.size, self.size), Image.Resampling.BICUBIC, reducing_gap=3.0)
            arr = np.asarray(im, dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from exc
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(arr / 127.5 - 1.0, dtype=np.float32))

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        item = {"target": augment(self.load(i), seed, self.flip, self.rotate90)}
        if self.labels:
            item["label"] = torch.tensor(self.labels[i], dtype=torch.long)
        return item

    def describe(self) -> JsonObject:
        counts = {c: self.labels.count(k) for k, c in enumerate(self.class_names)} if self.labels else {}
        return {
            "kind": "images",
            "path": str(self.root),
            "n_images": len(self),
            "class_counts": counts,
            "flip": self.flip,
            "rotate90": self.rotate90,
            "n_validation": len(self.val_files),
            "validation_patients": self.val_patients,
        }


def default_window(modality: str) -> IntensityWindow:
    """CT: fixed HU window (SynthRAD range); MR and anything else: per-volume percentiles."""
    return IntensityWindow.ct() if modality.upper() == "CT" else IntensityWindow.mr()


def guess_modality(vol: Volume) -> str:
    if vol.modality and vol.modality not in ("OT", ""):
        return vol.modality.upper()
    return "CT" if float(np.min(vol.array)) < -500.0 else "MR"


def resize_square(img: torch.Tensor, size: int, pad_value: float = -1.0) -> torch.Tensor:
    """Pad ``(C, H, W)`` to a centred square with ``pad_value``, then resize (antialiased)."""
    _, h, w = img.shape
    s = max(h, w)
    if h != w:
        top, left = (s - h) // 2, (s - w) // 2
        img = F.pad(img, (left, s - w - left, top, s - h - top), value=pad_value)
    if s != size:
        img = F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=s > size, align_corners=False)[0]
    return img.clamp(-1.0, 1.0).contiguous()


class VolumeSliceDataset:
    """2D slices of volumes along one axis, windowed per modality and resized.

    Args:
        volumes: the volumes (CT in HU, MR in scanner units).
        size: output size.
        axis: array axis to slice along (0: k, 1: j, 2: i).
        modality: "CT", "MR", ... ("" guesses per volume; all must agree).
        window: explicit window (default: CT fixed HU range, MR percentiles per volume).
        max_images: keep a fixed random subset of slices (0: all).
        flip: random left-right flips.
        rotate90: random 90-degree rotations.
        min_foreground: skip slices with less than this fraction of pixels above the floor.
        seed: seed of the subset choice.
        description: JSON-able description of the source (paths, series UIDs).
    """

    def __init__(
        self,
        volumes: Sequence[Volume],
        size: int = 64,
        axis: int = 0,
        modality: str = "",
        window: IntensityWindow | None = None,
        max_images: int = 0,
        flip: bool = False,
        rotate90: bool = False,
        min_foreground: float = 0.05,
        seed: int = 0,
        description: JsonObject | None = None,
    ) -> None:
        if not volumes:
            raise DataError("no volumes to slice")
        if axis not in (0, 1, 2):
            raise DataError(f"axis must be 0, 1 or 2, got {axis}")
        mods = {modality.upper()} if modality else {guess_modality(v) for v in volumes}
        if len(mods) > 1:
            raise DataError(f"volumes of different modalities {sorted(mods)}: train one modality at a time")
        self.modality = mods.pop()
        self.window = window or default_window(self.modality)
        self.size = size
        self.axis = axis
        self.flip = flip
        self.rotate90 = rotate90
        self._arrays: list[NDArray[np.float32]] = []
        slices: list[tuple[int, int]] = []
        for vi, vol in enumerate(volumes):
            arr = np.asarray(vol.array, dtype=np.float32)
            unit = self.window.to_unit(arr)  # percentile bounds resolved per volume
            self._arrays.append(unit)
            fg = (np.moveaxis(unit, axis, 0) > -0.95).reshape(unit.shape[axis], -1).mean(axis=1)
            slices.extend((vi, int(k)) for k in np.flatnonzero(fg >= min_foreground))
        if not slices:
            raise DataError("every slice is background (nothing above the window floor)")
        keep = _subset(len(slices), max_images, seed)
        self.slices = [slices[i] for i in keep]
        self._description = dict(description or {})
        self.preprocessing = Preprocessing(target=self.window, modality_out=self.modality, size=size, channels=1)

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        vi, k = self.slices[i]
        sl = np.take(self._arrays[vi], k, axis=self.axis)
        img = resize_square(torch.from_numpy(np.ascontiguousarray(sl))[None], self.size)
        return {"target": augment(img, seed, self.flip, self.rotate90)}

    def describe(self) -> JsonObject:
        return {
            "kind": "volumes",
            **self._description,
            "modality": self.modality,
            "n_volumes": len(self._arrays),
            "n_slices": len(self),
            "axis": self.axis,
            "flip": self.flip,
            "rotate90": self.rotate90,
        }


def read_volume_file(path: Path) -> Volume:
    """Read a NIfTI/MHA/NRRD file (SimpleITK) as a :class:`Volume`."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise DataError(f"cannot read volume {path}: {exc}") from exc
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"{path}: expected a 3D scalar volume, got shape {arr.shape}")
    d = np.asarray(img.GetDirection(), dtype=np.float64)
    direction = d.reshape(3, 3) if d.size == 9 else np.eye(3)
    sp = img.GetSpacing()
    org = img.GetOrigin()
    return Volume(
        array=arr,
        spacing=(float(sp[0]), float(sp[1]), float(sp[2]) if len(sp) > 2 else 1.0),
        origin=(float(org[0]), float(org[1]), float(org[2]) if len(org) > 2 else 0.0),
        direction=direction,
        description=path.name,
    )


def _is_volume_file(p: Path) -> bool:
    name = p.name.lower()
    return p.is_file() and any(name.endswith(s) for s in VOLUME_SUFFIXES)


def build_dataset(cfg: DataConfig, seed: int = 0, index: StudyIndex | None = None) -> TrainingDataset:
    """The dataset described by ``cfg`` (``index``: a StudyIndex for ``kind="index"``).

    Raises:
        DataError: the path does not exist, holds nothing usable, or cannot be read.
    """
    kind = DataKind(cfg.kind)
    window = None
    if cfg.window_lo is not None and cfg.window_hi is not None:
        window = IntensityWindow.ct(cfg.window_lo, cfg.window_hi)
    if kind == DataKind.INDEX:
        if index is None or not cfg.series_uids:
            raise DataError("index data needs a study index and at least one series UID")
        from medgan_desktop.core.dicom.series import load_series_from_index

        indexed = [load_series_from_index(index, uid) for uid in cfg.series_uids]
        return VolumeSliceDataset(
            indexed, cfg.size, cfg.axis, cfg.modality, window, cfg.max_images, cfg.flip, cfg.rotate90,
            cfg.min_foreground, seed, {"series_uids": list(cfg.series_uids)},
        )
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if kind == DataKind.AUTO:
        if _is_volume_file(path):
            kind = DataKind.VOLUMES
        elif path.is_dir():
            has_images = any(p.suffix.lower() in IMAGE_EXTS for p in path.rglob("*"))
            kind = DataKind.IMAGES if has_images else DataKind.VOLUMES
        else:
            raise DataError(f"{path}: not an image folder, a volume file or a folder of volumes")
    if kind == DataKind.IMAGES:
        return ImageFolderDataset(
            path, cfg.size, cfg.channels, cfg.label_from_subfolders, cfg.max_images, cfg.flip,
            cfg.rotate90, seed, cfg.modality or "OT", cfg.val_share, cfg.patient_pattern,
        )
    if cfg.channels != 1:
        raise DataError("volume slices have one channel; use --set data.channels=1")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if _is_volume_file(p))
    vols: list[Volume] = []
    if files:
        vols = [read_volume_file(f) for f in files]
    elif path.is_dir():  # a DICOM series folder
        from medgan_desktop.core.dicom.series import load_series

        dcm = sorted(p for p in path.rglob("*") if p.is_file())
        if not dcm:
            raise DataError(f"{path} is empty: give a folder of images, volumes or a DICOM series")
        try:
            vols = [load_series(dcm)]
        except Exception as exc:  # reader errors of many kinds: report them as data errors
            raise DataError(f"{path}: no images, volumes or readable DICOM series ({exc})") from exc
    return VolumeSliceDataset(
        vols, cfg.size, cfg.axis, cfg.modality, window, cfg.max_images, cfg.flip, cfg.rotate90,
        cfg.min_foreground, seed, {"path": str(path), "files": [str(f) for f in files]},
    )


def preview_batch(dataset: TrainingDataset, n: int = 16, seed: int = 0) -> torch.Tensor:
    """The first ``n`` items after preprocessing and augmentation, ``(n, C, H, W)`` in [-1, 1]."""
    n = min(n, len(dataset))
    return torch.stack([dataset[(i, seed * 100_003 + i)]["target"] for i in range(n)])
