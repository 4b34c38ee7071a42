"""SamplePanel: lists runs, same seed -> same images, labels, interpolation, enlarge, PNG/DICOM export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import AppPaths, Settings
from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.models.runs import Preprocessing
from medgan_desktop.core.training.config import TrainConfig
from medgan_desktop.core.training.loop import train
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.sample import SamplePanel


class _Labelled:
    preprocessing = Preprocessing(size=16, class_names=("NORMAL", "PNEUMONIA"))

    def __init__(self) -> None:
        self.x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return 8

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"target": self.x[key[0]], "label": torch.tensor(key[0] % 2)}

    def describe(self) -> dict[str, object]:
        return {"kind": "test"}


@pytest.fixture()
def panel(qtbot, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    paths = AppPaths.default().ensure()
    train("cgan", MethodConfig(size=16, latent_dim=8, base_filters=4, num_classes=2),
          TrainConfig(steps=2, batch_size=4, sample_every=0), _Labelled(), paths.runs_dir / "cgan-test")
    ctx = AppContext(Settings.default())
    w = SamplePanel(ctx)
    w.messages = messages  # type: ignore[attr-defined]
    qtbot.addWidget(w)
    yield w
    for worker in ctx.workers.running():
        worker.cancel()
    qtbot.waitUntil(lambda: not ctx.workers.running(), timeout=30_000)


def _generate(qtbot, panel: SamplePanel) -> np.ndarray:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: panel.generate_btn.isEnabled(), timeout=30_000)  # previous worker done
    panel.images = None
    panel.generate()
    qtbot.waitUntil(lambda: panel.images is not None, timeout=30_000)
    assert panel.images is not None
    return panel.images


def test_sample_same_seed_and_export(qtbot, panel: SamplePanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    texts = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert any("cxr_cgan_64" in t for t in texts), texts  # the shipped generator is offered
    run_index = next(i for i, t in enumerate(texts) if "cgan-test" in t)
    panel.model_combo.setCurrentIndex(run_index)
    assert panel.label_combo.isEnabled() and panel.label_combo.itemText(2) == "PNEUMONIA"
    panel.n_spin.setValue(4)
    panel.seed_spin.setValue(3)
    panel.label_combo.setCurrentIndex(2)
    a = _generate(qtbot, panel)
    b = _generate(qtbot, panel)
    assert a.shape == (4, 1, 16, 16) and np.array_equal(a, b)
    assert panel.grid.count() == 4
    panel.seed_spin.setValue(4)
    assert not np.array_equal(a, _generate(qtbot, panel))
    panel.trunc_check.setChecked(True)
    panel.trunc_spin.setValue(0.5)
    assert _generate(qtbot, panel).shape == (4, 1, 16, 16)

    panel._enlarge(panel.grid.item(1))
    assert panel.enlarged.isVisible()
    panel.enlarged.close()

    pngs = panel.export("png", tmp_path / "png")
    assert len(pngs) == 4 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    dcms = panel.export("dicom", tmp_path / "dcm")
    assert len(dcms) == 4
    ds = pydicom.dcmread(dcms[0])
    assert ds.pixel_array.shape == (16, 16) and ds.PatientID == "SYNTHETIC"


def test_interpolation(qtbot, panel: SamplePanel) -> None:  # type: ignore[no-untyped-def]
    panel.seed_a.setValue(1)
    panel.seed_b.setValue(2)
    panel.interp_steps.setValue(5)
    panel.interpolate()
    qtbot.waitUntil(lambda: panel.images is not None, timeout=30_000)
    imgs = panel.images
    assert imgs is not None and imgs.shape == (5, 1, 16, 16)
    assert "seeds 1→2" in panel.status_label.text()
    # the ends differ, the path is continuous-ish: neighbours closer than the ends
    assert np.abs(imgs[0] - imgs[-1]).mean() > np.abs(imgs[0] - imgs[1]).mean()


def test_no_models_is_honest(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = AppContext(Settings.default())
    w = SamplePanel(ctx)
    qtbot.addWidget(w)
    assert w.model_combo.count() == 0 or all("run:" not in w.model_combo.itemText(i) for i in range(w.model_combo.count()))
    if w.model_combo.count() == 0:
        assert not w.generate_btn.isEnabled() and "Train panel" in w.info_label.text()
    assert not w.export_png_btn.isEnabled()


REPO = Path(__file__).resolve().parents[2]


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture()
def imported(qtbot, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A panel on an isolated data dir holding a user copy of the shipped chest X-ray model."""
    from medgan_desktop.core.models.registry import ModelRegistry

    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    ctx = AppContext(Settings.default())
    ctx.paths.ensure()
    entry = ModelRegistry(ctx.paths).import_model(REPO / "models" / "cxr_cgan_64", "cxr_copy")
    w = SamplePanel(ctx)
    w.messages = messages  # type: ignore[attr-defined]
    qtbot.addWidget(w)
    i = w.model_combo.findData("model:cxr_copy")
    assert i >= 0
    w.model_combo.setCurrentIndex(i)
    w.n_spin.setValue(2)
    yield w, entry
    qtbot.waitUntil(lambda: not ctx.workers.running(), timeout=30_000)


def test_tampered_user_model_is_refused(qtbot, imported) -> None:  # type: ignore[no-untyped-def]
    panel, entry = imported
    _flip_last_byte(entry.weights_path)
    panel.generate()
    qtbot.waitUntil(lambda: bool(panel.messages) and panel.generate_btn.isEnabled(), timeout=30_000)
    assert "does not match the manifest" in panel.messages[0] and "cxr_copy" in panel.messages[0]
    assert "does not match the manifest" in panel.status_label.text()
    assert panel.images is None and panel.grid.count() == 0
    assert not panel.export_png_btn.isEnabled()


def test_intact_user_model_generates_and_shows_its_card(qtbot, imported) -> None:  # type: ignore[no-untyped-def]
    panel, _ = imported
    assert panel.card_button.isEnabled()
    assert "not for diagnosis" in panel.card_text()
    dlg = panel.show_card()
    assert dlg.isVisible()
    dlg.close()
    panel.generate()
    qtbot.waitUntil(lambda: panel.images is not None, timeout=30_000)
    assert panel.images is not None and panel.images.shape == (2, 1, 64, 64)
    assert panel.messages == []


def test_run_card_summarises_the_run(qtbot, panel: SamplePanel) -> None:  # type: ignore[no-untyped-def]
    texts = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    panel.model_combo.setCurrentIndex(next(i for i, t in enumerate(texts) if "cgan-test" in t))
    text = panel.card_text()
    assert text.startswith("# cgan-test") and "method: cgan" in text and "NORMAL, PNEUMONIA" in text


def test_models_changed_refreshes_the_list(qtbot) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.core.models.registry import ModelRegistry

    ctx = AppContext(Settings.default())
    ctx.paths.ensure()
    w = SamplePanel(ctx)
    qtbot.addWidget(w)
    assert w.model_combo.findData("model:later") < 0
    ModelRegistry(ctx.paths).import_model(REPO / "models" / "cxr_cgan_64", "later")
    ctx.models_changed.emit()
    assert w.model_combo.findData("model:later") >= 0
