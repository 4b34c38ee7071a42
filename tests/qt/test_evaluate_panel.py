"""EvaluatePanel: unpaired and paired evaluations in a worker, plots, gallery, HTML export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.metrics.paired import PairedReport
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.evaluate import EvaluatePanel


@pytest.fixture()
def panel(qtbot, monkeypatch):
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    w = EvaluatePanel(AppContext(Settings.default()))
    w.messages = messages
    qtbot.addWidget(w)
    yield w
    w.context.workers.stop_all()


def test_unpaired_with_memorization_and_report(panel, qtbot, tmp_path, shared_data: Path):
    files = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("IM-*.jpeg"))[:24]
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for f in files[:14]:
        shutil.copy(f, real / f.name)
    for f in files[14:]:
        shutil.copy(f, fake / f"gen_{f.name}")
    shutil.copy(files[3], fake / "planted.jpeg")
    panel.run()  # nothing chosen yet: an honest message, no worker
    assert panel.messages and not panel.is_busy()
    panel.real_row.edit.setText(str(real))
    panel.fake_row.edit.setText(str(fake))
    panel.memo_check.setChecked(True)
    panel.run()
    assert panel.is_busy() and not panel.run_btn.isEnabled()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    t = panel.table_dict()
    assert float(t["Fréchet distance"]) > 0 and 0 <= float(t["precision"]) <= 1
    assert int(t["near-copies flagged"]) >= 1
    assert panel.gallery.count() == 11
    first = panel.gallery.item(0).data(0x0100)  # UserRole
    assert Path(first["fake"]).name == "planted.jpeg" and first["flagged"]
    assert len(panel.plot.getPlotItem().listDataItems()) == 2
    out = panel.export_report(tmp_path / "r.html")
    assert out is not None and "data:image/png;base64" in out.read_text()
    assert not panel.error_map_btn.isEnabled()


def test_paired_volumes(panel, qtbot, tmp_path, shared_data: Path):
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    ref = sitk.Cast(img[128:256, 128:256, 45:49], sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(ref)
    pred = sitk.GetImageFromArray(arr + 40.0)
    pred.CopyInformation(ref)
    sitk.WriteImage(ref, str(tmp_path / "ref_ct.nii.gz"))
    sitk.WriteImage(pred, str(tmp_path / "pred_ct.nii.gz"))
    panel.mode_tabs.setCurrentIndex(1)
    panel.pred_row.edit.setText(str(tmp_path / "pred_ct.nii.gz"))
    panel.ref_row.edit.setText(str(tmp_path / "ref_ct.nii.gz"))
    panel.run()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert isinstance(panel.result, PairedReport)
    t = panel.table_dict()
    assert float(t["MAE (HU)"]) == pytest.approx(40.0, abs=0.01)
    assert float(t["ME (HU)"]) == pytest.approx(40.0, abs=0.01)
    assert len(panel.curve_plot.getPlotItem().listDataItems()) == 1
    with qtbot.waitSignal(panel.context.volume_opened) as sig:
        panel.error_map_btn.click()
    assert np.allclose(sig.args[0].array, 40.0, atol=1e-3)
    assert "Per tissue" in panel.export_report(tmp_path / "p.html").read_text()


def test_utility_tab(panel, qtbot, tmp_path, shared_data: Path):
    root = shared_data / "chest_xray" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        files = sorted((root / cls).glob("*.jpeg"))[:45]
        for part, chunk in (("train", files[:15]), ("fake", files[15:30]), ("test", files[30:])):
            (tmp_path / part / cls).mkdir(parents=True)
            for f in chunk:
                shutil.copy(f, tmp_path / part / cls / f.name)
    panel.mode_tabs.setCurrentIndex(2)
    panel.run()  # folders missing: honest message
    assert panel.messages and not panel.is_busy()
    panel.u_train_row.edit.setText(str(tmp_path / "train"))
    panel.u_fake_row.edit.setText(str(tmp_path / "fake"))
    panel.u_test_row.edit.setText(str(tmp_path / "test"))
    panel.seeds_spin.setValue(2)
    panel.run()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    t = panel.table_dict()
    assert t["seeds"] == "2" and "delta_auc 95% CI" in t
    assert -1 <= float(t["delta_auc (mean)"]) <= 1
    assert len(panel.plot.getPlotItem().listDataItems()) == 2
    assert "Downstream utility" in panel.export_report(tmp_path / "u.html").read_text()


def test_paired_fusion_sources_add_scd(panel, qtbot, tmp_path, shared_data: Path):
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    ref = sitk.Cast(img[128:256, 128:256, 45:49], sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(ref)
    other = sitk.GetImageFromArray(np.sqrt(arr - arr.min()))  # a second "source"
    other.CopyInformation(ref)
    fused = sitk.GetImageFromArray(arr + 40.0 * np.sqrt(arr - arr.min()))
    fused.CopyInformation(ref)
    for name, im in (("ref", ref), ("other", other), ("fused", fused)):
        sitk.WriteImage(im, str(tmp_path / f"{name}.nii.gz"))
    panel.mode_tabs.setCurrentIndex(1)
    panel.pred_row.edit.setText(str(tmp_path / "fused.nii.gz"))
    panel.ref_row.edit.setText(str(tmp_path / "ref.nii.gz"))
    panel.source1_row.edit.setText(str(tmp_path / "ref.nii.gz"))
    panel.run()  # one source only: an honest message, no worker
    assert "both fusion sources" in panel.messages[-1] and not panel.is_busy()
    panel.source2_row.edit.setText(str(tmp_path / "other.nii.gz"))
    panel.run()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert isinstance(panel.result, PairedReport) and panel.result.scd is not None
    t = panel.table_dict()
    assert -2 <= float(t["SCD (fusion)"]) <= 2
    assert float(t["spatial frequency synthetic"]) > float(t["spatial frequency reference"]) > 0
    assert "SCD" in panel.export_report(tmp_path / "f.html").read_text()
    # a translation (no sources): SF is there, SCD is not
    panel.source1_row.edit.clear()
    panel.source2_row.edit.clear()
    panel.run()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    t = panel.table_dict()
    assert "SCD (fusion)" not in t and "spatial frequency reference" in t


def test_unpaired_c2st_rows_and_status(panel, qtbot, tmp_path, shared_data: Path):
    files = sorted((shared_data / "chest_xray" / "train" / "NORMAL").glob("IM-*.jpeg"))[:40]
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for f in files[:20]:
        shutil.copy(f, real / f.name)
    from PIL import Image

    for i, f in enumerate(files[20:]):
        img = np.asarray(Image.open(f).convert("L").resize((64, 64)), dtype=np.float32)
        Image.fromarray((img * 0.5).astype(np.uint8)).save(fake / f"s{i}.png")
    panel.real_row.edit.setText(str(real))
    panel.fake_row.edit.setText(str(fake))
    assert not panel.train_row.isEnabled()
    panel.c2st_check.setChecked(True)
    assert panel.train_row.isEnabled()  # the training images serve as the C2ST's null
    panel.run()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=120000)
    t = panel.table_dict()
    assert float(t["C2ST accuracy (0.5: indistinguishable)"]) > 0.8
    assert "C2ST null: real (half A) vs real (half B)" in t
    assert "C2ST accuracy" in panel.status_label.text()
