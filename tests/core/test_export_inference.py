"""Inference-only export: a shippable copy translates like the run, is small, and says what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from medgan_desktop.cli import main as cli_main
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.models.runs import ModelLoadError, export_inference, load_model, weights_metadata
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


def test_exported_file_alone_imports_and_translates(tmp_path: Path) -> None:
    """The exported weights carry run.json, so the bare file is a complete model."""
    import json
    import shutil

    from medgan_desktop.core.config import AppPaths
    from medgan_desktop.core.models.registry import ModelRegistry
    from medgan_desktop.core.models.runs import RUN_META_KEY, embedded_run

    dest = export_inference(FULL_RUN, tmp_path / "e", half=True)
    assert json.loads(weights_metadata(dest.read_bytes())[RUN_META_KEY]) == json.loads(
        (FULL_RUN / "run.json").read_text())
    bare = tmp_path / "mail" / "head.safetensors"
    bare.parent.mkdir()
    shutil.copy(dest, bare)
    assert embedded_run(bare) is not None and embedded_run(bare)["method"] == "cyclegan"
    reg = ModelRegistry(AppPaths(data_dir=tmp_path / "data", install_dir=tmp_path / "install"))
    entry = reg.import_model(bare)
    assert entry.id == "head" and entry.task == "translation" and entry.modality_in == "MR"
    vol = _mr()
    a = translate(vol, load_model(tmp_path / "e")).array
    b = translate(vol, load_model(reg.resolve("head"))).array
    assert np.array_equal(a, b)


def test_saved_weights_embed_the_run_json(tmp_path: Path) -> None:
    """Training writes weights and checkpoints that name their run (run.json beside or one up)."""
    from medgan_desktop.core.models.runs import CHECKPOINTS, RUN_META_KEY, embedded_run, save_weights

    model = load_model(FULL_RUN)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_bytes((FULL_RUN / "run.json").read_bytes())
    save_weights(run / "weights.safetensors", model.method)
    save_weights(run / CHECKPOINTS / "step_00000001.safetensors", model.method)
    for f in (run / "weights.safetensors", run / CHECKPOINTS / "step_00000001.safetensors"):
        meta = weights_metadata(f.read_bytes())
        assert meta["method"] == "cyclegan"
        assert meta[RUN_META_KEY] == (FULL_RUN / "run.json").read_text()
    assert load_model(run).info.method == "cyclegan"  # the larger header still loads
    lone = tmp_path / "lone.safetensors"
    save_weights(lone, model.method)
    assert embedded_run(lone) is None
    save_weights(lone, model.method, run_json='{"method": "cyclegan"}')
    assert embedded_run(lone) == {"method": "cyclegan"}
