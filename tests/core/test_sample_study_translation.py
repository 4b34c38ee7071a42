"""The first-launch chain: the sample study's head MR, translated by the shipped head model.

This is what the README promises on first launch: File → Open sample study, then Translate
with the default model. The study is built by the project's own code from the Debian
packages' files, the MR series is read back from its DICOM files, the model is resolved by
id through the registry (sha256 checked), and the synthetic CT is compared with the numbers
in the model card.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.io import open_volume
from medgan_desktop.core.jobs.sample_study import SampleSources, ensure_sample_study
from medgan_desktop.core.models.registry import ModelRegistry
from medgan_desktop.core.models.runs import load_model

REPO = Path(__file__).resolve().parents[2]
MODEL_ID = "head_mrct_cyclegan"


def _card_bone_percent() -> float:
    """The synthetic CT's bone fraction (≥ 300 HU in the head) as the model card states it."""
    card = (REPO / "models" / MODEL_ID / "card.md").read_text(encoding="utf-8")
    m = re.search(r"in head: ≥ 300 \(bone\) \| ([\d.]+) %", card)
    assert m, "the card no longer states the bone fraction of the translated sample MR"
    return float(m.group(1))


def _head_mask(mr: np.ndarray) -> np.ndarray:
    """As in the card: MR > 10 % of its 99.5th percentile, closed and hole-filled per slice."""
    a = mr.astype(np.float32)
    mask = a > 0.1 * np.percentile(a, 99.5)
    return np.stack([ndimage.binary_fill_holes(ndimage.binary_closing(s, iterations=2)) for s in mask])


def test_sample_study_mr_translates_with_the_shipped_head_model(tmp_path: Path) -> None:
    missing = SampleSources().missing()
    if missing:
        pytest.fail(f"install the Debian packages (bootstrap.sh does): missing {missing}")
    torch.set_num_threads(1)
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=REPO)
    study = ensure_sample_study(paths)
    mr = open_volume(study / "MR")
    assert mr.modality == "MR" and mr.shape[0] > 80

    reg = ModelRegistry(paths)
    assert reg.get(MODEL_ID).modality_in == "MR" and reg.get(MODEL_ID).modality_out == "CT"
    model = load_model(reg.resolve(MODEL_ID))
    syn = translate(mr, model, batch_size=32)

    # on the MR's grid, labelled as a synthetic CT in HU
    assert syn.shape == mr.shape
    np.testing.assert_allclose(syn.spacing, mr.spacing, atol=1e-6)
    np.testing.assert_allclose(syn.origin, mr.origin, atol=1e-6)
    np.testing.assert_allclose(np.asarray(syn.direction), np.asarray(mr.direction), atol=1e-6)
    assert syn.modality == "CT" and syn.units == "HU" and syn.synthetic
    hu = syn.array
    assert np.isfinite(hu).all() and hu.min() >= -1024.5 and hu.max() <= 3000.5

    head = _head_mask(mr.array)
    assert 0.3 < head.mean() < 0.8
    assert np.median(hu[~head]) < -800  # air around the head
    bone = 100.0 * float((hu[head] >= 300).mean())
    assert abs(bone - _card_bone_percent()) < 3.0, bone  # card: 17.4 % (real CT: 17.9 %)
    inner = np.stack([ndimage.binary_erosion(s, iterations=10) for s in head])
    assert -50 < np.median(hu[inner]) < 150  # brain comes out as soft tissue (card: 31 HU)
