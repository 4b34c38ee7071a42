"""Train the shipped feature extractor (:class:`MedFeatureNet`) on open chest X-rays.

Supervision: NORMAL vs PNEUMONIA (class-weighted cross-entropy) plus a
self-supervised rotation task (each image is rotated by 0/90/180/270° and the
network predicts which), so the embedding keeps orientation and anatomy cues
and not only the diagnosis. A stratified held-out split measures accuracy.

Run (single thread, a few minutes on a laptop CPU)::

    python -m medgan_desktop.core.metrics.train_extractor \
        --data ../shared/data/chest_xray/train --out models/feature_extractor

or ``medgan evaluate --train-extractor DATA --out DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from medgan_desktop.core.metrics.features import MED_INPUT_SIZE, MedFeatureNet
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import IntArray, JsonObject

CLASSES = ("NORMAL", "PNEUMONIA")


def patient_id(name: str) -> str:
    """The patient a Kermany file belongs to (``person12_virus_3`` -> ``person12``,
    ``IM-0115-0001`` -> ``IM-0115``, ``NORMAL2-IM-0955-0001`` -> ``NORMAL2-IM-0955``)."""
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("person"):
        return stem.split("_")[0]
    return stem.rsplit("-", 1)[0]


def load_dataset(
    root: Path, size: int = MED_INPUT_SIZE, progress: ProgressCallback = no_progress
) -> tuple[NDArray[np.float32], NDArray[np.int64], list[str]]:
    """Images (N, size, size) in [0, 1], labels and file names from ``root/{NORMAL,PNEUMONIA}``."""
    from PIL import Image

    xs: list[NDArray[np.float32]] = []
    ys: list[int] = []
    files = [(f, c) for c, name in enumerate(CLASSES)
             for f in sorted((root / name).glob("*")) if f.is_file()]
    if not files:
        raise FileNotFoundError(f"no images under {root}/{{NORMAL,PNEUMONIA}}")
    for n, (f, c) in enumerate(files):
        with Image.open(f) as im:
            im.draft("L", (size * 2, size * 2))
            g = im.convert("L").resize((size, size), Image.Resampling.BILINEAR)
            xs.append(np.asarray(g, dtype=np.float32) / 255.0)
        ys.append(c)
        if n % 500 == 0:
            progress(Progress(n, len(files), "reading images"))
    return np.stack(xs), np.asarray(ys, dtype=np.int64), [f.name for f, _ in files]


def split(labels: NDArray[np.int64], held_out: float, seed: int) -> tuple[IntArray, IntArray]:
    """Stratified train/held-out indices."""
    rng = np.random.default_rng(seed)
    tr: list[int] = []
    te: list[int] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = round(len(idx) * held_out)
        te.extend(idx[:k].tolist())
        tr.extend(idx[k:].tolist())
    return np.asarray(sorted(tr)), np.asarray(sorted(te))


def _augment(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random shift (±4 px) and a random quarter rotation; returns images, rotation labels."""
    n = x.shape[0]
    pad = F.pad(x, (4, 4, 4, 4), mode="replicate")
    dx, dy = torch.randint(0, 9, (2,), generator=gen).tolist()
    x = pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    rot = torch.randint(0, 4, (n,), generator=gen)
    out = torch.stack([torch.rot90(x[i], int(rot[i]), dims=(1, 2)) for i in range(n)])
    return out, rot


def evaluate(net: MedFeatureNet, x: NDArray[np.float32], y: NDArray[np.int64]) -> dict[str, float]:
    """Held-out class accuracy (upright images), balanced accuracy and rotation accuracy."""
    net.eval()
    preds: list[IntArray] = []
    rot_ok = 0
    with torch.inference_mode():
        for s in range(0, len(x), 256):
            xb = torch.from_numpy(x[s:s + 256])[:, None]
            cls, _ = net(xb)
            preds.append(cls.argmax(1).numpy())
            k = (np.arange(len(xb)) % 4)
            xr = torch.stack([torch.rot90(xb[i], int(k[i]), dims=(1, 2)) for i in range(len(xb))])
            _, rot = net(xr)
            rot_ok += int((rot.argmax(1).numpy() == k).sum())
    p = np.concatenate(preds)
    recalls = [float((p[y == c] == c).mean()) for c in np.unique(y)]
    return {
        "accuracy": float((p == y).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "rotation_accuracy": rot_ok / len(x),
        "n": len(y),
    }


def patient_disjoint(
    net: MedFeatureNet,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    names: list[str],
    tr: IntArray,
    te: IntArray,
) -> dict[str, float]:
    """Held-out metrics on the images whose patient has no image in the training split.

    The split is by image (some patients have several X-rays), so the plain held-out
    accuracy can be optimistic; this subset is free of that leak.
    """
    train_patients = {patient_id(names[i]) for i in tr}
    keep = np.asarray([i for i in te if patient_id(names[i]) not in train_patients], dtype=np.int64)
    if keep.size == 0:
        return {"n": 0}
    return evaluate(net, x[keep], y[keep])


def reevaluate(data: Path, out: Path) -> JsonObject:
    """Recompute the held-out metrics of saved weights and rewrite run.json and card.md."""
    from safetensors.torch import load_file

    run: JsonObject = json.loads((out / "run.json").read_text())
    net = MedFeatureNet()
    net.load_state_dict(load_file(str(out / "weights.safetensors")))
    x, y, names = load_dataset(data)
    tr, te = split(y, float(run["held_out_fraction"]), int(run["seed"]))
    torch.set_num_threads(1)
    held = evaluate(net, x[te], y[te])
    held.update({k: run["held_out"][k] for k in ("epoch", "train_loss") if k in run["held_out"]})
    run["held_out"] = held
    run["held_out_patient_disjoint"] = patient_disjoint(net, x, y, names, tr, te)
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out / "card.md").write_text(_card(run))
    return run


def train(
    data: Path,
    out: Path,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 2e-3,
    held_out: float = 0.15,
    seed: int = 0,
    threads: int = 1,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    command: str = "",
) -> JsonObject:
    """Train, evaluate on the held-out split and write weights, run.json and card.md."""
    from safetensors.torch import save_file

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.monotonic()
    x, y, names = load_dataset(data, progress=progress)
    tr, te = split(y, held_out, seed)
    net = MedFeatureNet()
    counts = np.bincount(y[tr], minlength=len(CLASSES)).astype(np.float64)
    weight = torch.tensor(counts.sum() / (len(CLASSES) * counts), dtype=torch.float32)
    steps_per_epoch = len(tr) // batch_size
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x)[:, None]
    yt = torch.from_numpy(y)
    history: list[dict[str, float]] = []
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(tr), generator=gen)
        tot = 0.0
        for s in range(steps_per_epoch):
            if cancel is not None:
                cancel.check()
            idx = torch.from_numpy(tr)[perm[s * batch_size:(s + 1) * batch_size]]
            xb, rot = _augment(xt[idx], gen)
            cls, rlog = net(xb)
            loss = F.cross_entropy(cls, yt[idx], weight=weight) + F.cross_entropy(rlog, rot)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
            progress(Progress(ep * steps_per_epoch + s + 1, epochs * steps_per_epoch,
                              f"epoch {ep + 1}/{epochs} loss {tot / (s + 1):.3f}"))
        m = evaluate(net, x[te], y[te])
        m.update(epoch=ep + 1, train_loss=tot / max(1, steps_per_epoch))
        history.append(m)
        print(json.dumps(m), flush=True)
    metrics = history[-1]
    disjoint = patient_disjoint(net, x, y, names, tr, te)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / "weights.safetensors"))
    sha = hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest()
    n_params = sum(p.numel() for p in net.parameters())
    run = {
        "format": 1,
        "method": "feature_extractor",
        "task": "features",
        "id": "medfeaturenet-cxr64-v1",
        "architecture": "MedFeatureNet",
        "input": {"channels": 1, "size": MED_INPUT_SIZE, "range": [0.0, 1.0]},
        "feature_dim": 256,
        "parameters": int(n_params),
        "sha256": sha,
        "training_data": "Kermany et al. 2018 paediatric chest X-rays (train split, 5,216 images)",
        "licence": "CC BY 4.0 (data); weights released with this project",
        "classes": list(CLASSES),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "held_out_fraction": held_out,
        "held_out": metrics,
        "held_out_patient_disjoint": disjoint,
        "history": history,
        "train_seconds": round(time.monotonic() - t0, 1),
        "command": command,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out / "card.md").write_text(_card(run))
    return run


def _card(run: JsonObject) -> str:
    m = run["held_out"]
    pd = run.get("held_out_patient_disjoint", {"n": 0})
    disjoint = (f"On the {pd['n']} held-out images whose patient has no image in the training "
                f"split (the split is by image and some children have several X-rays): accuracy "
                f"{pd['accuracy']:.3f}, balanced accuracy {pd['balanced_accuracy']:.3f}."
                if pd.get("n") else "")
    return f"""# Model card: MedFeatureNet feature extractor (`{run["id"]}`)

**What it is.** A compact CNN ({run["parameters"]:,} parameters, 64x64 grey input in [0, 1],
256-d global-average-pooled embedding) that medgan_desktop ships so that the unpaired
metrics (Fréchet distance, KID, precision/recall, density/coverage, memorisation search)
work offline without the InceptionV3 FID weights.

**Intended use.** Comparing sets of real and synthetic 2D radiographs *relative to each
other* (model A vs model B, epoch N vs epoch M) and finding near-copies of training
images. Its Fréchet distance is reported as `fd`/`fid` *in this feature space*: it is
not comparable with published FID values computed with InceptionV3. Not a diagnostic
model: its classification head must not be used on patients.

**Training data.** Kermany D, Zhang K, Goldbaum M (2018), "Labeled Optical Coherence
Tomography (OCT) and Chest X-Ray Images for Classification", Mendeley Data v2,
doi:10.17632/rscbjbr9sj.2 (Kermany DS et al., Cell 172(5):1122-1131, 2018), released
under **CC BY 4.0**: the 5,216 paediatric frontal chest X-rays of the original train
split (NORMAL 1,341 / PNEUMONIA 3,875). The copy used was a public GitHub snapshot of
that set already resized to 224² (file names and split match the original release; the
licence was taken from the original release and could not be re-checked offline),
resized to 64² here. No image is redistributed with the model.

**Training.** NORMAL/PNEUMONIA cross-entropy (class-weighted) plus self-supervised
rotation prediction (0/90/180/270°), random shifts of ±4 px; AdamW, one-cycle LR
{run["lr"]}, batch {run["batch_size"]}, {run["epochs"]} epochs, seed {run["seed"]},
1 CPU thread, {run["train_seconds"]} s. A stratified {run["held_out_fraction"]:.0%} of
the images was held out and never trained on.

**Held-out results** (n = {m["n"]}): accuracy {m["accuracy"]:.3f}, balanced accuracy
{m["balanced_accuracy"]:.3f}, rotation accuracy {m["rotation_accuracy"]:.3f}.
{disjoint}

**Limitations.** Trained on paediatric chest X-rays only: features of CT/MR slices or
adult radiographs are less meaningful (still useful for relative comparisons and
near-copy search in pixel-like space). Small images (64²) hide fine texture artefacts.

**Reproduce.**

```
{run["command"]}
```

weights sha256: `{run["sha256"]}`
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with NORMAL/ and PNEUMONIA/")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reevaluate", action="store_true",
                    help="recompute held-out metrics of the weights in --out (no training)")
    args = ap.parse_args(argv)
    if args.reevaluate:
        run = reevaluate(args.data, args.out)
        print(json.dumps({"held_out": run["held_out"],
                          "patient_disjoint": run["held_out_patient_disjoint"]}))
        return 0
    cmd = "python -m medgan_desktop.core.metrics.train_extractor " + " ".join(
        argv if argv is not None else sys.argv[1:])
    run = train(args.data, args.out, epochs=args.epochs, seed=args.seed, threads=args.threads,
                command=cmd)
    print(json.dumps(run["held_out"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
