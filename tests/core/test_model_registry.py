"""The model catalogue: schema, sha256 checks, user imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medgan_desktop.cli import main
from medgan_desktop.core.config import AppPaths
from medgan_desktop.core.models.registry import (
    ModelError,
    ModelRegistry,
    read_manifest,
    sha256_file,
)

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


def test_models_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _fake_run(tmp_path)
    assert main(["models", "import", str(run), "--id", "cli_model"]) == 0
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert any(m["id"] == "cli_model" for m in listed)
    assert main(["models", "card", "cli_model"]) == 0
    assert "cli_model" in capsys.readouterr().out
    assert main(["models", "card", "missing"]) == 2
