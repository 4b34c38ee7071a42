"""Every user action is one core job: the GUI and the CLI build the same spec for the same
request and call the same function, so a rule changed in the job changes both.

For each action a recorder replaces the job where the panel and the CLI look it up; the
test drives the panel (as a user would) and the CLI (as a batch job would) with the same
request and compares the specs they hand over. Translation also runs the real job on both
specs and compares the synthetic volumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from medgan_desktop.cli import main
from medgan_desktop.core.config import Settings
from medgan_desktop.core.jobs import evaluate as jobs_evaluate
from medgan_desktop.core.jobs import export as jobs_export
from medgan_desktop.core.jobs import index as jobs_index
from medgan_desktop.core.jobs import models as jobs_models
from medgan_desktop.core.jobs import review as jobs_review
from medgan_desktop.core.jobs import sample as jobs_sample
from medgan_desktop.core.jobs import train as jobs_train
from medgan_desktop.core.jobs import train_translation as jobs_tt
from medgan_desktop.core.jobs import translate as jobs_translate
from medgan_desktop.qt.context import AppContext


class Stop(Exception):
    """Raised by a recorder so nothing after the job's start runs."""


def _recorder(monkeypatch: pytest.MonkeyPatch, name: str, *modules: Any) -> list[Any]:
    """Replace ``name`` in each module by a function that records its first argument."""
    seen: list[Any] = []

    def record(spec: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(spec)
        raise Stop(name)

    for mod in modules:
        monkeypatch.setattr(mod, name, record)
    return seen


def _cli(argv: list[str]) -> None:
    with pytest.raises(Stop):
        main(argv)


@pytest.fixture()
def ctx(qtbot, monkeypatch: pytest.MonkeyPatch) -> AppContext:  # type: ignore[no-untyped-def]
    for kind in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, kind, lambda *a, **k: None)
    c = AppContext(Settings.default())
    c.paths.ensure()
    return c


def _run_worker_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers run in the calling thread, so a recorder's Stop is seen at once."""
    from medgan_desktop.qt.workers import base

    monkeypatch.setattr(base.WorkerPool, "submit", lambda self, w: w.run() or w)


@pytest.fixture(scope="module")
def phantom_nifti(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(shared_data / "mridir_phantom" / "MR_T2_DICOM")))
    mr = sitk.Shrink(r.Execute(), [8, 8, 8])
    out = tmp_path_factory.mktemp("nii") / "phantom_t2_mr.nii.gz"
    sitk.WriteImage(mr, str(out))
    return out


def _same(a: Any, b: Any, fields: tuple[str, ...]) -> None:
    for f in fields:
        assert getattr(a, f) == getattr(b, f), f


def test_translate(qtbot, ctx: AppContext, phantom_nifti: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                   monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan_desktop.qt.panels import translate as panel_mod

    seen = _recorder(monkeypatch, "run_translate", panel_mod, jobs_translate)
    _run_worker_inline(monkeypatch)
    panel = panel_mod.TranslatePanel(ctx)
    qtbot.addWidget(panel)
    panel.set_source_file(phantom_nifti)
    assert panel.current_ref() == "model:mrct_phantom_pix2pix"  # the best fit, chosen for the user
    panel.uncertainty_check.setChecked(True)
    panel.run_button.click()
    _cli(["translate", "--input", str(phantom_nifti), "--out", str(tmp_path / "o.nii.gz"),
          "--model", "model:mrct_phantom_pix2pix", "--device", "cpu", "--uncertainty"])
    gui, cli = seen
    _same(gui, cli, ("source", "from_index", "model", "tta", "batch", "device", "force", "uncertainty"))
    assert gui.uncertainty
    # and the real job on both gives the same synthetic volume
    monkeypatch.undo()
    a = jobs_translate.run_translate(dataclasses.replace(gui, compare_real=False), ctx.paths)
    b = jobs_translate.run_translate(dataclasses.replace(cli, out="", format=jobs_translate.OutputFormat.NONE),
                                     ctx.paths)
    assert np.array_equal(a.synthetic.array, b.synthetic.array)


def _pngs(root: Path, n: int = 16) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def test_train(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import train as panel_mod

    seen = _recorder(monkeypatch, "run_train", panel_mod, jobs_train)
    _run_worker_inline(monkeypatch)
    data = _pngs(tmp_path / "data")
    panel = panel_mod.TrainPanel(ctx)
    qtbot.addWidget(panel)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("wgan_gp"))
    panel.options_box.widgets["n_critic"].setValue(3)  # type: ignore[attr-defined]
    panel.data_box.path_edit.setText(str(data))
    panel.size_combo.setCurrentIndex(panel.size_combo.findData(32))
    panel.steps_spin.setValue(7)
    panel.batch_spin.setValue(4)
    panel.start()
    _cli(["train", "--method", "wgan_gp", "--data", str(data), "--size", "32", "--steps", "7",
          "--batch", "4", "--set", "n_critic=3", "--set", "sample_every=100", "--device", "auto"])
    gui, cli = seen
    assert gui.method == cli.method == "wgan_gp"
    assert gui.method_config == cli.method_config
    for f in ("steps", "batch_size", "seed", "data"):
        assert getattr(gui.train_config, f) == getattr(cli.train_config, f), f


def test_resume(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import train as panel_mod

    run = ctx.paths.runs_dir / "dcgan-resume-me"
    assert main(["train", "--method", "dcgan", "--data", str(_pngs(tmp_path / "data", 8)), "--size", "32",
                 "--steps", "2", "--batch", "4", "--out", str(run), "--device", "cpu"]) == 0
    seen = _recorder(monkeypatch, "run_resume", panel_mod, jobs_train)
    _run_worker_inline(monkeypatch)
    panel = panel_mod.TrainPanel(ctx)
    qtbot.addWidget(panel)
    panel.refresh_runs()
    items = [panel.runs_list.item(i) for i in range(panel.runs_list.count())]
    panel.runs_list.setCurrentItem(next(i for i in items if i.text().startswith(run.name)))
    panel.steps_spin.setValue(5)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.resume_selected()
    _cli(["train", "--resume", str(run), "--steps", "5", "--device", "cpu"])
    gui, cli = seen
    _same(gui, cli, ("run_dir", "steps", "device", "data", "cpu_seconds"))


def test_review_results(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import review as panel_mod

    real, fake = _pngs(tmp_path / "real", 4), _pngs(tmp_path / "fake", 4)
    panel = panel_mod.ReviewPanel(ctx)
    qtbot.addWidget(panel)
    info = jobs_review.run_create(jobs_review.CreateSpec(str(panel.store.path), "scored", (real,), (fake,), seed=1))
    panel.refresh_sessions(select=info.id)
    calls: list[tuple[Any, ...]] = []
    real_results = jobs_review.run_results

    def record(*args: Any) -> Any:
        calls.append(tuple(str(a) if a is not None else None for a in args))
        return real_results(*args)

    monkeypatch.setattr(panel_mod, "run_results", record)
    monkeypatch.setattr(jobs_review, "run_results", record)
    out = tmp_path / "ratings.csv"
    panel.export_csv(out)
    assert main(["review", "--db", str(panel.store.path), "results", info.id, "--csv", str(out),
                 "--summary-csv", str(tmp_path / "ratings_per_image.csv")]) == 0
    gui, cli = calls
    assert gui == cli


def test_train_translation(qtbot, ctx: AppContext, tmp_path: Path,  # type: ignore[no-untyped-def]
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan_desktop.qt.panels import train_translation as panel_mod

    seen = _recorder(monkeypatch, "run_train_translation", panel_mod, jobs_tt)
    _run_worker_inline(monkeypatch)
    mr, ct = _pngs(tmp_path / "P1" / "T1", 4), _pngs(tmp_path / "P1" / "CT", 4)
    w = panel_mod.TranslationTrainWidget(ctx)
    qtbot.addWidget(w)
    w.method_combo.setCurrentIndex(w.method_combo.findData("unet_l1"))
    w.add_pair(str(mr), str(ct))
    w.steps_spin.setValue(9)
    w.register_check.setChecked(True)
    w.qc_spin.setValue(0.7)
    w.start()
    _cli(["translate-train", "--method", "unet_l1", "--pair", str(mr), str(ct), "--steps", "9",
          "--register", "--slice-qc", "0.7", "--out", str(tmp_path / "run")])
    gui, cli = seen
    _same(gui, cli, ("method", "register", "affine", "size", "context", "steps", "batch", "holdout",
                     "extra", "slice_qc"))
    assert gui.slice_qc == 0.7
    assert [Path(p.mr) for p in gui.pairs] == [Path(p.mr) for p in cli.pairs]


@pytest.mark.parametrize("task", ["ct_denoise", "ct_superres", "t1_to_t2", "ct_to_mr"])
def test_translation_tasks(qtbot, ctx: AppContext, tmp_path: Path, task: str,  # type: ignore[no-untyped-def]
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan_desktop.qt.panels import train_translation as panel_mod

    seen = _recorder(monkeypatch, "run_train_translation", panel_mod, jobs_tt)
    _run_worker_inline(monkeypatch)
    a, b = _pngs(tmp_path / "P1" / "A", 4), _pngs(tmp_path / "P1" / "B", 4)
    w = panel_mod.TranslationTrainWidget(ctx)
    qtbot.addWidget(w)
    w.set_task(task)
    w.method_combo.setCurrentIndex(w.method_combo.findData("unet_l1"))
    one = task in ("ct_denoise", "ct_superres")
    assert w.pairs_table.isColumnHidden(2) == one
    w.add_pair(str(a), "" if one else str(b))
    w.start()
    data = ["--series", str(a)] if one else ["--pair", str(a), str(b)]
    _cli(["translate-train", "--task", task, "--method", "unet_l1", *data, "--out", str(tmp_path / "run")])
    gui, cli = seen
    assert gui.task == cli.task == task
    assert [(Path(p.mr), p.ct and Path(p.ct)) for p in gui.pairs] == [(Path(p.mr), p.ct and Path(p.ct)) for p in cli.pairs]


def test_sample(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import sample as panel_mod

    seen = _recorder(monkeypatch, "run_sample", panel_mod, jobs_sample)
    _run_worker_inline(monkeypatch)
    panel = panel_mod.SamplePanel(ctx)
    qtbot.addWidget(panel)
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("model:cxr_cgan_64"))
    panel.n_spin.setValue(5)
    panel.seed_spin.setValue(11)
    panel.label_combo.setCurrentIndex(panel.label_combo.findData("PNEUMONIA"))
    panel.generate()
    _cli(["sample", "--model", "model:cxr_cgan_64", "--n", "5", "--seed", "11", "--label", "PNEUMONIA",
          "--out", str(tmp_path / "s")])
    gui, cli = seen
    _same(gui, cli, ("model", "n", "seed", "label", "truncation", "device"))


def test_evaluate(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import evaluate as panel_mod

    seen = _recorder(monkeypatch, "run_unpaired", panel_mod, jobs_evaluate)
    _run_worker_inline(monkeypatch)
    real, fake = _pngs(tmp_path / "real"), _pngs(tmp_path / "fake")
    panel = panel_mod.EvaluatePanel(ctx)
    qtbot.addWidget(panel)
    panel.real_row.edit.setText(str(real))
    panel.fake_row.edit.setText(str(fake))
    panel.run()
    _cli(["evaluate", "--real", str(real), "--fake", str(fake)])
    gui, cli = seen
    _same(gui, cli, ("real", "fake", "extractor", "memorization", "train", "limit"))


def test_import(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import browser as panel_mod

    seen = _recorder(monkeypatch, "run_import", panel_mod, jobs_index)
    _run_worker_inline(monkeypatch)
    panel = panel_mod.BrowserPanel(ctx)
    qtbot.addWidget(panel)
    panel.import_paths([tmp_path])
    _cli(["import", str(tmp_path), "--db", str(ctx.paths.index_db)])
    gui, cli = seen
    assert gui == cli


def test_export(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import export_dialog as panel_mod

    seen = _recorder(monkeypatch, "run_export", panel_mod, jobs_export)
    _run_worker_inline(monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    vol_dir = tmp_path / "out"
    dlg = panel_mod.ExportDialog(ctx, volume=None)
    qtbot.addWidget(dlg)
    dlg.files = [src / "a.dcm"]
    dlg.out_edit.setText(str(vol_dir))
    dlg.start_export()
    _cli(["anonymize", str(src), str(vol_dir)])
    gui, cli = seen
    assert gui.options == cli.options and gui.out_dir == cli.out_dir


def test_review_create(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.panels import review as panel_mod

    seen = _recorder(monkeypatch, "run_create", panel_mod, jobs_review)
    _run_worker_inline(monkeypatch)
    real, fake = _pngs(tmp_path / "real", 4), _pngs(tmp_path / "fake", 4)
    panel = panel_mod.ReviewPanel(ctx)
    qtbot.addWidget(panel)
    panel.new_session({"name": "s1", "real": str(real), "synthetic": str(fake), "seed": 3,
                       "display_size": 96, "equalise": True, "series": True})
    _cli(["review", "--db", str(panel.store.path), "create", "--name", "s1", "--real", str(real),
          "--fake", str(fake), "--seed", "3", "--display-size", "96"])
    gui, cli = seen
    _same(gui, cli, ("db", "name", "real", "fake", "seed", "scale", "series", "equalise", "display_size"))


def test_models_import(qtbot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from medgan_desktop.qt.main_window import MainWindow

    seen = _recorder(monkeypatch, "run_import", jobs_models)
    win = MainWindow(ctx, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    with pytest.raises(Stop):
        win.import_model(tmp_path / "run", "mine")
    _cli(["models", "import", str(tmp_path / "run"), "--id", "mine"])
    gui, cli = seen
    assert gui == cli


_ALL: dict[str, Callable[..., Any]] = {}
