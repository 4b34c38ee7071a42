"""BrowserPanel with real DICOM: import, tree, metadata, open, problems, remove, filter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.core.config import Settings
from medgan_desktop.core.dicom.index import StudyIndex
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.browser import BrowserPanel

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture()
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    index = StudyIndex(tmp_path / "index.sqlite")
    ctx = AppContext(Settings.default(), index=index)
    w = BrowserPanel(ctx)
    w.messages = messages  # type: ignore[attr-defined]
    qtbot.addWidget(w)
    yield w
    for worker in ctx.workers.running():
        worker.cancel()
    qtbot.waitUntil(lambda: not ctx.workers.running(), timeout=30_000)
    index.close()


def _ct(shared_data: Path) -> Path:
    return shared_data / "mridir_phantom" / "CT_DICOM_sample"


def test_import_builds_tree_and_reports_problems(panel, qtbot, shared_data: Path,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(_ct(shared_data), folder)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x01" * 10)
    with qtbot.waitSignal(panel.context.index_changed, timeout=30_000):
        panel.import_paths([folder])
    items = panel.series_items()
    assert len(items) == 1
    assert items[0].text(1) == "CT" and items[0].text(3) == "12"
    assert panel.tree.topLevelItem(0).text(0).startswith("MRI-DIR-zzmeatphantom")
    assert panel.problems.rowCount() == 1
    assert "broken.dcm" in panel.problems.item(0, 0).text()
    assert not panel.progress_row.isVisible()
    uid = items[0].data(0, 257)
    qtbot.waitUntil(lambda: panel.has_thumbnail(uid), timeout=30_000)
    assert not panel.series_items()[0].icon(0).isNull()


def test_select_shows_metadata_and_open_emits_volume(panel, qtbot, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.import_finished, timeout=30_000):
        panel.import_paths([_ct(shared_data)])
    item = panel.series_items()[0]
    uid = str(item.data(0, 257))
    with qtbot.waitSignal(panel.context.series_selected, timeout=5_000) as sel:
        assert panel.select_series(uid)
    assert sel.args == [uid]
    rows = panel.metadata_rows()
    by_name = {r[1]: r for r in rows}
    assert by_name["Patient ID"][3] == "MRI-DIR-zzmeatphantom"
    assert by_name["Modality"][0] == "(0008,0060)" and by_name["Modality"][2] == "CS"
    with qtbot.waitSignal(panel.context.volume_opened, timeout=30_000) as opened:
        panel.open_series(uid)
    vol = opened.args[0]
    assert vol.shape == (12, 512, 512) and vol.units == "HU"
    menu = panel.build_context_menu(item)
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Open", "Show in file manager", "Export anonymised…", "Remove from index"]
    with qtbot.waitSignal(panel.context.export_requested, timeout=2_000) as exp:
        menu.actions()[2].trigger()
    assert exp.args == [uid]


def test_private_tags_are_labelled(panel, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    j2k = shared_data / "dicom_series" / "totalsegmentator_ct_series"
    panel.show_metadata(sorted(j2k.iterdir())[0])
    private = [r for r in panel.metadata_rows() if r[0].startswith("(0009,")]
    assert private and all("[private" in r[1] for r in private)


def test_filter_remove_and_open_file(panel, qtbot, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    mr = shared_data / "mridir_phantom" / "MR_T2_DICOM"
    with qtbot.waitSignal(panel.import_finished, timeout=60_000):
        panel.import_paths([_ct(shared_data), mr])
    assert len(panel.series_items()) == 2
    panel.filter_edit.setText("t2")
    visible = [i for i in panel.series_items() if not i.isHidden()]
    assert [i.text(1) for i in visible] == ["MR"]
    panel.filter_edit.setText("")
    ct_uid = next(str(i.data(0, 257)) for i in panel.series_items() if i.text(1) == "CT")
    with qtbot.waitSignal(panel.context.index_changed, timeout=5_000):
        panel.remove("series", ct_uid)
    assert [i.text(1) for i in panel.series_items()] == ["MR"]
    assert (_ct(shared_data) / "CT_0199.dcm").is_file()
    nii = shared_data / "head_ct_mr" / "invesalius_cranium_headCT.nii.gz"
    with qtbot.waitSignal(panel.context.volume_opened, timeout=30_000) as opened:
        panel.open_path(nii)
    assert opened.args[0].modality == "CT"


def test_cancel_import(panel, qtbot, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    mr = shared_data / "mridir_phantom" / "MR_T2_DICOM"
    worker = panel.import_paths([mr])
    assert worker is not None
    with qtbot.waitSignal(worker.done, timeout=30_000):
        panel.cancel_import()
    assert panel.context.index.counts()["instances"] <= 94
    assert panel.import_button.isEnabled()
