"""TranslatePanel: file or indexed MR -> synthetic CT in the compare viewer, real CT scored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.cli import main
from medgan_desktop.core.config import Settings
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.translate import TranslatePanel

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PHANTOM = SHARED / "mridir_phantom"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(run dir, small MR NIfTI, small CT NIfTI) from the real MRI-DIR phantom."""
    if not (PHANTOM / "MR_T2_DICOM").is_dir():
        pytest.fail(f"real test data missing at {PHANTOM}")
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(PHANTOM / "MR_T2_DICOM")))
    mr = sitk.Shrink(r.Execute(), [8, 8, 2])
    ct = sitk.Resample(sitk.ReadImage(str(PHANTOM / "CT_rigid_to_MR_grid.nii.gz")), mr, sitk.Transform(),
                       sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    d = tmp_path_factory.mktemp("tp")
    sitk.WriteImage(mr, str(d / "phantom_mr.nii.gz"))
    sitk.WriteImage(ct, str(d / "phantom_ct.nii.gz"))
    run = d / "mr2ct_tiny"
    assert main(["translate-train", "--method", "unet_l1", "--pair", str(d / "phantom_mr.nii.gz"),
                 str(d / "phantom_ct.nii.gz"), "--size", "32", "--base-filters", "4", "--steps", "4",
                 "--batch", "4", "--device", "cpu", "--threads", "1", "--no-eval", "--out", str(run)]) == 0
    return run, d / "phantom_mr.nii.gz", d / "phantom_ct.nii.gz"


@pytest.fixture()
def ctx(qtbot, monkeypatch: pytest.MonkeyPatch, tiny):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "question",  # a model that does not fit: the user says no
                        lambda *a, **k: messages.append(str(a[2])) or QMessageBox.StandardButton.No)
    c = AppContext(Settings.default())
    c.messages = messages  # type: ignore[attr-defined]
    c.paths.ensure()
    shutil.copytree(tiny[0], c.paths.runs_dir / tiny[0].name)
    yield c
    for w in c.workers.running():
        w.cancel()
    qtbot.waitUntil(lambda: not c.workers.running(), timeout=30_000)


def test_translate_file_shows_comparison_and_exports(qtbot, ctx, tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    assert not panel.run_button.isEnabled()  # no source yet
    panel.set_source_file(tiny[1])
    assert panel.model_combo.count() >= 1 and panel.run_button.isEnabled()
    assert "research and review only" in panel.card_text()
    dlg = panel.show_card()
    assert dlg.isVisible()
    dlg.close()
    with qtbot.waitSignal(ctx.compare_requested, timeout=60_000) as sig:
        panel.run_button.click()
    vols = sig.args[0]
    assert len(vols) == 2
    src, syn = vols
    assert syn.synthetic and syn.modality == "CT" and syn.units == "HU" and syn.shape == src.shape
    assert syn.description.startswith("SYNTHETIC CT")
    assert "nothing to compare" in panel.status_label.text()
    qtbot.waitUntil(lambda: panel.export_button.isEnabled(), timeout=10_000)
    opened: list[object] = []
    import medgan_desktop.qt.panels.export_dialog as ed

    monkeypatch.setattr(ed.ExportDialog, "exec", lambda self: opened.append(self.volume) or 0)
    panel.export_button.click()
    assert opened == [syn]


def test_models_are_filtered_by_modality(qtbot, ctx, tiny) -> None:  # type: ignore[no-untyped-def]
    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    panel.set_source_file(tiny[2])  # a CT: no CT->? model exists
    assert panel.model_combo.count() == 0 or all(
        "MR→" not in panel.model_combo.itemText(i) for i in range(panel.model_combo.count())
    )
    assert not panel.run_button.isEnabled()
    assert "No translation model" in panel.status_label.text()
    panel.all_models.setChecked(True)
    assert any("mr2ct_tiny" in panel.model_combo.itemText(i) for i in range(panel.model_combo.count()))


def test_indexed_mr_with_real_ct_is_registered_and_scored(qtbot, ctx) -> None:  # type: ignore[no-untyped-def]
    ctx.index.import_paths([PHANTOM / "MR_T2_DICOM", PHANTOM / "CT_DICOM_sample"])
    series = ctx.index.all_series()
    mr = next(s for s in series if s.modality == "MR")
    assert any(s.modality == "CT" for s in series)
    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    ctx.series_selected.emit(mr.series_uid)
    assert panel.source == ("series", mr.series_uid) and panel.run_button.isEnabled()
    with qtbot.waitSignal(ctx.compare_requested, timeout=120_000) as sig:
        panel.run()
    vols = sig.args[0]
    assert len(vols) == 3
    assert vols[2].modality == "CT" and vols[2].shape == vols[0].shape
    assert "MAE (HU)" in panel.metrics_label.text()
    assert panel.result is not None and panel.result.metrics["MAE (HU)"] > 0


REPO = Path(__file__).resolve().parents[2]


def test_tampered_user_model_is_refused(qtbot, ctx, tiny) -> None:  # type: ignore[no-untyped-def]
    """A catalogue model is checked against its sha256 before it is loaded."""
    from medgan_desktop.core.models.registry import ModelRegistry

    entry = ModelRegistry(ctx.paths).import_model(REPO / "models" / "mrct_phantom_student", "phantom_copy")
    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    panel.set_source_file(tiny[1])
    i = panel.model_combo.findData("model:phantom_copy")
    assert i >= 0
    panel.model_combo.setCurrentIndex(i)
    assert "not for diagnosis" in panel.card_text()
    with qtbot.waitSignal(ctx.compare_requested, timeout=60_000):  # intact: it translates
        panel.run()
    qtbot.waitUntil(lambda: panel.run_button.isEnabled(), timeout=10_000)
    assert panel.result is not None

    data = bytearray(entry.weights_path.read_bytes())
    data[-1] ^= 0xFF
    entry.weights_path.write_bytes(bytes(data))
    produced: list[object] = []
    ctx.compare_requested.connect(produced.append)
    panel.run()
    qtbot.waitUntil(lambda: bool(ctx.messages) and panel.run_button.isEnabled(), timeout=60_000)
    assert "does not match the manifest" in ctx.messages[-1] and "phantom_copy" in ctx.messages[-1]
    assert "does not match the manifest" in panel.status_label.text()
    assert panel.result is None and produced == [] and not panel.export_button.isEnabled()


def test_models_changed_refreshes_the_list(qtbot, ctx, tiny) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.core.models.registry import ModelRegistry

    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    panel.set_source_file(tiny[1])
    assert panel.model_combo.findData("model:new_one") < 0
    ModelRegistry(ctx.paths).import_model(REPO / "models" / "mrct_phantom_student", "new_one")
    ctx.models_changed.emit()
    assert panel.model_combo.findData("model:new_one") >= 0


def test_panel_fits_a_narrow_dock(qtbot, ctx) -> None:  # type: ignore[no-untyped-def]
    """Long model names and options wrap instead of forcing a horizontal scrollbar."""
    panel = TranslatePanel(ctx)
    qtbot.addWidget(panel)
    panel.all_models.setChecked(True)
    assert panel.model_combo.count() >= 3  # the shipped models, with their long labels
    assert panel.minimumSizeHint().width() <= 360
