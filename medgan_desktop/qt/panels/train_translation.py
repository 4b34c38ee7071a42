"""Train an MR→CT translation model: the Train panel's translation tab.

The widget collects MR/CT pairs (files, folders, 2D image folders, or the MR and CT
series of a patient in the study index), the registration settings, the method
(pix2pix, unet_l1, cyclegan, unit, distilled with its teacher) and the training
settings into a :class:`~medgan_desktop.core.jobs.train_translation.TranslationTrainSpec`
and runs :func:`~medgan_desktop.core.jobs.train_translation.run_train_translation` in a
:class:`~medgan_desktop.qt.workers.base.Worker`: the same core job as
``medgan translate-train``. It shows each pair's registration quality as it is
prepared, which part is held out, the loss curves, the held-out metrics and the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.gan.methods.base import Task, available_methods, get_method
from medgan_desktop.core.gan.recommend import ALIAS, translation_recipe
from medgan_desktop.core.imaging.tasks import DEFAULT_TASK, TASKS, TranslationTask, get_task
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.jobs.train import new_run_dir
from medgan_desktop.core.jobs.train_translation import (
    PairSpec,
    TranslationTrainResult,
    TranslationTrainSpec,
    index_pair_specs,
    resolved_spec,
    run_train_translation,
    validate,
)
from medgan_desktop.core.jobs.translate import translation_models
from medgan_desktop.core.models.refs import run_ref
from medgan_desktop.core.models.runs import RUN_JSON, WEIGHTS, ModelLoadError, load_run
from medgan_desktop.core.progress import NoticeEvent, PairEvent, Progress
from medgan_desktop.core.training.devices import list_devices
from medgan_desktop.qt import dialogs
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.flow_layout import flow_row
from medgan_desktop.qt.panels.loss_plot import LossPlot
from medgan_desktop.qt.panels.method_form import MethodOptionsForm
from medgan_desktop.qt.widgets import double_spin_box, form_grid, spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

_DEFAULTS = TranslationTrainSpec(method="pix2pix", pairs=(), out="")
_COL_PATIENT, _COL_MR, _COL_CT, _COL_FROM, _COL_REG = range(5)
_SIZES = (32, 64, 128, 256)


class TranslationTrainWidget(QWidget):
    """MR/CT pairs, registration, method and settings; Start/Stop; curves, metrics, run folder."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker: Worker | None = None
        self.result: TranslationTrainResult | None = None
        self.current_run: Path | None = None
        self.selected_series = ""
        self._running = False
        self._recipe_applied = False
        self._build()
        ctx.series_selected.connect(self._on_series_selected)
        self._on_method_changed()
        self._update_buttons()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.addWidget(self._build_pairs_box())
        lay.addWidget(self._build_method_box())
        btns = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop after the current step; a checkpoint is written.")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn.clicked.connect(self.stop)
        btns.addWidget(self.start_btn)
        btns.addWidget(self.stop_btn)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        btns.addWidget(self.progress_bar, 1)
        lay.addLayout(btns)
        self.status_label = QLabel("Choose the task, add the data, then Start.")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)

        # log y: pix2pix's total G loss (with 100 x L1) would flatten the other curves
        self.plot = LossPlot(log_y=True)
        lay.addWidget(self.plot)

        res = QFormLayout()
        self.metrics_label = QLabel("—")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_label = QLabel("—")
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        res.addRow("Held-out metrics:", self.metrics_label)
        res.addRow("Run folder:", self.run_label)
        lay.addLayout(res)
        lay.addStretch(1)

    def _build_pairs_box(self) -> QGroupBox:
        box = QGroupBox("Task and data")
        self.pairs_box = box
        v = QVBoxLayout(box)
        trow = QHBoxLayout()
        self.task_combo = QComboBox()
        for key, task in TASKS.items():
            self.task_combo.addItem(task.title, key)
            self.task_combo.setItemData(self.task_combo.count() - 1, task.describe(), Qt.ItemDataRole.ToolTipRole)
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        trow.addWidget(QLabel("Task"))
        trow.addWidget(self.task_combo, 1)
        v.addLayout(trow)
        self.task_note = QLabel("")
        self.task_note.setWordWrap(True)
        v.addWidget(self.task_note)
        self.pairs_table = QTableWidget(0, 5)
        self.pairs_table.setHorizontalHeaderLabels(["Patient", "MR", "CT", "From", "Registration"])
        self.pairs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.pairs_table.verticalHeader().setVisible(False)
        hh = self.pairs_table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((_COL_PATIENT, 110), (_COL_MR, 170), (_COL_CT, 170), (_COL_FROM, 60)):
            self.pairs_table.setColumnWidth(col, width)
        self.pairs_table.setMinimumHeight(110)
        self.pairs_table.setMaximumHeight(180)
        self.pairs_table.setToolTip(
            "Patient: edit to group pairs; blank uses the MR's PatientID, else its file name. "
            "All pairs of a patient stay on one side of the held-out split."
        )
        v.addWidget(self.pairs_table)
        self.add_files_btn = QPushButton("Add files…")
        self.add_files_btn.setToolTip(
            "An MR and a CT file: NIfTI/MHA volumes, one DICOM file of each series, or 2D PNG/JPEG images."
        )
        self.add_folders_btn = QPushButton("Add folders…")
        self.add_folders_btn.setToolTip(
            "An MR and a CT folder: DICOM series, or folders of 2D slices matched by file name."
        )
        self.index_btn = QPushButton("From study index")
        self.index_btn.setToolTip(
            "The MR and CT series of the patient selected in the browser (all patients when none)."
        )
        self.remove_btn = QPushButton("Remove")
        self.add_files_btn.clicked.connect(lambda: self._browse_pair(folders=False))
        self.add_folders_btn.clicked.connect(lambda: self._browse_pair(folders=True))
        self.index_btn.clicked.connect(self.add_from_index)
        self.remove_btn.clicked.connect(self.remove_selected)
        # wraps in a narrow dock instead of widening it
        v.addWidget(flow_row(self.add_files_btn, self.add_folders_btn, self.index_btn, self.remove_btn))
        reg = QHBoxLayout()
        self.register_check = QCheckBox("Register CT onto MR")
        self.register_check.setToolTip(
            "Rigid registration (Mattes mutual information) of each CT onto its MR; 2D image "
            "pairs of different field of view are registered slice by slice."
        )
        self.affine_check = QCheckBox("then affine")
        self.affine_check.setToolTip("An affine stage after the rigid one, kept when it helps.")
        self.register_check.toggled.connect(self.affine_check.setEnabled)
        self.register_check.setChecked(_DEFAULTS.register)
        self.affine_check.setChecked(_DEFAULTS.affine)
        self.affine_check.setEnabled(_DEFAULTS.register)
        reg.addWidget(self.register_check)
        reg.addWidget(self.affine_check)
        reg.addStretch(1)
        v.addLayout(reg)
        qc = QHBoxLayout()
        self.qc_label = QLabel("Slice QC")
        self.qc_spin = double_spin_box(
            0.0, 1.0, _DEFAULTS.slice_qc, 0.05,
            tip="2D image pairs: leave out the slices whose registration ends below this share of the "
            "pair's median mutual information (e.g. 0.70), from training and from the held-out "
            "scores. Each left-out slice is listed in the log; every slice's values are saved in the "
            "run's registration_qc.csv. Off keeps every slice.")
        self.qc_spin.setSpecialValueText("off")
        self.qc_label.setBuddy(self.qc_spin)
        self.register_check.toggled.connect(self.qc_spin.setEnabled)
        self.qc_spin.setEnabled(_DEFAULTS.register)
        qc.addWidget(self.qc_label)
        qc.addWidget(self.qc_spin)
        qc.addStretch(1)
        v.addLayout(qc)
        self._on_task_changed()
        return box

    # -- task ---------------------------------------------------------------------------------
    def task(self) -> TranslationTask:
        return get_task(str(self.task_combo.currentData() or DEFAULT_TASK))

    def set_task(self, key: str) -> None:
        i = self.task_combo.findData(key)
        if i < 0:
            raise ValueError(f"unknown task {key!r}")
        self.task_combo.setCurrentIndex(i)

    def _on_task_changed(self, *_: object) -> None:
        """Column names, buttons and notes follow the task: a self-supervised task takes
        one real image per patient (its pairs are made from it), the others two."""
        t = self.task()
        src = f"{t.source_modality} {t.source_contrast}".strip()
        tgt = f"{t.target_modality} {t.target_contrast}".strip()
        one = t.self_supervised
        self.pairs_table.setHorizontalHeaderLabels(
            ["Patient", t.target_modality if one else src, "" if one else tgt, "From", "Registration"])
        self.pairs_table.setColumnHidden(_COL_CT, one)
        self.pairs_table.setColumnHidden(_COL_REG, one)
        self.register_check.setText(f"Register {tgt} onto {src}")
        self.register_check.setVisible(not one)
        self.affine_check.setVisible(not one)
        self.qc_label.setVisible(not one)
        self.qc_spin.setVisible(not one)
        if one:
            self.task_note.setText(f"{t.describe()}. Add one real {t.target_modality} per patient; "
                                   "the model never sees the held-out part.")
        else:
            self.task_note.setText(f"{t.describe()}. Add a {src} and a {tgt} of each patient.")
        self.add_files_btn.setToolTip(f"{'A' if one else 'A ' + src + ' and a'} {tgt} file: NIfTI/MHA "
                                      "volumes, one DICOM file of each series, or 2D PNG/JPEG images.")
        if self.pairs_table.rowCount() and not self._running:
            self._info("The task changed: check that the listed data fit it.")
        if hasattr(self, "start_btn"):  # not while the widget is being built
            self._update_buttons()

    def _build_method_box(self) -> QGroupBox:
        box = QGroupBox("Method and training")
        g = QGridLayout(box)
        self.method_combo = QComboBox()
        recipe = translation_recipe()
        self.method_combo.addItem(f"{recipe.method} (recommended recipe)", ALIAS)
        self.method_combo.setItemData(
            0, f"The measured recipe: {recipe.method} with {recipe.options} and {recipe.settings} "
            f"({recipe.measured})", Qt.ItemDataRole.ToolTipRole)
        for name, cls in available_methods(Task.TRANSLATION).items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(
                self.method_combo.count() - 1, cls.description, Qt.ItemDataRole.ToolTipRole
            )
        self.method_combo.setCurrentIndex(0)
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.method_note = QLabel()
        self.method_note.setWordWrap(True)
        self.teacher_combo = QComboBox()
        self.teacher_combo.setToolTip("The trained translation model the student learns from.")
        self.teacher_browse = QPushButton("Browse run folder…")
        self.teacher_browse.clicked.connect(self._browse_teacher)
        self.teacher_row = QWidget()
        tr = QHBoxLayout(self.teacher_row)
        tr.setContentsMargins(0, 0, 0, 0)
        tr.addWidget(QLabel("Teacher"))
        tr.addWidget(self.teacher_combo, 1)
        tr.addWidget(self.teacher_browse)

        self.size_combo = QComboBox()
        for s in _SIZES:
            self.size_combo.addItem(f"{s} px", s)
        self.size_combo.setCurrentIndex(max(0, self.size_combo.findData(_DEFAULTS.size)))
        self.context_spin = spin_box(0, 4, _DEFAULTS.context)
        self.context_spin.setToolTip(
            "2.5D: neighbouring slices on each side as extra input channels."
        )
        self.holdout_spin = QDoubleSpinBox()
        self.holdout_spin.setRange(0.0, 0.9)
        self.holdout_spin.setSingleStep(0.05)
        self.holdout_spin.setValue(_DEFAULTS.holdout)
        self.holdout_spin.setToolTip(
            "Held out for the metrics: a slab at the end of the volume (one pair) or whole "
            "patients (several). 0 trains on everything without metrics."
        )
        self.steps_spin = spin_box(1, 1_000_000, _DEFAULTS.steps)
        self.batch_spin = spin_box(1, 512, _DEFAULTS.batch)
        self.filters_spin = spin_box(1, 256, _DEFAULTS.base_filters)
        self.filters_spin.setToolTip("Generator width (the student's width for distilled).")
        self.flip_check = QCheckBox("Random left-right flips")
        self.flip_check.setChecked(_DEFAULTS.flip)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto (GPU if present)", "auto")
        for d in list_devices():
            self.device_combo.addItem(d.label, d.key)
        self.minutes_spin = spin_box(0, 7 * 24 * 60, 0)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("until Steps")
        self.minutes_spin.setToolTip("Stop after this many minutes (a checkpoint is written), or "
                                     "at Steps, whichever comes first. 0: until Steps.")
        self.options_form = MethodOptionsForm()

        g.addWidget(QLabel("Method"), 0, 0)
        g.addWidget(self.method_combo, 0, 1)
        g.addWidget(self.method_note, 0, 2, 1, 2)
        g.addWidget(self.teacher_row, 1, 0, 1, 4)
        fields: list[tuple[str, QWidget]] = [
            ("Size", self.size_combo),
            ("Context", self.context_spin),
            ("Steps", self.steps_spin),
            ("Batch", self.batch_spin),
            ("Base filters", self.filters_spin),
            ("Hold-out", self.holdout_spin),
            ("Device", self.device_combo),
            ("Train for", self.minutes_spin),
        ]
        g.addWidget(form_grid(fields), 2, 0, 1, 4)  # one column when the dock is narrow
        g.addWidget(self.flip_check, 3, 0, 1, 4)
        g.addWidget(self.options_form, 4, 0, 1, 4)
        g.setColumnStretch(1, 1)
        g.setColumnStretch(3, 1)
        return box


    # -- method and teacher -------------------------------------------------------------------
    def selected_method(self) -> str:
        """The chosen method (the recipe's method for the recommended entry)."""
        key = str(self.method_combo.currentData() or "")
        return translation_recipe().method if key == ALIAS else key

    def _on_method_changed(self, *_: object) -> None:
        method = self.selected_method()
        cls = available_methods(Task.TRANSLATION).get(method)
        recommended = str(self.method_combo.currentData() or "") == ALIAS
        self.options_form.set_method(cls, translation_recipe().options if recommended else None)
        boxes = {"register": self.register_check, "flip": self.flip_check}
        if recommended:  # the recipe's settings, undone when another method is chosen
            for key, value in translation_recipe().settings.items():
                if key in boxes:
                    boxes[key].setChecked(bool(value))
            self._recipe_applied = True
        elif self._recipe_applied:
            for key, box in boxes.items():
                box.setChecked(bool(getattr(_DEFAULTS, key)))
            self._recipe_applied = False
        note = cls.description if cls is not None else ""
        if method in ("cyclegan", "unit"):
            note += " (MR and CT slices are drawn independently; flips are not used)"
        self.method_note.setText(note)
        distilled = method == "distilled"
        self.teacher_row.setVisible(distilled)
        self.flip_check.setEnabled(method not in ("cyclegan", "unit"))
        if distilled and self.teacher_combo.count() == 0:
            self.refresh_teachers()

    def refresh_teachers(self) -> None:
        """Shipped/imported translation models and local translation runs."""
        current = self.teacher_combo.currentData()
        self.teacher_combo.clear()
        for ref, _app, label in translation_models(self.ctx.paths):
            self.teacher_combo.addItem(label, ref)
        i = self.teacher_combo.findData(current) if current else -1
        self.teacher_combo.setCurrentIndex(
            i if i >= 0 else (0 if self.teacher_combo.count() else -1)
        )

    def _browse_teacher(self) -> None:
        d = dialogs.existing_folder(self, "Teacher run folder")
        if d:
            self.set_teacher_folder(Path(d))

    def set_teacher_folder(self, folder: Path) -> bool:
        """Offer and select a run folder as the teacher (False, with a message, when unusable)."""
        if not _translation_run(folder):
            self._error(f"{folder} is not a trained translation run (run.json and weights).")
            return False
        ref = run_ref(folder)
        i = self.teacher_combo.findData(ref)
        if i < 0:
            self.teacher_combo.addItem(f"run: {folder.name}", ref)
            i = self.teacher_combo.count() - 1
        self.teacher_combo.setCurrentIndex(i)
        return True

    # -- pairs ------------------------------------------------------------------------------
    def _browse_pair(self, folders: bool) -> None:
        what = "folder" if folders else "file"
        pick = dialogs.existing_folder if folders else dialogs.open_file_name
        t = self.task()
        if t.self_supervised:
            path = pick(self, f"A real {t.target_modality} {what}")
            if path:
                self.add_pair(path, "")
            return
        src = f"{t.source_modality} {t.source_contrast}".strip()
        tgt = f"{t.target_modality} {t.target_contrast}".strip()
        mr = pick(self, f"{src} {what}")
        if not mr:
            return
        ct = pick(self, f"{tgt} {what} of the same patient")
        if ct:
            self.add_pair(mr, ct)

    def add_pair(self, mr: str | Path, ct: str | Path, patient: str = "") -> None:
        """Add a pair of files or folders (``patient`` blank: PatientID or file name)."""
        self._add_row(str(mr), str(ct) if ct else "", patient, False, Path(mr).name, Path(ct).name if ct else "")

    def _add_row(
        self, mr: str, ct: str, patient: str, from_index: bool, mr_text: str, ct_text: str
    ) -> None:
        t = self.pairs_table
        r = t.rowCount()
        t.insertRow(r)
        p = QTableWidgetItem(patient)
        p.setToolTip("Blank: the MR's PatientID, else its file name.")
        t.setItem(r, _COL_PATIENT, p)
        for col, value, text in ((_COL_MR, mr, mr_text), (_COL_CT, ct, ct_text)):
            it = QTableWidgetItem(text)
            it.setData(Qt.ItemDataRole.UserRole, value)
            it.setToolTip(value)
            it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
            t.setItem(r, col, it)
        src = QTableWidgetItem("index" if from_index else "file")
        src.setData(Qt.ItemDataRole.UserRole, from_index)
        src.setFlags(src.flags() & ~Qt.ItemFlag.ItemIsEditable)
        t.setItem(r, _COL_FROM, src)
        reg = QTableWidgetItem("")
        reg.setFlags(reg.flags() & ~Qt.ItemFlag.ItemIsEditable)
        t.setItem(r, _COL_REG, reg)
        if not self._running:
            self._info(f"{t.rowCount()} pair(s); Start when ready.")
        self._update_buttons()

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        it = self.pairs_table.item(row, col)
        if it is None:  # every cell is set when the row is added; never None in practice
            it = QTableWidgetItem("")
            self.pairs_table.setItem(row, col, it)
        return it

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.pairs_table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.pairs_table.removeRow(r)
        self._update_buttons()

    def pair_specs(self) -> tuple[PairSpec, ...]:
        t = self.pairs_table
        out = []
        for r in range(t.rowCount()):
            patient = (self._cell(r, _COL_PATIENT).text() or "").strip()
            mr = str(self._cell(r, _COL_MR).data(Qt.ItemDataRole.UserRole))
            ct = str(self._cell(r, _COL_CT).data(Qt.ItemDataRole.UserRole))
            from_index = bool(self._cell(r, _COL_FROM).data(Qt.ItemDataRole.UserRole))
            out.append(PairSpec(mr, ct, patient, from_index))
        return tuple(out)

    def _on_series_selected(self, uid: str) -> None:
        self.selected_series = uid

    def add_from_index(self) -> int:
        """Add the MR/CT pairs of the browser's patient (all patients when none is selected)."""
        if not self.ctx.paths.index_db.exists():
            self._error("The study index is empty: import the MR and CT series first.")
            return 0
        patient = None
        try:
            index = self.ctx.index
            if self.selected_series:
                rec = index.series(self.selected_series)
                if rec is not None:
                    patient = rec.patient_id or rec.study_uid
            _db, found = index_pair_specs(self.ctx.paths.index_db, task=self.task().key)
        except JobError as exc:
            self._error(str(exc))
            return 0
        chosen = [f for f in found if patient is None or f.patient == patient]
        have = {(s.mr, s.ct) for s in self.pair_specs()}
        added = 0
        for ps in chosen:
            if (ps.mr, ps.ct) in have:
                continue
            self._add_row(ps.mr, ps.ct, ps.patient, True, _series_text(index, ps.mr),
                          _series_text(index, ps.ct))
            added += 1
        if not chosen:
            who = f"patient {patient}" if patient else "any patient"
            self._error(f"The study index holds no MR and CT series of {who}.")
        else:
            self._info(f"Added {added} MR/CT pair(s) from the study index.")
        return added

    # -- running ----------------------------------------------------------------------------
    def job_spec(self, out: Path) -> TranslationTrainSpec:
        """The job the settings describe (the teacher is resolved and verified by the job)."""
        pairs = self.pair_specs()
        if not pairs:
            raise JobError("add at least one MR/CT pair")
        index_db = str(self.ctx.paths.index_db) if any(p.from_index for p in pairs) else ""
        teacher = ""
        if get_method(self.selected_method()).frozen_inputs:
            teacher = str(self.teacher_combo.currentData() or "")
        return TranslationTrainSpec(
            method=self.selected_method(),
            teacher=teacher,
            extra=self.options_form.values(),
            budget_minutes=float(self.minutes_spin.value()),
            pairs=pairs,
            out=str(out),
            register=self.register_check.isChecked(),
            affine=self.register_check.isChecked() and self.affine_check.isChecked(),
            slice_qc=float(self.qc_spin.value()) if self.register_check.isChecked() else 0.0,
            size=int(self.size_combo.currentData()),
            context=self.context_spin.value(),
            base_filters=self.filters_spin.value(),
            steps=self.steps_spin.value(),
            batch=self.batch_spin.value(),
            lr=_DEFAULTS.lr,
            holdout=float(self.holdout_spin.value()),
            flip=self.flip_check.isChecked() and self.flip_check.isEnabled(),
            device=str(self.device_combo.currentData()),
            index_db=index_db,
            task=self.task().key,
        )

    def is_running(self) -> bool:
        return self._running

    def start(self) -> None:
        if self._running:
            return
        method = self.selected_method()
        run_dir = new_run_dir(self.ctx.paths, f"{method}-{self.task().key.replace('_', '')}")
        if get_method(method).frozen_inputs and not self.teacher_combo.currentData():
            self._error("Choose a teacher model or run folder for the distilled student.")
            return
        try:
            spec = self.job_spec(run_dir)
            validate(resolved_spec(spec))
        except JobError as exc:
            self._error(str(exc))
            return
        self.current_run = run_dir
        self.result = None
        self.plot.clear_curves()
        for r in range(self.pairs_table.rowCount()):
            self._cell(r, _COL_REG).setText("")
        self.metrics_label.setText("—")
        self.run_label.setText(str(run_dir))
        self.progress_bar.setRange(0, spec.steps)
        self.progress_bar.setValue(0)
        w = Worker(run_train_translation, spec, name=f"translate-train {run_dir.name}").connect_slots(
            progress=self._on_progress, finished=self._on_finished, failed=self._on_failed,
            cancelled=lambda: self._info("Stopped before training started."), done=self._on_done)
        self.worker = w
        self._running = True
        self.ctx.workers.submit(w)
        self._info(f"Preparing {len(spec.pairs)} pair(s) for {run_dir.name}…")
        self._update_buttons()

    def stop(self) -> None:
        if self.worker is not None and self._running:
            self.worker.cancel()
            self._info("Stopping: writing a checkpoint…")

    def _update_buttons(self) -> None:
        busy = self._running
        self.start_btn.setEnabled(not busy and self.pairs_table.rowCount() > 0)
        self.stop_btn.setEnabled(busy)
        for w in (self.add_files_btn, self.add_folders_btn, self.index_btn, self.remove_btn):
            w.setEnabled(not busy)

    def _on_progress(self, p: Progress) -> None:
        ev = p.event
        step = p.step
        if step is not None:
            self.plot.add(step)
            self.progress_bar.setValue(min(step.step, self.progress_bar.maximum()))
            eta = step.eta_s
            self._info(f"{p.message}  ·  CPU {step.cpu_s:.0f} s  ·  ETA {int(eta // 60)} min {int(eta % 60)} s")
            return
        if isinstance(ev, PairEvent):
            row = p.done - 1
            if 0 <= row < self.pairs_table.rowCount():
                self._cell(row, _COL_REG).setText(ev.registration)
                self._cell(row, _COL_REG).setToolTip(ev.registration)
                pat = self._cell(row, _COL_PATIENT)
                if not pat.text():
                    pat.setText(ev.patient)
        if isinstance(ev, NoticeEvent):
            self._error(ev.text)
            return
        self._info(p.message)

    def _on_finished(self, result: TranslationTrainResult) -> None:
        self.result = result
        s = result.summary
        state = "stopped" if s.cancelled else "finished"
        self.metrics_label.setText(metrics_text(result))
        self.run_label.setText(str(result.run_dir))
        self._info(
            f"Run {result.run_dir.name} {state} at step {s.step}/{s.total_steps} "
            f"on {result.n_slices} slices ({s.images_per_s:.1f} images/s)."
        )
        self.ctx.status.emit(f"Translation training {state}: {result.run_dir.name}")

    def _on_failed(self, message: str, _tb: str) -> None:
        self._error(message)

    def _on_done(self) -> None:
        self._running = False
        self.plot.redraw()
        self._update_buttons()

    def _info(self, text: str) -> None:
        self.status_label.setStyleSheet("")
        self.status_label.setText(text)

    def _error(self, text: str) -> None:
        self.status_label.setStyleSheet("color: #c0392b;")
        self.status_label.setText(text)


def metrics_text(result: TranslationTrainResult) -> str:
    """The held-out metrics as one line, saying what was held out."""
    m = result.heldout
    if m is None:
        if result.summary.cancelled:
            return "not evaluated (the run was stopped)"
        return "not evaluated (no held-out part)"
    split = result.split
    if split.get("kind") == "slab":
        a, b = split["test_slices"]
        what = f"slices {a}–{b}"
    else:
        what = "patients " + ", ".join(str(x) for x in split.get("test_patients", []))
    return (
        f"MAE {m['mae']:.1f} HU · PSNR {m['psnr']:.2f} dB · SSIM {m['ssim']:.3f}  "
        f"(held out: {what})"
    )


def _translation_run(folder: Path) -> bool:
    if not ((folder / RUN_JSON).is_file() and (folder / WEIGHTS).is_file()):
        return False
    try:
        return load_run(folder).task == "translation"
    except ModelLoadError:  # a damaged run is simply not offered
        return False


def _series_text(index: Any, uid: str) -> str:
    rec = index.series(uid)
    if rec is None:
        return uid
    return f"{rec.modality} {rec.description or '(no description)'} ({rec.instance_count})"

