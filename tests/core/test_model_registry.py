"""The model catalogue: schema, sha256 checks, user imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medgan_desktop.cli import main
from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.models.registry import ModelError, ModelRegistry, read_manifest, sha256_file

REPO = Path(__file__).resolve().parents[2]


def test_shipped_manifest_matches_schema_and_weights() -> None:
    entries = read_manifest(REPO / "models", shipped=True)
    reg = ModelRegistry(AppPaths(data_dir=REPO / "unused", install_dir=REPO))
    for e in entries:
        assert reg.verify(e) == e.folder
        assert e.raw["intended_use"].startswith("research")
        assert e.card_path.is_file(), f"{e.id} has no model card"
        assert "url" not in json.dumps(e.raw).lower().replace("curl", "")
    total = sum(p.stat().st_size for p in (REPO / "models").rglob("*") if p.is_file())
    assert total < 100 * 1024 * 1024


def _fake_run(tmp: Path) -> Path:
    run = tmp / "my_run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "format": 1, "method": "dcgan", "task": "synthesis",
        "preprocessing": {"modality_out": "CR", "size": 32}, "data": {"name": "local"},
    }))
    (run / "weights.safetensors").write_bytes(b"not really weights but bytes")
    return run


def test_import_and_tamper_detection(tmp_path: Path) -> None:
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=tmp_path / "install")
    reg = ModelRegistry(paths)
    entry = reg.import_model(_fake_run(tmp_path))
    assert entry.id == "my_run" and not entry.shipped
    assert reg.resolve("my_run") == paths.user_models_dir / "my_run"
    assert entry.sha256 == sha256_file(entry.weights_path)
    entry.weights_path.write_bytes(b"tampered")
    with pytest.raises(ModelError, match="does not match"):
        reg.resolve("my_run")
    entry.weights_path.unlink()
    with pytest.raises(ModelError, match="missing"):
        reg.resolve("my_run")
    with pytest.raises(ModelError, match="no model with id"):
        reg.resolve("nope")


def _real_run(tmp: Path) -> Path:
    """A tiny trained-looking DCGAN run whose weights load into their method."""
    import torch

    from medgan_desktop.core.gan.methods.base import MethodConfig, get_method
    from medgan_desktop.core.models.runs import Preprocessing, new_run_info, save_weights, write_run_json

    run = tmp / "my_run"
    run.mkdir()
    cfg = MethodConfig(size=16, latent_dim=8, base_filters=4)
    method = get_method("dcgan")(cfg, torch.device("cpu"))
    write_run_json(new_run_info(run, "dcgan", "synthesis", cfg, {}, Preprocessing(size=16), {"name": "local"}))
    save_weights(run / "weights.safetensors", method)
    return run


def test_models_import_refuses_weights_that_do_not_load(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(_fake_run(tmp_path)), "--id", "junk"]) == 2
    assert "cannot be imported" in capsys.readouterr().err
    assert main(["models", "list", "--json"]) == 0
    assert not any(m["id"] == "junk" for m in json.loads(capsys.readouterr().out or "[]"))


def test_models_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _real_run(tmp_path)
    assert main(["models", "import", str(run), "--id", "cli_model"]) == 0
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert any(m["id"] == "cli_model" for m in listed)
    assert main(["models", "card", "cli_model"]) == 0
    assert "cli_model" in capsys.readouterr().out
    assert main(["models", "card", "missing"]) == 2


def _safetensors(path: Path, metadata: dict[str, str] | None) -> Path:
    import torch
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"G.w": torch.zeros(2, 2)}, str(path), metadata=metadata)
    return path


def test_resolve_by_path_inside_a_models_folder_checks_the_sha256(tmp_path: Path) -> None:
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=tmp_path / "install")
    reg = ModelRegistry(paths)
    entry = reg.import_model(_fake_run(tmp_path))
    folder = entry.folder
    assert reg.resolve(folder) == folder and reg.resolve(str(folder / "weights.safetensors")) == folder
    entry.weights_path.write_bytes(b"tampered")
    for ref in (folder, str(folder), folder / "weights.safetensors"):
        with pytest.raises(ModelError, match="does not match"):
            reg.resolve(ref)
    # a run folder dropped into the models folder without a manifest entry is refused
    stray = paths.user_models_dir / "stray"
    stray.mkdir()
    (stray / "run.json").write_text("{}")
    with pytest.raises(ModelError, match="not in its manifest"):
        reg.resolve(stray)
    # a training run elsewhere loads as it is (it has no manifest)
    (tmp_path / "elsewhere").mkdir()
    run = _fake_run(tmp_path / "elsewhere")
    assert reg.resolve(run) == run


def test_shipped_model_by_path_is_verified(tmp_path: Path) -> None:
    import shutil

    install = tmp_path / "install"
    (install / "models").mkdir(parents=True)
    shutil.copy(REPO / "models" / "manifest.json", install / "models" / "manifest.json")
    shutil.copy(REPO / "models" / "manifest.schema.json", install / "models" / "manifest.schema.json")
    shutil.copytree(REPO / "models" / "cxr_cgan_64", install / "models" / "cxr_cgan_64")
    reg = ModelRegistry(AppPaths(data_dir=tmp_path / "data", install_dir=install))
    folder = install / "models" / "cxr_cgan_64"
    assert reg.resolve(folder) == folder
    weights = folder / reg.get("cxr_cgan_64").weights
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match"):
        reg.resolve(folder)
    with pytest.raises(ModelError, match="does not match"):
        reg.resolve("cxr_cgan_64")


def test_reimport_is_refused_unless_replaced(tmp_path: Path) -> None:
    from medgan_desktop.core.models.registry import ModelExistsError

    paths = AppPaths(data_dir=tmp_path / "data", install_dir=REPO)
    reg = ModelRegistry(paths)
    run = _fake_run(tmp_path)
    first = reg.import_model(run, "mine")
    (run / "weights.safetensors").write_bytes(b"retrained weights")
    with pytest.raises(ModelExistsError, match="already exists"):
        reg.import_model(run, "mine")
    assert first.weights_path.read_bytes() == b"not really weights but bytes"  # untouched
    again = reg.import_model(run, "mine", replace=True)
    assert again.weights_path.read_bytes() == b"retrained weights"
    assert reg.get("mine").sha256 == sha256_file(again.weights_path)
    assert [e.id for e in reg.entries()].count("mine") == 1
    with pytest.raises(ModelError, match="shipped model"):
        reg.import_model(run, "cxr_cgan_64", replace=True)


def test_bare_weights_file_with_embedded_run_and_card(tmp_path: Path) -> None:
    paths = AppPaths(data_dir=tmp_path / "data", install_dir=tmp_path / "install")
    reg = ModelRegistry(paths)
    run = {"format": 1, "method": "dcgan", "task": "synthesis",
           "preprocessing": {"modality_out": "CR", "size": 32}, "data": {"name": "local"}}
    bare = _safetensors(tmp_path / "dl" / "chest.safetensors", {"medgan.run": json.dumps(run)})
    card = tmp_path / "dl" / "chest.md"
    card.write_text("# chest\n\nMy card.\n")
    entry = reg.import_model(bare, card=card)
    assert entry.id == "chest" and entry.method == "dcgan" and entry.size == 32
    assert json.loads((entry.folder / "run.json").read_text()) == run
    assert entry.card_text().startswith("# chest\n\nMy card.")
    assert reg.resolve("chest") == entry.folder

    plain = _safetensors(tmp_path / "dl2" / "plain.safetensors", {"method": "dcgan"})
    with pytest.raises(ModelError, match=r"no run\.json beside it and no run description") as err:
        reg.import_model(plain)
    assert "medgan.run" in str(err.value)
    with pytest.raises(ModelError, match="does not exist"):
        reg.import_model(bare, "other", card=tmp_path / "missing.md")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 4)
    with pytest.raises(ModelError, match="not a safetensors"):
        reg.import_model(junk)


def test_models_cli_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _real_run(tmp_path)
    assert main(["models", "import", str(run), "--id", "twice"]) == 0
    assert main(["models", "import", str(run), "--id", "twice"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["models", "import", str(run), "--id", "twice", "--replace"]) == 0
