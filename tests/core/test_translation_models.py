"""The shipped MR -> CT models load, translate the real phantom MR sensibly and carry a card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medgan_desktop.core.imaging.slices import volume_slab
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.io import open_volume
from medgan_desktop.core.models.runs import load_model

REPO = Path(__file__).resolve().parents[2]
PHANTOM = REPO / ".." / "shared" / "data" / "mridir_phantom"
MODELS = ["mrct_phantom_pix2pix", "mrct_phantom_student"]


@pytest.fixture(scope="module")
def phantom() -> tuple[object, np.ndarray]:
    if not (PHANTOM / "MR_T2_DICOM").is_dir():
        pytest.fail(f"real test data missing at {PHANTOM}")
    mr = open_volume(PHANTOM / "MR_T2_DICOM")
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "CT_rigid_to_MR_grid.nii.gz")))
    return mr, ct


@pytest.mark.parametrize("model_id", MODELS)
def test_shipped_model_translates_phantom(model_id: str, phantom) -> None:  # type: ignore[no-untyped-def]
    folder = REPO / "models" / model_id
    assert (folder / "weights.safetensors").stat().st_size < 16 * 2**20
    assert not (folder / "checkpoints").exists()
    card = (folder / "card.md").read_text(encoding="utf-8")
    assert "not for diagnosis" in card and "10.7937/K9/TCIA.2018.3f08iejt" in card
    assert "medgan translate-train" in card
    model = load_model(folder)
    assert model.info.task == "translation" and model.info.preprocessing.modality_in == "MR"
    mr, ct = phantom
    ks = range(0, 68)  # the training part: the model must have learnt it
    syn = translate(volume_slab(mr, ks), model)
    ref = ct[0:68]
    body = ref > -500
    mae = float(np.abs(syn.array - ref)[body].mean())
    assert mae < 150, mae
    # Bone (>300 HU in the reference) comes out denser than soft tissue.
    assert syn.array[ref > 400].mean() > syn.array[(ref > -100) & (ref < 100)].mean() + 150
