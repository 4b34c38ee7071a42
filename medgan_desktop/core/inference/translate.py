"""Volume translation: a source volume in, the synthetic target out (MR -> CT by default;
the run's task says which: :mod:`medgan_desktop.core.imaging.tasks`).

A CT target comes out in HU, an MR target on the MR display scale (0..1000 spans the
target's 0.5..99.5 percentiles). The output lies on the source grid, or, for through-plane
super-resolution, on the grid ``upsample`` times finer along k (the input interpolated
onto it first, then refined slice by slice in the coronal plane).

Slices (along k) are normalised exactly as in training
(:mod:`medgan_desktop.core.training.slice_data`): the MR between its per-volume
0.5/99.5 percentiles, neighbours stacked as channels for 2.5D models, padded to
a centred square and resized to the model size (models trained on crops at the images'
own resolution, for denoising and super-resolution, see whole slices at that resolution,
padded to the network's stride). The network runs on batches of
``batch_size`` slices (so memory stays bounded whatever the volume size), its
output is resized back, cropped and mapped from [-1, 1] to HU.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from medgan_desktop.core.imaging.intensity import CT_HU_RANGE, IntensityWindow, WindowMode
from medgan_desktop.core.imaging.slices import context_indices, fit_square, unfit_square
from medgan_desktop.core.imaging.tasks import MR_DISPLAY_RANGE, interpolate_through_plane, slice_view, unslice_view
from medgan_desktop.core.models.runs import LoadedModel
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.volume import Volume

_UNKNOWN_MODALITIES = ("", "OT")


def model_id(model: LoadedModel) -> str:
    """A short identifier of a loaded model (its folder name)."""
    return str(model.info.path.name)


def check_compatible(volume: Volume, model: LoadedModel) -> list[str]:
    """Raise ``ValueError`` if ``model`` cannot translate ``volume``; return warnings otherwise."""
    info = model.info
    pre = info.preprocessing
    if str(info.task) != "translation":
        raise ValueError(f"model {model_id(model)} is a {info.task} model, not a translation model")
    warnings: list[str] = []
    want = (pre.modality_in or "").upper()
    have = (volume.modality or "").upper()
    if want and have not in _UNKNOWN_MODALITIES and have != want:
        raise ValueError(
            f"model {model_id(model)} translates {want} to {pre.modality_out}, but the input is {have}: "
            f"choose an {want} series or a model for {have}"
        )
    if want and have in _UNKNOWN_MODALITIES:
        warnings.append(f"input modality unknown; assumed {want} as the model expects")
    if volume.array.ndim != 3 or min(volume.shape[1:]) < 8:
        raise ValueError(f"cannot translate an image of shape {volume.shape}: slices are too small")
    if pre.context_slices > 0 and volume.shape[0] < 2:
        warnings.append(
            f"a single slice given to a 2.5D model (context {pre.context_slices}): its neighbour "
            "channels repeat the slice, so the result may be poorer than on a volume"
        )
    expected = 2 * pre.context_slices + 1
    got = int(model.method.config.in_channels)
    if got != expected:
        raise ValueError(
            f"model {model_id(model)} is inconsistent: {got} input channels for context {pre.context_slices}"
        )
    return warnings


def _device_of(net: torch.nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def translate(
    volume: Volume,
    model: LoadedModel,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    batch_size: int = 8,
    tta_flip: bool = False,
    device: torch.device | str | None = None,
) -> Volume:
    """Translate ``volume`` (MR) with a loaded translation ``model`` into a synthetic CT.

    Args:
        volume: the source volume.
        model: a :class:`~medgan_desktop.core.models.runs.LoadedModel` of a translation run.
        progress: progress callback (one report per batch).
        cancel: cancel token checked between batches.
        batch_size: slices per network call.
        tta_flip: average with the left-right flipped prediction (test-time augmentation).
        device: run on this device (default: where the model was loaded).

    Returns:
        A volume on the source grid, in HU, marked synthetic.

    Raises:
        ValueError: the model is not a translation model or expects another modality.
    """
    warnings = check_compatible(volume, model)
    pre = model.info.preprocessing
    if pre.upsample > 1:
        if volume.shape[0] < 2:
            raise ValueError("through-plane super-resolution needs a volume of at least two slices")
        volume = interpolate_through_plane(volume, pre.upsample)
    net: torch.nn.Module = model.method.inference_network()
    net.eval()
    dev = torch.device(device) if device is not None else _device_of(net)
    if _device_of(net) != dev:
        net.to(dev)
    if dev.type == "cpu":
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # ~1.45x faster
    amp = dev.type == "cuda"
    src_window = pre.source or IntensityWindow.mr()
    tgt_window = pre.target
    arr = slice_view(np.asarray(volume.array, dtype=np.float32), pre.slice_axis)
    bounds = src_window.resolve(arr)
    out_bounds = MR_DISPLAY_RANGE if tgt_window.mode == WindowMode.PERCENTILE else None
    nk, h, w = arr.shape
    out = np.empty((nk, h, w), dtype=np.float32)
    ctx = pre.context_slices
    size = pre.size
    batch_size = max(1, int(batch_size))
    total = (nk + batch_size - 1) // batch_size
    progress(Progress(0, total, "translating"))
    for b, k0 in enumerate(range(0, nk, batch_size)):
        if cancel is not None:
            cancel.check()
        ks = range(k0, min(nk, k0 + batch_size))
        # Normalise the batch's slab (with its 2.5D neighbours) once, then gather the
        # context channels: each slice is scaled once, not once per channel it feeds.
        # Each slab slice is also resized once (antialiased), not once per context channel.
        lo_k, hi_k = max(0, k0 - ctx), min(nk, ks[-1] + ctx + 1)
        slab = torch.from_numpy(src_window.to_unit(arr[lo_k:hi_k], bounds))
        if pre.patches:  # whole slices at their own resolution, padded to the network's stride
            pad = (0, -w % size, 0, -h % size)
            slab = torch.nn.functional.pad(slab[None], pad, mode="replicate")[0] if any(pad) else slab
        else:
            slab = fit_square(slab, size)
        idx = torch.as_tensor(np.asarray([context_indices(k, nk, ctx) for k in ks]) - lo_k)
        x = slab[idx].clamp(-1.0, 1.0).to(dev)  # (B, C, size, size) or (B, C, H', W')
        if dev.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, enabled=amp):
            y = net(x).float()
            if tta_flip:
                y = 0.5 * (y + torch.flip(net(torch.flip(x, dims=(-1,))).float(), dims=(-1,)))
        y = y.clamp(-1.0, 1.0).cpu()
        y = y[:, 0, :h, :w] if pre.patches else unfit_square(y, h, w)[:, 0]
        out[k0 : k0 + len(ks)] = tgt_window.from_unit(y.numpy(), out_bounds)
        progress(Progress(b + 1, total, f"translated {k0 + len(ks)}/{nk} slices"))
    if pre.modality_out == "CT":
        np.clip(out, CT_HU_RANGE[0], CT_HU_RANGE[1], out=out)
    out = unslice_view(out, pre.slice_axis)
    mid = model_id(model)
    if pre.upsample > 1:
        warnings.append(f"written on a grid {pre.upsample}x finer through-plane "
                        f"({volume.spacing[2]:g} mm slices, {volume.shape[0]} slices) by super-resolution")
    return replace(
        volume,
        array=out,
        modality=pre.modality_out,
        units="HU" if pre.modality_out == "CT" else "MR display units (0-1000)",
        description=f"SYNTHETIC {pre.modality_out} ({mid})",
        synthetic=True,
        source=volume.source,
        warnings=(*volume.warnings, *warnings),
        meta={
            "model_id": mid,
            "model_method": model.info.method,
            "tta_flip": tta_flip,
            "source_description": volume.description,
            "source_modality": volume.modality,
            "task": pre.task or "mr_to_ct",
        },
    )
