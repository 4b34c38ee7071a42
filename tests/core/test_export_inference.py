"""Inference-only export: a shippable copy translates like the run, is small, and says what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from medgan_desktop.cli import main as cli_main
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.training.run import (
    ModelLoadError,
    export_inference,
    load_model,
    weights_metadata,
)
from medgan_desktop.core.volume import Volume

REPO = Path(__file__).resolve().parents[2]
FULL_RUN = REPO / "models" / "head_mrct_cyclegan"  # shipped with all four networks


def _mr() -> Volume:
    rng = np.random.default_rng(0)
    arr = np.zeros((6, 40, 40), np.float32)
    arr[:, 8:32, 10:30] = 300 + 50 * rng.standard_normal((6, 24, 20))
    return Volume(arr, modality="MR")


def test_export_keeps_only_the_inference_network_and_translates_alike(tmp_path: Path) -> None:
    out = tmp_path / "shipped"
    dest = export_inference(FULL_RUN, out, half=True)
    full = load_file(str(FULL_RUN / "weights.safetensors"))
    small = load_file(str(dest))
    assert {k.split(".")[0] for k in small} == {"G_AB"}  # no discriminators, no reverse generator
    assert {k.split(".")[0] for k in full} > {"G_AB"}
    assert dest.stat().st_size < 0.6 * (FULL_RUN / "weights.safetensors").stat().st_size
    meta = weights_metadata(dest.read_bytes())
    assert meta["medgan.scope"] == "inference" and meta["dtype"] == "float16"
    assert (out / "run.json").read_bytes() == (FULL_RUN / "run.json").read_bytes()

    vol = _mr()
    a = translate(vol, load_model(FULL_RUN)).array
    b = translate(vol, load_model(out)).array
    assert np.abs(a - b).max() < 20.0  # HU: float16 rounding of the weights only
    assert np.abs(a - b).mean() < 2.0


def test_a_full_file_missing_a_network_is_still_refused(tmp_path: Path) -> None:
    """Only files marked inference-only may lack the training networks."""
    from safetensors.torch import save_file

    out = tmp_path / "m"
    export_inference(FULL_RUN, out)
    tensors = load_file(str(out / "weights.safetensors"))
    save_file(tensors, str(out / "weights.safetensors"), metadata={"method": "cyclegan"})
    with pytest.raises(ModelLoadError, match="no weights for network"):
        load_model(out)


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "export", str(FULL_RUN), str(tmp_path / "e"), "--half"]) == 0
    assert "exported" in capsys.readouterr().out
    assert cli_main(["models", "export", str(tmp_path / "missing"), str(tmp_path / "f")]) != 0
    assert "no run.json" in capsys.readouterr().err
