"""The shipped class-conditional chest X-ray generator loads through the catalogue
(sha256 checked) and samples by class name or index, deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan_desktop.cli import main
from medgan_desktop.core.inference.sample import SampleError, sample
from medgan_desktop.core.models.registry import resolve_model
from medgan_desktop.core.models.runs import load_model


def test_shipped_cgan_samples_each_class_by_name_and_index() -> None:
    model = load_model(resolve_model("cxr_cgan_64"))
    assert model.info.preprocessing.class_names == ("NORMAL", "PNEUMONIA")
    assert model.info.preprocessing.modality_out == "CR"
    by_name = sample(model, 4, seed=3, label="PNEUMONIA")
    by_index = sample(model, 4, seed=3, label=1)
    normal = sample(model, 4, seed=3, label="NORMAL")
    assert by_name.shape == (4, 1, 64, 64)
    np.testing.assert_array_equal(by_name, by_index)
    assert np.abs(by_name - normal).mean() > 0.01  # the label changes the image
    assert by_name.std() > 0.05  # not a constant image
    with pytest.raises(SampleError, match="unknown class"):
        sample(model, 1, label="COVID")
    with pytest.raises(SampleError, match="out of range"):
        sample(model, 1, label=2)


def test_sample_cli_with_shipped_model_id(tmp_path: Path) -> None:
    out = tmp_path / "x"
    assert main(["sample", "--model", "cxr_cgan_64", "--n", "3", "--label", "NORMAL", "--out", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 3
    assert main(["sample", "--model", "cxr_cgan_64", "--n", "1", "--label", "7", "--out", str(out)]) == 2
