"""Browser → study/patient "Export anonymised…": every series of a study as one anonymisation job."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from PySide6.QtWidgets import QFileDialog, QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.core.jobs.export import ExportSpec, run_export
from medgan_desktop.core.progress import Cancelled, CancelToken
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.browser import KIND_ROLE, BrowserPanel
from medgan_desktop.qt.panels.export_dialog import ExportDialog
from tests.core.dicom_helpers import tree_hash

# Identity planted in the source; none of it may appear in any output byte.
PLANTED = ("Quackenbush^Ottoline", "PID-424242", "Saint Planted Hospital",
           "Nestedname^Griselda", "NEST-ID-7777", "19510203")
STUDY_DATE = "20200115"
SERIES_DATES = ("20200115", "20200117")  # two days apart: the shift must keep that


def _ct(folder: Path, *, study: str, series: str, number: int, sop: list[str], frame: str,
        date: str, description: str, refs: dict[str, object] | None = None,
        burned_in: bool = False) -> list[str]:
    """Write a small CT series (same file names in every series folder)."""
    folder.mkdir(parents=True)
    for k, uid in enumerate(sop):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = uid
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.Modality = "CT"
        ds.PatientName = PLANTED[0]
        ds.PatientID = PLANTED[1]
        ds.PatientBirthDate = PLANTED[5]
        ds.PatientSex = "F"
        ds.InstitutionName = PLANTED[2]
        other = Dataset()
        other.PatientID = PLANTED[4]
        other.IssuerOfPatientID = PLANTED[3]
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.StudyDate = STUDY_DATE
        ds.SeriesDate = date
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.StudyDescription = "Chest"
        ds.SeriesDescription = description
        ds.SeriesNumber = number
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [0.0, 0.0, float(k)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 1.0
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.PixelData = np.full((8, 8), 1000 + k, np.int16).tobytes()
        if burned_in:
            ds.BurnedInAnnotation = "YES"
        for key, value in (refs or {}).items():
            setattr(ds, key, value)
        ds.save_as(folder / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return sop


def _ref_item(**kw: object) -> Dataset:
    item = Dataset()
    for k, v in kw.items():
        setattr(item, k, v)
    return item


def make_two_series_study(root: Path, *, burned_in_second: bool = False) -> dict[str, object]:
    """A study of two CT series; the second references the first and the study."""
    study, frame = generate_uid(), generate_uid()
    se1, se2 = generate_uid(), generate_uid()
    sop1 = [generate_uid() for _ in range(3)]
    sop2 = [generate_uid() for _ in range(2)]
    _ct(root / "series_a", study=study, series=se1, number=1, sop=sop1, frame=frame,
        date=SERIES_DATES[0], description="Plain")
    refs = {
        "ReferencedSeriesSequence": Sequence([_ref_item(
            SeriesInstanceUID=se1,
            ReferencedInstanceSequence=Sequence([_ref_item(
                ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=sop1[0])]))]),
        "SourceImageSequence": Sequence([_ref_item(
            ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=sop1[1])]),
        # removed by the profile (X): its study UID must not survive anywhere either
        "ReferencedStudySequence": Sequence([_ref_item(
            ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=study)]),
        # Common Instance Reference module: study + series + instance, nested two deep
        "StudiesContainingOtherReferencedInstancesSequence": Sequence([_ref_item(
            StudyInstanceUID=study,
            ReferencedSeriesSequence=Sequence([_ref_item(
                SeriesInstanceUID=se1,
                ReferencedInstanceSequence=Sequence([_ref_item(
                    ReferencedSOPClassUID=CTImageStorage,
                    ReferencedSOPInstanceUID=sop1[2])]))]))]),
    }
    _ct(root / "series_b", study=study, series=se2, number=2, sop=sop2, frame=frame,
        date=SERIES_DATES[1], description="Contrast", refs=refs, burned_in=burned_in_second)
    return {"study": study, "frame": frame, "series": (se1, se2), "sop1": sop1, "sop2": sop2}


@pytest.fixture()
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BrowserPanel]:  # type: ignore[no-untyped-def]
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    index = StudyIndex(tmp_path / "index.sqlite")
    ctx = AppContext(Settings.default(), index=index)
    w = BrowserPanel(ctx)
    w.messages = messages  # type: ignore[attr-defined]
    qtbot.addWidget(w)
    yield w
    ctx.workers.stop_all()
    index.close()


@pytest.fixture()
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[ExportDialog]:
    """Dialogs opened from the browser, recorded instead of run modally."""
    opened: list[ExportDialog] = []
    monkeypatch.setattr(ExportDialog, "exec", lambda self: opened.append(self) or 0)
    return opened


def _item(panel: BrowserPanel, kind: str):  # type: ignore[no-untyped-def]
    top = panel.tree.topLevelItem(0)
    assert top is not None
    return top if kind == "patient" else top.child(0)


def _trigger(panel: BrowserPanel, kind: str, text: str) -> None:
    item = _item(panel, kind)
    assert item.data(0, KIND_ROLE) == kind
    menu = panel.build_context_menu(item)
    [action] = [a for a in menu.actions() if a.text() == text]
    action.trigger()


def _wait_done(qtbot, dlg: ExportDialog) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: dlg.worker is not None and not dlg.worker.is_running()
                    and dlg.export_btn.isEnabled(), timeout=60000)


def test_study_export_is_one_job_with_consistent_uids(panel: BrowserPanel, dialogs, qtbot,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    made = make_two_series_study(src)
    before = tree_hash(src)
    panel.context.index.import_paths([src])
    panel.refresh()
    assert len(panel.series_items()) == 2
    _trigger(panel, "study", "Export anonymised…")
    [dlg] = dialogs
    qtbot.addWidget(dlg)
    text = dlg.what_label.text()
    assert "2 series, 5 file(s)" in text and "one job" in text
    assert "#1 Plain (CT), 3 file(s)" in text and "#2 Contrast (CT), 2 file(s)" in text
    dlg.retain_dates.setChecked(True)
    out = tmp_path / "export"
    dlg.out_edit.setText(str(out))
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert dlg.export_result is not None, dlg.summary.toPlainText()
    assert "5 file(s) written" in dlg.summary.toPlainText()

    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 5 and files == dlg.export_result.files
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]
    dss = [pydicom.dcmread(f) for f in files]
    by_series: dict[str, list[Dataset]] = {}
    for ds in dss:
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    assert sorted(len(v) for v in by_series.values()) == [2, 3]  # both series, one folder each
    assert len({f.parent for f in files}) == 2
    # one study, one frame of reference, one pseudonym and one date shift for the whole job
    assert len({str(ds.StudyInstanceUID) for ds in dss}) == 1
    assert len({str(ds.FrameOfReferenceUID) for ds in dss}) == 1
    assert len({(str(ds.PatientName), str(ds.PatientID)) for ds in dss}) == 1
    assert all(ds.PatientIdentityRemoved == "YES" for ds in dss)
    new_study = str(dss[0].StudyInstanceUID)
    assert new_study != made["study"]
    [(first_uid, first)] = [(k, v) for k, v in by_series.items() if len(v) == 3]
    [second] = [v for v in by_series.values() if len(v) == 2]
    first_sops = {str(ds.SOPInstanceUID) for ds in first}
    for ds in second:
        [ref_series] = ds.ReferencedSeriesSequence
        assert str(ref_series.SeriesInstanceUID) == first_uid
        assert str(ref_series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID) in first_sops
        assert str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID) in first_sops
        assert "ReferencedStudySequence" not in ds  # X in the Basic Profile
        [other] = ds.StudiesContainingOtherReferencedInstancesSequence
        assert str(other.StudyInstanceUID) == new_study
        [nested] = other.ReferencedSeriesSequence
        assert str(nested.SeriesInstanceUID) == first_uid
        assert str(nested.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID) in first_sops
    # dates shifted by one offset: the two days between the series are kept
    d1, d2 = (dt.date.fromisoformat(f"{s[0].SeriesDate[:4]}-{s[0].SeriesDate[4:6]}-"
                                    f"{s[0].SeriesDate[6:]}") for s in (first, second))
    assert (d2 - d1).days == 2 and first[0].SeriesDate != SERIES_DATES[0]
    assert len({str(ds.StudyDate) for ds in dss}) == 1
    # no identity and no source UID in any output byte
    old_uids = [made["study"], made["frame"], *made["series"], *made["sop1"], *made["sop2"]]
    for f in files:
        raw = f.read_bytes()
        for s in (*PLANTED, *old_uids):
            assert str(s).encode() not in raw, (f, s)
    assert tree_hash(src) == before  # nothing written into (or changed in) the source

    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "rep.json"), ""))
    dlg.report_btn.click()
    report = json.loads((tmp_path / "rep.json").read_text())
    sources = sorted(f["source"] for f in report["files"])
    assert sources == sorted([f"#1 Plain (CT)/IM000{k}.dcm" for k in (1, 2, 3)]
                             + [f"#2 Contrast (CT)/IM000{k}.dcm" for k in (1, 2)])
    assert report["options"]["retain_longitudinal"] is True


def test_study_export_refuses_burned_in_series_and_names_them(panel: BrowserPanel, dialogs,  # type: ignore[no-untyped-def]
                                                              qtbot, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_two_series_study(src, burned_in_second=True)
    panel.context.index.import_paths([src])
    panel.refresh()
    _trigger(panel, "study", "Export anonymised…")
    [dlg] = dialogs
    qtbot.addWidget(dlg)
    out = tmp_path / "export"
    dlg.out_edit.setText(str(out))
    dlg.start_export()
    _wait_done(qtbot, dlg)
    [msg] = panel.messages  # type: ignore[attr-defined]
    assert "1 of 2 series" in msg and "#2 Contrast (CT): 2 of 2 image(s)" in msg
    assert "#1 Plain" not in msg
    assert "nothing was written" in dlg.status.text()
    assert not out.exists() and not list(tmp_path.glob(".export.partial-*"))
    dlg.accept_burned_in.setChecked(True)
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert dlg.export_result is not None and len(dlg.export_result.files) == 5


def test_patient_export_takes_all_studies_and_cancel_leaves_nothing(panel: BrowserPanel,  # type: ignore[no-untyped-def]
                                                                    dialogs, qtbot,
                                                                    tmp_path: Path) -> None:
    make_two_series_study(tmp_path / "src" / "one")
    make_two_series_study(tmp_path / "src" / "two")
    panel.context.index.import_paths([tmp_path / "src"])
    panel.refresh()
    assert panel.tree.topLevelItemCount() == 1
    _trigger(panel, "patient", "Export all 2 studies anonymised…")
    [dlg] = dialogs
    qtbot.addWidget(dlg)
    assert "2 studies" in dlg.what_label.text() and "4 series, 10 file(s)" in dlg.what_label.text()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_export(ExportSpec(out_dir=tmp_path / "cancelled", options=dlg.options(),
                              series=tuple(dlg.series_groups)), cancel=token)
    assert not (tmp_path / "cancelled").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    dlg.pseudonym_name.setText("Research^Case07")
    dlg.out_edit.setText(str(tmp_path / "export"))
    dlg.start_export()
    _wait_done(qtbot, dlg)
    assert dlg.export_result is not None and len(dlg.export_result.files) == 10
    dss = [pydicom.dcmread(f, stop_before_pixels=True) for f in dlg.export_result.files]
    assert {str(ds.PatientName) for ds in dss} == {"Research^Case07"}
    assert len({str(ds.StudyInstanceUID) for ds in dss}) == 2
    assert len({str(ds.SeriesInstanceUID) for ds in dss}) == 4
