"""TranslationTrainWidget: pairs from files and the study index, Start -> curves, registration
quality, held-out metrics and the run folder; the teacher list for the distilled student."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medgan_desktop.core.config import Settings
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.train_translation import TranslationTrainWidget


def _phantom(n: int = 12, size: int = 40, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic MR and CT (HU) of an ellipse with a ring (bone on CT, dark on MR)."""
    j, i = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(
        ((i - size / 2 - shift) / (size * 0.38)) ** 2 + ((j - size / 2) / (size * 0.3)) ** 2
    )
    body, ring = r < 1.0, (r > 0.8) & (r < 1.0)
    rng = np.random.default_rng(0)
    mr = np.where(body, 300.0, 5.0) - np.where(ring, 220.0, 0.0) + rng.normal(0, 4, (n, size, size))
    ct2 = np.where(body, 40.0, -1000.0) + np.where(ring, 900.0, 0.0)
    return mr.astype(np.float32), np.repeat(ct2[None], n, axis=0).astype(np.float32)


def _write(path: Path, arr: np.ndarray) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 2.0))  # type: ignore[no-untyped-call]
    sitk.WriteImage(img, str(path))
    return path


@pytest.fixture()
def ctx(qtbot):  # type: ignore[no-untyped-def]
    c = AppContext(Settings.default())
    yield c
    for w in c.workers.running():
        w.cancel()
    qtbot.waitUntil(lambda: not c.workers.running(), timeout=30_000)


def _text(w: TranslationTrainWidget, row: int, col: int) -> str:
    it = w.pairs_table.item(row, col)
    assert it is not None
    return it.text()


def _tiny(w: TranslationTrainWidget) -> None:
    w.size_combo.setCurrentIndex(w.size_combo.findData(32))
    w.steps_spin.setValue(4)
    w.batch_spin.setValue(2)
    w.filters_spin.setValue(4)
    w.context_spin.setValue(1)
    w.holdout_spin.setValue(0.25)
    w.device_combo.setCurrentIndex(w.device_combo.findData("cpu"))


def test_train_a_pair_shows_curves_registration_and_metrics(qtbot, ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mr, ct = _phantom(shift=2.0)
    mr_f, ct_f = _write(tmp_path / "pat1_mr.nii.gz", mr), _write(tmp_path / "pat1_ct.nii.gz", ct)
    w = TranslationTrainWidget(ctx)
    qtbot.addWidget(w)
    methods = [w.method_combo.itemData(i) for i in range(w.method_combo.count())]
    assert {"pix2pix", "cyclegan", "unit", "distilled", "unet_l1"} <= set(methods)
    assert "dcgan" not in methods
    assert not w.start_btn.isEnabled()  # no pairs yet
    w.add_pair(mr_f, ct_f)
    w.register_check.setChecked(True)
    _tiny(w)
    assert w.start_btn.isEnabled()
    w.start()
    assert w.is_running() and w.stop_btn.isEnabled() and not w.start_btn.isEnabled()
    qtbot.waitUntil(lambda: not w.is_running(), timeout=120_000)
    assert w.result is not None, w.status_label.text()
    run = w.result.run_dir
    assert run.parent == ctx.paths.runs_dir and (run / "run.json").is_file()
    assert w.run_label.text() == str(run)
    # held-out metrics shown as computed and stored by the job
    stored = json.loads((run / "heldout_metrics.json").read_text(encoding="utf-8"))
    assert f"MAE {stored['mae']:.1f} HU" in w.metrics_label.text()
    assert "held out: slices" in w.metrics_label.text()
    # the registration quality of the pair, and the patient named from the file
    assert _text(w, 0, 4).startswith("MI ")
    assert _text(w, 0, 0) == "pat1_mr"
    reg = json.loads((run / "run.json").read_text(encoding="utf-8"))["data"]["registration"][0]
    assert f"{reg['final_mi']:.3f}" in _text(w, 0, 4)
    # the loss curves were drawn with the method's losses
    assert "l1" in w.plot.curves and len(w.plot.curves["l1"]) >= 1
    assert w.progress_bar.value() == 4 and w.start_btn.isEnabled()


def test_settings_errors_are_shown_not_started(qtbot, ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = TranslationTrainWidget(ctx)
    qtbot.addWidget(w)
    w.add_pair(tmp_path / "a_mr.nii.gz", tmp_path / "a_ct.nii.gz")
    w.method_combo.setCurrentIndex(w.method_combo.findData("distilled"))
    assert w.teacher_row.isVisibleTo(w)
    # the catalogue's translation models are offered as teachers
    teachers = [str(w.teacher_combo.itemData(i)) for i in range(w.teacher_combo.count())]
    assert "model:mrct_phantom_pix2pix" in teachers and "model:feature_extractor" not in teachers
    assert not w.set_teacher_folder(tmp_path)  # not a run
    assert "not a trained translation run" in w.status_label.text()
    w.method_combo.setCurrentIndex(w.method_combo.findData("pix2pix"))
    assert not w.teacher_row.isVisibleTo(w)
    w.remove_selected()
    w.pairs_table.selectRow(0)
    w.remove_selected()
    assert w.pairs_table.rowCount() == 0 and not w.start_btn.isEnabled()
    w.start()
    assert not w.is_running() and "at least one MR/CT pair" in w.status_label.text()


def test_pairs_from_the_study_index_follow_the_browser(qtbot, ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.core.dicom.write import write_volume_series
    from medgan_desktop.core.volume import Volume

    uids: dict[str, str] = {}
    for pid in ("PAT-A", "PAT-B"):
        mr, ct = _phantom(n=6, size=24)
        for kind, arr in (("MR", mr), ("CT", ct)):
            vol = Volume(arr, modality=kind, units="HU" if kind == "CT" else "scanner")
            write_volume_series(
                vol,
                tmp_path / pid / kind,
                patient_name=pid,
                patient_id=pid,
                series_description=kind,
            )
    ctx.paths.ensure()
    ctx.index.import_paths([tmp_path])
    for rec in ctx.index.all_series():
        uids[f"{rec.patient_id}/{rec.modality}"] = rec.series_uid
    w = TranslationTrainWidget(ctx)
    qtbot.addWidget(w)
    ctx.series_selected.emit(uids["PAT-B/MR"])
    assert w.add_from_index() == 1
    specs = w.pair_specs()
    assert [(s.patient, s.mr, s.ct, s.from_index) for s in specs] == [
        ("PAT-B", uids["PAT-B/MR"], uids["PAT-B/CT"], True)
    ]
    assert _text(w, 0, 3) == "index"
    ctx.series_selected.emit("")
    assert w.add_from_index() == 1  # PAT-A added, PAT-B not twice
    assert sorted(s.patient for s in w.pair_specs()) == ["PAT-A", "PAT-B"]
    spec = w.job_spec(tmp_path / "run")
    assert spec.index_db == str(ctx.paths.index_db)
