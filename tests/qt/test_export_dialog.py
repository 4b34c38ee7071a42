"""ExportDialog: anonymised series export, burned-in refusal, synthetic volume + PACS send."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.volume import SourceInfo, Volume
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.export_dialog import ExportDialog
from tests.core.dicom3tools import orthanc_rest, orthanc_server

AET = "QTPACS"


@pytest.fixture()
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    index = StudyIndex(tmp_path / "index.sqlite")
    c = AppContext(Settings.default(), index=index)
    c.messages = messages  # type: ignore[attr-defined]
    yield c
    c.workers.stop_all()
    index.close()


def _planted_series(shared_data: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[:3]
    for p in files:
        ds = pydicom.dcmread(p)
        ds.PatientName = "Guiperson^Hortense"
        ds.PatientAge = "033Y"
        ds.save_as(dst / p.name)
    return dst


def _series_uid(ctx: AppContext) -> str:
    [rec] = ctx.index.all_series()
    return str(rec.series_uid)


def _wait_done(qtbot, dlg: ExportDialog) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: dlg.worker is not None and not dlg.worker.is_running()
                    and dlg.export_btn.isEnabled(), timeout=60000)


def test_series_export_anonymises_and_saves_report(ctx: AppContext, qtbot, shared_data: Path,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = _planted_series(shared_data, tmp_path / "src")
    ctx.index.import_paths([src])
    dlg = ExportDialog(ctx, series_uid=_series_uid(ctx))
    qtbot.addWidget(dlg)
    assert "3 file(s)" in dlg.what_label.text()
    assert not dlg.within_study.isVisibleTo(dlg)
    dlg.pseudonym_name.setText("Research^Case01")
    dlg.pseudonym_id.setText("CASE01")
    dlg.retain_chars.setChecked(True)
    out = tmp_path / "export"
    dlg.out_edit.setText(str(out))
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert dlg.export_result is not None and len(dlg.export_result.files) == 3
    assert "3 file(s) written" in dlg.summary.toPlainText()
    for f in dlg.export_result.files:
        ds = pydicom.dcmread(f)
        assert (str(ds.PatientName), ds.PatientID, ds.PatientAge) == (
            "Research^Case01", "CASE01", "033Y")
        assert b"Guiperson" not in f.read_bytes()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "rep.json"), ""))
    assert dlg.report_btn.isEnabled()
    dlg.report_btn.click()
    assert json.loads((tmp_path / "rep.json").read_text())["options"]["retain_patient_chars"]


def test_burned_in_series_is_refused_until_accepted(ctx: AppContext, qtbot,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path) -> None:
    import deid_data

    src = tmp_path / "us"
    src.mkdir()
    shutil.copy(Path(deid_data.__file__).parent / "data" / "ultrasounds" / "GREYSCALE_IMAGE.dcm",
                src / "us.dcm")
    ctx.index.import_paths([src])
    dlg = ExportDialog(ctx, series_uid=_series_uid(ctx))
    qtbot.addWidget(dlg)
    dlg.out_edit.setText(str(tmp_path / "o"))
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert any("burned into the pixels" in m for m in ctx.messages)  # type: ignore[attr-defined]
    assert "nothing was written" in dlg.status.text()
    assert not (tmp_path / "o").exists()
    dlg.accept_burned_in.setChecked(True)
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert dlg.export_result is not None and len(dlg.export_result.files) == 1


def test_synthetic_volume_export_and_send_to_pacs(ctx: AppContext, qtbot, shared_data: Path,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    mr = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[:2]
    first = pydicom.dcmread(mr[0], stop_before_pixels=True)
    vol = Volume(np.full((2, 16, 16), 40.0, np.float32), spacing=(0.5, 0.5, 2.5),
                 modality="CT", units="HU", synthetic=True, description="sCT",
                 source=SourceInfo(files=tuple(str(p) for p in mr),
                                   study_instance_uid=str(first.StudyInstanceUID)),
                 meta={"model_id": "mr2ct-test", "model_version": "0.0.1"})
    with orthanc_server(tmp_path / "pacs", AET) as (dicom_port, http_port):
        dlg = ExportDialog(ctx, volume=vol)
        qtbot.addWidget(dlg)
        assert dlg.within_study.isVisibleTo(dlg)
        dlg.pacs_box.setChecked(True)
        dlg.pacs_aet.setText(AET)
        dlg.pacs_host.setText("127.0.0.1")
        dlg.pacs_port.setValue(dicom_port)
        dlg.test_btn.click()
        qtbot.waitUntil(lambda: dlg.echo_label.text().startswith(("OK", "Failed")),
                        timeout=20000)
        assert dlg.echo_label.text().startswith("OK"), dlg.echo_label.text()
        qtbot.waitUntil(lambda: dlg.test_btn.isEnabled(), timeout=5000)
        dlg.out_edit.setText(str(tmp_path / "syn"))
        dlg.start_export()
        _wait_done(qtbot, dlg)
        assert dlg.export_result is not None and dlg.export_result.send is not None
        assert dlg.export_result.send.ok, dlg.summary.toPlainText()
        assert len(orthanc_rest(http_port, "/instances")) == 2  # type: ignore[arg-type]
    ds = pydicom.dcmread(dlg.export_result.files[0])
    assert ds.SyntheticData == "YES" and ds.SeriesDescription.startswith("SYNTHETIC")
    assert ds.StudyInstanceUID != first.StudyInstanceUID  # anonymised by default
    assert ds.PatientIdentityRemoved == "YES"
    saved = json.loads((ctx.paths.data_dir / "pacs_node.json").read_text())
    assert saved["ae_title"] == AET and saved["port"] == dicom_port


def test_pacs_fields_are_checked_before_export(ctx: AppContext, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol = Volume(np.zeros((1, 4, 4), np.float32), modality="CT")
    dlg = ExportDialog(ctx, volume=vol)
    qtbot.addWidget(dlg)
    dlg.pacs_box.setChecked(True)
    dlg.out_edit.setText(str(tmp_path / "x"))
    dlg.start_export()
    assert any("PACS host" in m for m in ctx.messages)  # type: ignore[attr-defined]
    assert dlg.worker is None and not (tmp_path / "x").exists()
    dlg.test_btn.click()
    assert "host" in dlg.echo_label.text()
