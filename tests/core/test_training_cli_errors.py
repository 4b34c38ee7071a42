"""``medgan train`` / ``medgan sample``: clear errors and recoveries on bad input and damaged runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medgan_desktop.cli import main
from medgan_desktop.core.gan.recommend import ALIAS, RECOMMENDED_METHOD, RECOMMENDED_OPTIONS
from medgan_desktop.core.models.runs import BROKEN_SUFFIX, checkpoint_path, list_checkpoints, state_path

TINY = ["--size", "16", "--batch", "4", "--device", "cpu", "--set", "base_filters=4", "--set", "latent_dim=8",
        "--set", "sample_every=0", "--set", "log_every=1", "--set", "threads=1"]


def _pngs(root: Path, n: int = 8, size: int = 20) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray((rng.random((size, size)) * 255).astype(np.uint8)).save(root / f"{i:03d}.png")
    return root


def _train(data: Path | str, out: Path | str, *extra: str, steps: int = 2, method: str = "dcgan") -> int:
    return main(["train", "--method", method, "--data", str(data), "--steps", str(steps), "--out", str(out),
                 *TINY, *extra])


def _run_json(run: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((run / "run.json").read_text())
    return info


# -- sample --out is checked before anything is loaded or sampled ----------------------------
@pytest.mark.parametrize(
    "case, fmt, message",
    [
        ("file", "png", "is a file"),
        ("under_file", "png", "cannot write to"),
        ("not_empty", "dicom", "is not empty"),
    ],
)
def test_sample_out_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, fmt: str, message: str
) -> None:
    # a folder without run.json: had --out been checked after loading, the error would be "not a run"
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.dcm").write_text("x")
    out = {"file": tmp_path / "f.txt", "under_file": tmp_path / "f.txt" / "sub", "not_empty": tmp_path / "full"}[case]
    assert main(["sample", "--model", str(model), "--n", "1", "--out", str(out), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "not a run" not in err


def test_sample_failure_leaves_no_empty_out_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model").mkdir()
    out = tmp_path / "new" / "samples"
    assert main(["sample", "--model", str(tmp_path / "model"), "--n", "1", "--out", str(out)]) == 2
    assert "not a run" in capsys.readouterr().err
    assert not out.exists()


# -- data path: absolute in run.json; resume from anywhere ------------------------------------
def test_resume_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _pngs(a / "data")
    b.mkdir()
    monkeypatch.chdir(a)
    assert _train("data", "run") == 0
    run = a / "run"
    assert _run_json(run)["train_config"]["data"]["path"] == str(a / "data")
    monkeypatch.chdir(b)
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 0
    assert [s for s, _ in list_checkpoints(run)][-1] == 3

    # a run written with a relative path (older versions): found beside the run folder
    info = _run_json(run)
    info["train_config"]["data"]["path"] = "data"
    (run / "run.json").write_text(json.dumps(info))
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 0

    # gone: the error names every place tried; --data says where it is now
    info["train_config"]["data"]["path"] = "moved"
    (run / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert str(b / "moved") in err and str(a / "moved") in err and "--data" in err
    assert main(["train", "--resume", str(run), "--steps", "5", "--data", str(a / "data")]) == 0


# -- --config / --set ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"method_config": {"lr_gg": 1}}, "unknown method_config key 'lr_gg' (did you mean 'lr_g'?)"),
        ({"train_config": {"stepz": 1}}, "unknown train_config key 'stepz'"),
        ({"train_config": {"data": {"sise": 16}}}, "unknown data key 'sise'"),
        ({"data": {"flipp": True}}, "unknown data key 'flipp'"),
        ({"method": "dcgan"}, "unknown config key 'method'"),
        ({"data": [1]}, "data must be a JSON object"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_config_unknown_keys_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cfg: object, message: str
) -> None:
    data = _pngs(tmp_path / "data")
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    assert _train(data, tmp_path / "run", "--config", str(f)) == 2
    err = capsys.readouterr().err
    assert (message in err and "valid keys" in err) or "JSON object" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setting, message",
    [
        ("lr_g=fast", "lr_g must be a number"),
        ("checkpoint_every=1.5", "checkpoint_every must be a whole number"),
        ("data.flip=2", "flip must be true or false"),
        ("diffaugment=1", "diffaugment must be text"),
    ],
)
def test_set_wrong_kind_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, message: str) -> None:
    assert _train(_pngs(tmp_path / "data"), tmp_path / "run", "--set", setting) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_config_sections_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    f = tmp_path / "c.json"
    f.write_text(json.dumps({
        "method_config": {"lr_d": 1e-4, "extra": {"loss": "hinge"}},
        "train_config": {"checkpoint_every": 1, "data": {"flip": True}},
        "data": {"rotate90": True},
    }))
    assert _train(data, tmp_path / "run", "--config", str(f), steps=1) == 0
    info = _run_json(tmp_path / "run")
    assert info["method_config"]["lr_d"] == 1e-4 and info["method_config"]["extra"] == {"loss": "hinge"}
    d = info["train_config"]["data"]
    assert d["flip"] and d["rotate90"] and d["size"] == 16


# -- recommended alias ----------------------------------------------------------------------------
def test_recommended_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    assert _train(data, tmp_path / "r1", method=ALIAS, steps=1) == 0
    mc = _run_json(tmp_path / "r1")["method_config"]
    assert _run_json(tmp_path / "r1")["method"] == RECOMMENDED_METHOD
    for k, v in RECOMMENDED_OPTIONS.items():
        assert mc[k] == v, k
    # explicit --set and --config win over the recommended options; a near-miss key is flagged
    key, other = sorted(RECOMMENDED_OPTIONS)[0], sorted(RECOMMENDED_OPTIONS)[-1]
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"method_config": {other: 0.5}}))
    capsys.readouterr()
    # a key that is neither a setting nor one of the method's options is refused, with a hint
    assert _train(data, tmp_path / "r2", "--set", "ema=0.5", method=ALIAS, steps=1) == 2
    assert "did you mean 'ema_decay'" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
    assert _train(data, tmp_path / "r2", "--set", f"{key}=", "--config", str(f),
                  "--set", "r1_gamma=0.5", method=ALIAS.upper(), steps=1) == 0
    mc2 = _run_json(tmp_path / "r2")["method_config"]
    assert mc2[key] == "" and mc2[other] == 0.5 and mc2["extra"] == {"r1_gamma": 0.5}
    assert _run_json(tmp_path / "r2")["label"].startswith(ALIAS)  # run.json says what was asked


def test_recommended_in_help_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--list-methods"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith(ALIAS))
    assert RECOMMENDED_METHOD in line
    assert "translate-train" in next(ln for ln in out.splitlines() if ln.startswith("pix2pix"))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"'{ALIAS}'" in capsys.readouterr().out


def test_translation_method_points_to_translate_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(_pngs(tmp_path / "data"), tmp_path / "run", method="pix2pix") == 2
    assert "medgan translate-train" in capsys.readouterr().err


# -- a failed start leaves no dead run folder -----------------------------------------------------
def test_failed_start_removes_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    (data / "zz_bad.png").write_text("not an image")
    run = tmp_path / "run"
    assert _train(data, run, "--set", "checkpoint_every=100", steps=20) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert not run.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert _train(data, kept, "--set", "checkpoint_every=100", steps=20) == 2
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    (data / "zz_bad.png").unlink()
    assert _train(data, run) == 0  # the same --out works again


def test_resume_without_checkpoint_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    run = tmp_path / "run"
    assert _train(data, run, steps=1) == 0
    for p in (run / "checkpoints").iterdir():
        p.unlink()
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err


# -- a truncated newest checkpoint: fall back to the newest intact one ------------------------
def test_resume_skips_truncated_newest_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _pngs(tmp_path / "data")
    run = tmp_path / "run"
    assert _train(data, run, "--set", "checkpoint_every=1", "--set", "keep_checkpoints=0", steps=3) == 0
    w3 = checkpoint_path(run, 3)
    w3.write_bytes(w3.read_bytes()[:200])
    s2 = state_path(checkpoint_path(run, 2))
    s2.write_bytes(s2.read_bytes()[:300])
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "1"]) == 2  # the total must pass the intact step 1
    assert "already reached step 1" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 0
    err = capsys.readouterr().err
    assert "step 3 is unreadable" in err and "step 2 is unreadable" in err and "from step 1" in err
    assert [s for s, _ in list_checkpoints(run)] == [1, 2, 3, 4]  # 2 and 3 retrained
    assert w3.with_name(w3.name + BROKEN_SUFFIX).is_file()
    metrics = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [1, 2, 3, 4]

    for _, p in list_checkpoints(run):
        p.write_bytes(b"")
    assert main(["train", "--resume", str(run), "--steps", "6"]) == 2
    assert "no intact checkpoint" in capsys.readouterr().err


# -- truncation on a method without it --------------------------------------------------------------
def test_truncation_without_support_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _train(_pngs(tmp_path / "data"), run, method="progressive", steps=1) == 0
    capsys.readouterr()
    out = tmp_path / "s"
    assert main(["sample", "--model", str(run), "--n", "2", "--truncation", "0.5", "--out", str(out)]) == 0
    assert "does not apply" in capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == 2


def test_sample_by_folder_path_checks_catalogued_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user model given as its folder path is verified like its id: tampered weights refused."""
    from medgan_desktop.core.models.registry import ModelRegistry

    repo = Path(__file__).resolve().parents[2]
    entry = ModelRegistry().import_model(repo / "models" / "cxr_cgan_64", "cxr_copy")
    w = entry.weights_path
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    for ref in ("cxr_copy", str(entry.folder)):
        rc = main(["sample", "--model", ref, "--n", "1", "--out", str(tmp_path / "o")])
        assert rc == 2, ref
        assert "sha256" in capsys.readouterr().err.lower()
    assert not (tmp_path / "o").exists()  # the folder sample created for the refused model is gone


def test_empty_data_folder_is_named_as_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    rc = main(["train", "--method", "dcgan", "--data", str(tmp_path / "empty"), "--steps", "2",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "is empty" in err and "files: )" not in err
    assert not (tmp_path / "run").exists()
