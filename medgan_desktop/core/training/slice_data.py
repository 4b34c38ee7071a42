"""Source/target slice datasets for translation training (paired and unpaired).

The source and target modalities, their intensity windows and the slicing plane come from
the run's :class:`~medgan_desktop.core.imaging.tasks.TranslationTask` (MR -> CT by
default); the text below describes MR -> CT.

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
  inference inverts exactly this mapping (:mod:`medgan_desktop.core.imaging.slices`).
* Tasks within one modality (denoising, super-resolution) train on ``size``-pixel crops
  at the images' own resolution instead (centred on a body pixel drawn from the sample's
  seed): resizing would average away the very noise and detail the model must learn,
  and inference runs on whole slices at their resolution (``Preprocessing.patches``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medgan_desktop.core.imaging.intensity import IntensityWindow
from medgan_desktop.core.imaging.masks import body_mask, ct_body_mask
from medgan_desktop.core.imaging.slices import context_indices, fit_square
from medgan_desktop.core.imaging.tasks import DEFAULT_TASK, TranslationTask, get_task
from medgan_desktop.core.models.runs import Preprocessing
from medgan_desktop.core.training.data import SampleKey, split_key
from medgan_desktop.core.training.pairs import PairedDataError, PairedVolume
from medgan_desktop.core.types import BoolArray, Float32Array, JsonObject
from medgan_desktop.core.volume import Volume


class _SliceStore:
    """Normalised volumes and the per-slice bookkeeping shared by both datasets."""

    def __init__(self, volumes: Sequence[Volume], window: IntensityWindow) -> None:
        self.arrays: list[Float32Array] = []
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


def pair_mask(source: Volume, target: Volume, task: TranslationTask) -> BoolArray:
    """The body mask of a pair: from its CT (HU threshold) when there is one, else from the
    target MR (Otsu)."""
    if task.target_modality == "CT":
        return ct_body_mask(target)
    if task.source_modality == "CT":
        return ct_body_mask(source)
    return body_mask(target)


def _task_of(task: TranslationTask | str | None) -> TranslationTask:
    if isinstance(task, TranslationTask):
        return task
    return get_task(task or DEFAULT_TASK)


class _MrCtSlices:
    """Source and target slices, normalised as the model will see them; the body masks
    (``_masks``) are the subclass's."""

    _masks: list[BoolArray]

    def __init__(self, sources: Sequence[Volume], targets: Sequence[Volume], size: int,
                 context_slices: int, description: JsonObject, task: TranslationTask | str | None = None) -> None:
        self.task = _task_of(task)
        self.size = size
        self.context = context_slices
        self.source_window: IntensityWindow = self.task.source_window
        self.target_window: IntensityWindow = self.task.target_window
        self._src = _SliceStore(sources, self.source_window)
        self._tgt = _SliceStore(targets, self.target_window)
        self._description = description
        self.preprocessing = Preprocessing(
            target=self.target_window, source=self.source_window, modality_in=self.task.source_modality,
            modality_out=self.task.target_modality, size=size, channels=1, context_slices=context_slices,
            task=self.task.key, slice_axis=self.task.slice_axis,
            upsample=self.task.factor if self.task.slice_axis != "axial" else 1,
            patches=self.task.self_supervised)

    def _slices(self, vi: int, k: int, ti: int, tk: int, seed: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MR slice ``k`` of volume ``vi`` with its context, CT slice ``tk`` of volume ``ti`` and
        that slice's body mask, each fitted to ``size`` (or, for patch tasks, one crop of them)."""
        if self.preprocessing.patches:
            return self._crops(vi, k, ti, tk, seed)
        src = fit_square(self._src.stack(vi, k, self.context), self.size).clamp(-1, 1)
        tgt = fit_square(self._tgt.stack(ti, tk, 0), self.size).clamp(-1, 1)
        m = torch.from_numpy(self._masks[ti][tk : tk + 1].astype(np.float32))
        mask = (fit_square(m, self.size, pad_value=0.0) > 0.5).float()
        return src, tgt, mask

    def _crops(self, vi: int, k: int, ti: int, tk: int, seed: int | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same ``size``-pixel crop of source, target and mask at full resolution."""
        src = self._src.stack(vi, k, self.context)
        tgt = self._tgt.stack(ti, tk, 0)
        m = torch.from_numpy(self._masks[ti][tk : tk + 1].astype(np.float32))
        h, w = tgt.shape[-2:]
        s = self.size
        ph, pw = max(0, s - h), max(0, s - w)
        if ph or pw:  # smaller than a crop: pad with the window floor / outside the body
            pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
            src = torch.nn.functional.pad(src, pad, value=-1.0)
            tgt = torch.nn.functional.pad(tgt, pad, value=-1.0)
            m = torch.nn.functional.pad(m, pad, value=0.0)
            h, w = tgt.shape[-2:]
        ys, xs = np.nonzero(m[0].numpy() > 0.5)
        if seed is None or len(ys) == 0:
            cy, cx = h // 2, w // 2
        else:
            j = int(np.random.default_rng(seed).integers(len(ys)))
            cy, cx = int(ys[j]), int(xs[j])
        top = min(max(cy - s // 2, 0), h - s)
        left = min(max(cx - s // 2, 0), w - s)
        box = (slice(None), slice(top, top + s), slice(left, left + s))
        return src[box].clamp(-1, 1), tgt[box].clamp(-1, 1), (m[box] > 0.5).float()

    def describe(self) -> JsonObject:
        return dict(self._description)


class PairedSliceDataset(_MrCtSlices):
    """Registered MR/CT slice pairs (pix2pix, the baseline, distillation).

    Args:
        pairs: the paired volumes (MR source, CT target on the same grid).
        size: network image size.
        context_slices: 2.5D neighbours each side (input channels ``2c + 1``).
        min_body_fraction: skip slices whose body mask covers less than this.
        flip: random left-right flips (the same for source, target and mask).
        description: JSON-able description stored in ``run.json``.
    """

    def __init__(self, pairs: Sequence[PairedVolume], size: int = 128, context_slices: int = 0,
                 min_body_fraction: float = 0.02, flip: bool = False, description: JsonObject | None = None,
                 task: TranslationTask | str | None = None) -> None:
        if not pairs:
            raise PairedDataError("no source/target pairs")
        super().__init__([p.source for p in pairs], [p.target for p in pairs], size, context_slices, {}, task)
        self.flip = flip
        self._masks = [pair_mask(p.source, p.target, self.task) for p in pairs]
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
            "kind": "paired_mr_ct" if self.task.key == DEFAULT_TASK else f"paired_{self.task.key}",
            "task": self.task.key,
            "patients": sorted({p.patient for p in pairs}),
            "n_pairs": len(pairs),
            "n_slices": len(self.items),
            "registration": [p.registration for p in pairs if p.registration],
            **(description or {}),
        }

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        vi, k = self.items[i]
        src, tgt, mask = self._slices(vi, k, vi, k, seed)
        return {
            "source": _flip(src, seed, self.flip).contiguous(),
            "target": _flip(tgt, seed, self.flip).contiguous(),
            "mask": _flip(mask, seed, self.flip).contiguous(),
        }


class UnpairedSliceDataset(_MrCtSlices):
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
        description: JsonObject | None = None,
        task: TranslationTask | str | None = None,
    ) -> None:
        if not sources or not targets:
            raise PairedDataError("unpaired training needs source and target volumes")
        super().__init__(sources, targets, size, context_slices, {}, task)
        self._masks = [ct_body_mask(t.array) if self.task.target_modality == "CT" else body_mask(t)
                       for t in targets]
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
            "kind": "unpaired_mr_ct" if self.task.key == DEFAULT_TASK else f"unpaired_{self.task.key}",
            "task": self.task.key,
            "n_mr_slices": len(self.src_items),
            "n_ct_slices": len(self.tgt_items),
            **(description or {}),
        }

    def __len__(self) -> int:
        return len(self.src_items)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        vi, k = self.src_items[i]
        j = (seed if seed is not None else i * 7919) % len(self.tgt_items)
        ti, tk = self.tgt_items[j]
        src, tgt, mask = self._slices(vi, k, ti, tk)
        return {"source": src.contiguous(), "target": tgt.contiguous(), "mask": mask.contiguous()}
