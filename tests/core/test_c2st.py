"""The classifier two-sample test (C2ST): real chest films against themselves, against a
visibly different set, and through `medgan evaluate --c2st`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medgan_desktop.cli import main
from medgan_desktop.core.metrics.c2st import C2stError, auc_score, c2st, real_vs_real
from medgan_desktop.core.metrics.images import load_images


@pytest.fixture(scope="module")
def films(shared_data: Path) -> np.ndarray:
    files = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("IM-*.jpeg"))[:120]
    assert len(files) == 120, "the chest X-ray set in ../shared/data is incomplete"
    return load_images(files, size=32).stack(32)


def test_auc_matches_the_definition() -> None:
    s = np.array([0.1, 0.4, 0.35, 0.8])
    y = np.array([0, 0, 1, 1])
    assert auc_score(s, y) == pytest.approx(0.75)
    assert auc_score(np.ones(4), y) == pytest.approx(0.5)  # ties count half


def test_real_halves_are_near_chance_and_a_blurred_set_is_told_apart(films: np.ndarray) -> None:
    null = real_vs_real(films, size=32)
    assert null.set_a.startswith("real") and null.n_per_set == 60
    assert null.accuracy < 0.75 and null.p_value > 1e-4, null.describe()
    # the same films, smoothed and darkened: what a blurry generator makes
    k = np.ones((3, 3), np.float32) / 9
    from scipy.ndimage import convolve

    blurred = np.stack([convolve(f, k) * 0.8 for f in films[60:]]).astype(np.float32)
    rep = c2st(films[:60], blurred, size=32, epochs=10)
    assert rep.accuracy > 0.9 and rep.auc > 0.9 and rep.p_value < 1e-6, rep.describe()
    assert rep.accuracy > null.accuracy + 0.15
    again = c2st(films[:60], blurred, size=32, epochs=10)
    assert again == rep  # seeded: the same sets give the same numbers


def test_too_few_images_is_one_sentence(films: np.ndarray) -> None:
    with pytest.raises(C2stError, match="at least 10 images per set"):
        c2st(films[:4], films[4:8])


def test_evaluate_cli_c2st_with_the_training_images_as_null(tmp_path: Path, shared_data: Path, capsys) -> None:
    files = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("IM-*.jpeg"))[:60]
    train, real, fake = (tmp_path / n for n in ("train", "real", "fake"))
    for d in (train, real, fake):
        d.mkdir()
    for f in files[:20]:
        shutil.copy(f, train / f.name)
    for f in files[20:40]:
        shutil.copy(f, real / f.name)
    for i, f in enumerate(files[40:60]):
        img = np.asarray(Image.open(f).convert("L").resize((64, 64)), dtype=np.float32)
        Image.fromarray((img * 0.5).astype(np.uint8)).save(fake / f"sample_{i}.png")  # dark films
    html = tmp_path / "r.html"
    rc = main(["evaluate", "--real", str(real), "--fake", str(fake), "--train", str(train), "--c2st",
               "--c2st-size", "32", "--json", "--html", str(html)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["c2st"]["set_b"] == "synthetic" and d["c2st"]["n_per_set"] == 20
    assert d["c2st"]["accuracy"] > 0.85
    assert d["c2st_null"]["set_a"] == "real (training)" and d["c2st_null"]["set_b"] == "real (held out)"
    assert d["c2st"]["accuracy"] > d["c2st_null"]["accuracy"]
    assert "C2ST accuracy (0.5: indistinguishable)" in html.read_text()
    rc = main(["evaluate", "--real", str(real), "--fake", str(fake), "--c2st"])
    out = capsys.readouterr().out
    assert rc == 0 and "C2ST real vs synthetic: accuracy" in out and "real (half A) vs real (half B)" in out
