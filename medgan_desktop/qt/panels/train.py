"""The Train panel: choose data and a method, watch a GAN learn, stop and resume runs.

Two tabs: *Synthesis* (noise -> image methods) and *Translation* (image to image: MR→CT, CT→MR, T1→T2, denoising, super-resolution), which hosts
:class:`medgan_desktop.qt.panels.train_translation.TranslationTrainWidget` when that module
is present. Synthesis runs through :func:`medgan_desktop.core.training.loop.train` in a
:class:`~medgan_desktop.qt.workers.base.Worker` (the ``medgan train`` CLI calls the same
function). Runs live in ``AppPaths.runs_dir`` and are listed again after a restart.

The method list opens on the measured small-data setting of
:mod:`medgan_desktop.core.gan.recommend` (the same one ``medgan train --method recommended``
uses). Choosing a method sets every method field from that method's preset, so nothing
carries over from the method chosen before.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.gan.methods.base import MethodConfig, Task, available_methods
from medgan_desktop.core.gan.recommend import (
    ALIAS,
    RECOMMENDED_METHOD,
    RECOMMENDED_OPTIONS,
    describe,
    preset,
    recommended_config,
)
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.jobs.train import (
    Preview,
    ResumeSpec,
    TrainResult,
    TrainSpec,
    label_for,
    new_run_dir,
    resume_plan,
    run_resume,
    run_train,
)
from medgan_desktop.core.jobs.train import preview as preview_job
from medgan_desktop.core.models.runs import METRICS, SAMPLES, list_checkpoints, load_run
from medgan_desktop.core.progress import NoticeEvent, Progress
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.devices import cpu_bf16_supported, list_devices
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.loss_plot import LossPlot
from medgan_desktop.qt.panels.method_form import MethodOptionsForm
from medgan_desktop.qt.panels.train_data import TrainDataBox
from medgan_desktop.qt.widgets import GridImage, NoticeBar, array_pixmap, form_grid, note_label, spin_box
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

#: The method entry the panel opens on: the recommended small-data setting
#: (:data:`~medgan_desktop.core.gan.recommend.RECOMMENDED_METHOD` with
#: :data:`~medgan_desktop.core.gan.recommend.RECOMMENDED_OPTIONS`).
DEFAULT_ENTRY = ALIAS
#: The module that provides the translation tab's widget.
TRANSLATION_WIDGET_MODULE = "medgan_desktop.qt.panels.train_translation"
#: The losses the synthesis tab plots (the rest are in metrics.jsonl).
_CURVE_KEYS = ("d", "g", "d_real", "d_fake", "gp", "r1", "l1", "cycle")



def _recommended_entry_text() -> str:
    """"dcgan + DiffAugment + EMA (recommended)" for the method list."""
    short = {"diffaugment": "DiffAugment", "ema_decay": "EMA"}
    opts = "".join(f" + {short.get(k, k)}" for k, v in RECOMMENDED_OPTIONS.items() if v)
    return f"{RECOMMENDED_METHOD}{opts} (recommended)"


def _sample_caption(path: Path) -> str:
    """``samples/step_000400.png`` -> "Samples at step 400"."""
    digits = path.stem.rpartition("_")[2]
    return f"Samples at step {int(digits)}" if digits.isdigit() else f"Samples: {path.name}"


def _translation_tab(context: AppContext) -> tuple[QWidget, QWidget | None]:
    """The translation tab's content and the hosted widget (None: a placeholder is shown)."""
    try:
        spec = importlib.util.find_spec(TRANSLATION_WIDGET_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        text = "Translation training is not available in this build; use <code>medgan translate-train</code>."
        return note_label(text), None
    try:
        mod = importlib.import_module(TRANSLATION_WIDGET_MODULE)
        widget: QWidget = mod.TranslationTrainWidget(context)
    except Exception as exc:  # shown honestly in the tab, the synthesis tab keeps working
        log.exception("translation training widget failed to build")
        return note_label(f"Translation training failed to load: {exc}"), None
    return widget, widget


class TrainPanel(QWidget):
    """Synthesis tab: data, method and device; Start/Pause/Stop/Resume; live curves and samples.
    Translation tab: the MR→CT training widget, when available."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker: Worker | None = None
        self.preview_worker: Worker | None = None
        self.current_run: Path | None = None
        self._training = False
        self._last_sample: Path | None = None
        self._build()
        context.series_selected.connect(self.data_box.set_selected_series)
        self.refresh_runs()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget()
        synth = QWidget()
        self._build_synthesis(synth)
        self.tabs.addTab(synth, "Synthesis")
        self.translation_tab, self.translation_widget = _translation_tab(self.context)
        self.tabs.addTab(self.translation_tab, "Translation")
        self.tabs.currentChanged.connect(self._fit_current_tab)
        self._fit_current_tab(self.tabs.currentIndex())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)

    def _fit_current_tab(self, index: int) -> None:
        """Size the tabs to the page shown, not to the tallest page (the dock scrolls)."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            if page is not None:
                page.setSizePolicy(policy, policy)
        self.tabs.updateGeometry()

    def _build_synthesis(self, page: QWidget) -> None:
        lv = QVBoxLayout(page)
        self.data_box = TrainDataBox(self.context)
        self.data_box.preview_btn.clicked.connect(self.preview)
        lv.addWidget(self.data_box)
        lv.addWidget(self._build_method_box())
        lv.addWidget(self._build_advanced())

        btns = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause")
        self.stop_btn = QPushButton("Stop")
        self.resume_btn = QPushButton("Resume run")
        self.resume_btn.setToolTip("Continue the run selected below up to the Steps total.")
        for b in (self.start_btn, self.pause_btn, self.stop_btn, self.resume_btn):
            btns.addWidget(b)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn.clicked.connect(self.resume_selected)
        lv.addLayout(btns)
        self.status_label = QLabel("Idle")
        self.status_label.setWordWrap(True)
        lv.addWidget(self.status_label)
        self.notice_label = NoticeBar()
        lv.addWidget(self.notice_label)

        # monitoring, below the form so the dock never needs to scroll sideways
        self.plot = LossPlot(keys=_CURVE_KEYS)
        lv.addWidget(self.plot)
        imgs = QGridLayout()
        self.preview_caption = QLabel("Preview (after preprocessing)")
        self.sample_caption = QLabel("Samples")
        self.preview_label = GridImage("Preview batch shows 16 training images here")
        self.sample_label = GridImage("Samples appear here while training")
        pairs = ((self.preview_caption, self.preview_label), (self.sample_caption, self.sample_label))
        for col, (cap, lab) in enumerate(pairs):
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cap.setWordWrap(True)
            cap.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            imgs.setColumnStretch(col, 1)
            imgs.addWidget(cap, 0, col)
            imgs.addWidget(lab, 1, col)
        lv.addLayout(imgs)
        lv.addWidget(QLabel("Runs"))
        self.runs_list = QListWidget()
        self.runs_list.setMinimumHeight(90)
        self.runs_list.setMaximumHeight(160)
        self.runs_list.currentItemChanged.connect(self._on_run_selected)
        lv.addWidget(self.runs_list)
        lv.addWidget(QLabel("Checkpoints of the run"))
        self.ckpt_list = QListWidget()
        self.ckpt_list.setMinimumHeight(70)
        self.ckpt_list.setMaximumHeight(120)
        lv.addWidget(self.ckpt_list)
        lv.addStretch(1)
        self._update_buttons()
        self._on_method_changed()

    def _build_method_box(self) -> QGroupBox:
        m_box = QGroupBox("Method")
        mv = QVBoxLayout(m_box)
        self.method_combo = QComboBox()
        self.method_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_combo.setMinimumContentsLength(20)
        self.method_combo.addItem(_recommended_entry_text(), ALIAS)
        self.method_combo.setItemData(0, describe(), Qt.ItemDataRole.ToolTipRole)
        for name, cls in available_methods(Task.SYNTHESIS).items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(self.method_combo.count() - 1, cls.description, Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(DEFAULT_ENTRY)))
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        mrow = QHBoxLayout()
        mrow.addWidget(QLabel("Method"))
        mrow.addWidget(self.method_combo, 1)
        mv.addLayout(mrow)
        self.method_desc = QLabel()
        self.method_desc.setWordWrap(True)
        self.method_desc.setStyleSheet("color: palette(mid);")
        mv.addWidget(self.method_desc)

        self.size_combo = QComboBox()
        for s in (32, 64, 128, 256):
            self.size_combo.addItem(f"{s} px", s)
        self.size_combo.setCurrentIndex(1)
        self.size_combo.setToolTip("Training resolution; 64 px trains in minutes on a CPU, 256 px needs a GPU.")
        self.batch_spin = spin_box(1, 1024, 32, "Global batch size; halve it after an out-of-memory error.")
        self.steps_spin = spin_box(1, 10_000_000, 2000, "Total optimisation steps (for Resume: the new total).")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-1)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setToolTip(
            "Adam learning rate of the generator; the discriminator's keeps the method's ratio (DCGAN paper: 2e-4)."
        )
        self.diffaug_edit = QLineEdit()
        self.diffaug_edit.setToolTip(
            "DiffAugment policy (Zhao et al. 2020) applied to real and fake images: any of "
            "color, translation, cutout; empty to switch off. Helps most below ~2000 images."
        )
        self.ema_spin = QDoubleSpinBox()
        self.ema_spin.setDecimals(4)
        self.ema_spin.setRange(0.0, 0.9999)
        self.ema_spin.setToolTip("Generator EMA decay (0: off). Samples come from the averaged generator.")
        self.minutes_spin = spin_box(0, 7 * 24 * 60)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("until Steps")
        self.minutes_spin.setToolTip(
            "Stop after this many minutes (a checkpoint is written), or at Steps, whichever "
            "comes first: 'train over lunch'. 0: until Steps.")
        self.val_spin = spin_box(0, 1_000_000)
        self.val_spin.setSingleStep(100)
        self.val_spin.setSpecialValueText("off")
        self.val_spin.setSuffix(" steps")
        self.val_spin.setToolTip(
            "Every N steps, score the generator on a validation set (whole patients held out of "
            "an image folder, read from file names): Fréchet distance in the shipped features, "
            "class-matched. The best step is kept as best.safetensors, and sampling and export "
            "use it: single checkpoints swing widely. Off: the last step is used.")
        self.val_share_spin = QDoubleSpinBox()
        self.val_share_spin.setRange(0.02, 0.5)
        self.val_share_spin.setSingleStep(0.05)
        self.val_share_spin.setDecimals(2)
        self.val_share_spin.setValue(0.1)
        self.val_share_spin.setToolTip("Share of the images held out for validation (by patient).")
        self.val_share_spin.setEnabled(False)
        self.val_spin.valueChanged.connect(lambda v: self.val_share_spin.setEnabled(v > 0))
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto (GPU if present)", "auto")
        for d in list_devices():
            self.device_combo.addItem(d.label, d.key)
        self.device_combo.setToolTip("Detected devices with their memory.")
        mv.addWidget(
            form_grid(
                [
                    ("Size", self.size_combo),
                    ("Batch", self.batch_spin),
                    ("Steps", self.steps_spin),
                    ("Learning rate", self.lr_spin),
                    ("DiffAugment", self.diffaug_edit),
                    ("EMA decay", self.ema_spin),
                    ("Train for", self.minutes_spin),
                    ("Keep best, validate every", self.val_spin),
                    ("Validation share", self.val_share_spin),
                ]
            )
        )
        drow = QHBoxLayout()
        drow.addWidget(QLabel("Device"))
        drow.addWidget(self.device_combo, 1)
        self.bf16_check = QCheckBox("bfloat16 on CPU")
        fast_bf16 = cpu_bf16_supported()
        self.bf16_check.setEnabled(fast_bf16)
        self.bf16_check.setToolTip(
            "Train under bfloat16 autocast on the CPU (weights stay float32): about 1.6x faster "
            "steps on CPUs with AVX512-BF16 or AMX (benchmarks/bench_training.py). Off by default: "
            "the published quality figures were measured in float32. GPUs use bfloat16 anyway."
            + ("" if fast_bf16 else " This CPU has no fast bfloat16 kernels.")
        )
        mv.addLayout(drow)
        mv.addWidget(self.bf16_check)  # on its own line: the box fits a narrow dock
        return m_box

    def _build_advanced(self) -> QWidget:
        """A collapsible group: method options, sampling and checkpoints."""
        box = QWidget()
        bv = QVBoxLayout(box)
        bv.setContentsMargins(0, 0, 0, 0)
        self.advanced_btn = QToolButton()
        self.advanced_btn.setText("Advanced: method options, checkpoints")
        self.advanced_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_btn.setCheckable(True)
        self.advanced_btn.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_btn.setAutoRaise(True)
        self.advanced_btn.toggled.connect(self.set_advanced_visible)
        bv.addWidget(self.advanced_btn)
        self.advanced = QWidget()
        av = QVBoxLayout(self.advanced)
        av.setContentsMargins(0, 0, 0, 0)

        self.options_box = MethodOptionsForm()
        av.addWidget(self.options_box)

        run = QGroupBox("Run")
        self.sample_every = spin_box(0, 1_000_000, 100, "Write a sample grid every N steps (0: never).")
        self.ckpt_every = spin_box(1, 1_000_000, 500, "Write a checkpoint every N steps (always at stop).")
        self.seed_spin = spin_box(0, 2**31 - 1, 0, "Random seed: the same seed and data give the same run.")
        QVBoxLayout(run).addWidget(
            form_grid([("Sample every", self.sample_every), ("Checkpoint every", self.ckpt_every),
                       ("Seed", self.seed_spin)])
        )
        av.addWidget(run)
        bv.addWidget(self.advanced)
        self.advanced.setVisible(False)
        return box

    def set_advanced_visible(self, on: bool) -> None:
        """Show or hide the advanced settings."""
        if self.advanced_btn.isChecked() != on:
            self.advanced_btn.setChecked(on)  # comes back here through toggled
            return
        self.advanced_btn.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.advanced.setVisible(on)

    # -- method ------------------------------------------------------------------------------
    def selected_method(self) -> str:
        """The registry name of the chosen method (the recommended entry is its method)."""
        key = str(self.method_combo.currentData())
        return RECOMMENDED_METHOD if key == ALIAS else key

    def _preset(self) -> MethodConfig:
        """The chosen entry's preset: the method's own, or the recommended setting."""
        key = str(self.method_combo.currentData())
        return recommended_config() if key == ALIAS else preset(key)

    def _on_method_changed(self, *_: object) -> None:
        """Set every method field from the chosen entry's preset (nothing carries over)."""
        p = self._preset()
        method = self.selected_method()
        self.lr_spin.setValue(p.lr_g)
        self.diffaug_edit.setText(p.diffaugment)
        self.ema_spin.setValue(p.ema_decay)
        self.method_desc.setText(self.method_combo.currentData(Qt.ItemDataRole.ToolTipRole) or "")
        cls = available_methods(Task.SYNTHESIS).get(method)
        self.options_box.set_method(cls, p.extra)
        labels = cls is not None and (cls.requires_labels or cls.supports_labels)
        box = self.data_box
        if cls is not None and cls.requires_labels and not box.labels_check.isChecked():
            box.labels_check.setChecked(True)
            box.labels_auto = True
        elif not (cls is not None and cls.requires_labels) and box.labels_auto:
            box.labels_check.setChecked(False)
        if not labels and box.labels_check.isChecked():
            # the tick is kept for a switch back, but never silently unused
            self.notice_label.add(f"{method} does not use class labels: “Class labels from "
                                  "subfolders” stays ticked but has no effect with it; choose "
                                  "cgan, stylegan2 or progressive to condition on classes.")
        box.labels_check.setEnabled(labels)
        box.labels_check.setToolTip(
            "Each first-level subfolder is a class (e.g. NORMAL / PNEUMONIA)."
            + ("" if labels else f" {method} does not use class labels: choose cgan, stylegan2 "
               "or progressive to condition on them."))


    def data_config(self) -> DataConfig:
        """The data box's settings at the chosen training size."""
        return self.data_box.data_config(int(self.size_combo.currentData()))

    def _index_db(self) -> str:
        return str(self.context.paths.index_db) if self.context.paths.index_db.exists() else ""

    def preview(self) -> None:
        try:
            data = self.data_config()
        except ValueError as exc:
            QMessageBox.warning(self, "Preview", str(exc))
            return
        if self.preview_worker is not None and self.preview_worker.is_running():
            return
        w = Worker(preview_job, data, self._index_db(), name="preview")
        w.finished.connect(self._on_preview)
        w.failed.connect(lambda msg, _tb: QMessageBox.warning(self, "Preview failed", msg))
        self.preview_worker = w
        self.context.workers.submit(w)

    def _on_preview(self, result: Preview) -> None:
        arr, n, names = result.grid, result.n_images, result.class_names
        self.preview_label.set_image(array_pixmap(arr))
        cls = f"; classes: {', '.join(names)}" if names else ""
        self.status_label.setText(f"{n} training images{cls}")
        self.preview_caption.setText(f"Preview: 16 of {n} training images after preprocessing")

    # -- run control -------------------------------------------------------------------------
    def method_config(self) -> MethodConfig:
        """The chosen entry's preset with the form's values (size and channels from the data)."""
        base = self._preset()
        lr = self.lr_spin.value()
        lr_d = base.lr_d if lr == base.lr_g else lr * (base.lr_d / base.lr_g if base.lr_g else 1.0)
        return dataclasses.replace(
            base,
            size=int(self.size_combo.currentData()),
            channels=1 if self.data_box.rb_series.isChecked() else int(self.data_box.channels_combo.currentData()),
            lr_g=lr,
            lr_d=lr_d,
            diffaugment=self.diffaug_edit.text().strip(),
            ema_decay=self.ema_spin.value(),
            extra={**base.extra, **self.options_box.values()},
        )

    def train_config(self, data: DataConfig) -> TrainConfig:
        val_every = self.val_spin.value()
        if val_every:
            data = dataclasses.replace(data, val_share=round(self.val_share_spin.value(), 4))
        return TrainConfig(
            steps=self.steps_spin.value(),
            batch_size=self.batch_spin.value(),
            checkpoint_every=self.ckpt_every.value(),
            sample_every=self.sample_every.value(),
            seed=self.seed_spin.value(),
            device=str(self.device_combo.currentData()),
            cpu_bf16=self.bf16_check.isChecked(),
            budget_minutes=float(self.minutes_spin.value()),
            val_every=val_every,
            data=data,
        )

    def is_training(self) -> bool:
        """True from Start/Resume until the worker reports it is done."""
        return self._training

    def start(self) -> None:
        if self.is_training():
            QMessageBox.information(self, "Train", "A run is already training; stop it first.")
            return
        try:
            data = self.data_config()
        except ValueError as exc:
            QMessageBox.warning(self, "Train", str(exc))
            return
        method = self.selected_method()
        cls = available_methods(Task.SYNTHESIS).get(method)
        if cls is not None and cls.requires_labels and not data.label_from_subfolders:
            QMessageBox.warning(
                self, "Train",
                f"{method} is class-conditional: choose an image folder with one subfolder per class "
                "and tick “Class labels from subfolders”.",
            )
            return
        label = label_for(str(self.method_combo.currentData()))
        spec = TrainSpec(method, self.method_config(), self.train_config(data),
                         out=str(new_run_dir(self.context.paths, method)),
                         index_db=self._index_db(), label=label)
        self._launch(Path(spec.out), run_train, spec, resume=False)

    def resume_selected(self) -> None:
        item = self.runs_list.currentItem()
        if item is None:
            QMessageBox.information(self, "Resume", "Select a run in the list first.")
            return
        if self.is_training():
            QMessageBox.information(self, "Resume", "A run is already training; stop it first.")
            return
        run_dir = Path(item.data(Qt.ItemDataRole.UserRole))
        try:
            plan = resume_plan(run_dir)  # the same rule as medgan train --resume
        except JobError as exc:
            QMessageBox.warning(self, "Resume", str(exc))
            return
        total = self.steps_spin.value()
        minutes = float(self.minutes_spin.value())
        if total <= plan.step and not minutes:
            QMessageBox.information(
                self, "Resume", f"{run_dir.name} is at step {plan.step}; set Steps above {plan.step} to continue."
            )
            return
        spec = ResumeSpec(str(run_dir), steps=total, device=str(self.device_combo.currentData()),
                          budget_minutes=minutes or None, index_db=self._index_db())
        self._launch(run_dir, run_resume, spec, resume=True)

    def _launch(self, run_dir: Path, job: Any, spec: Any, resume: bool) -> None:
        self.current_run = run_dir
        self.plot.clear_curves()
        if resume:
            self.plot.load_metrics(run_dir / METRICS)
        w = Worker(job, spec, self.context.paths, name=f"train {run_dir.name}").connect_slots(
            progress=self._on_progress, finished=self._on_finished, failed=self._on_failed,
            cancelled=lambda: self.status_label.setText("Stopped"), done=self._on_done)
        self.worker = w
        self._training = True
        self.notice_label.show_lines([])
        self.context.workers.submit(w)
        self.status_label.setText(f"{'Resuming' if resume else 'Starting'} {run_dir.name}…")
        self._update_buttons()

    def toggle_pause(self) -> None:
        if not self.is_training() or self.worker is None:
            return
        tok = self.worker.token
        if tok.paused:
            tok.resume()
            self.pause_btn.setText("Pause")
            self.status_label.setText("Resumed")
        else:
            tok.pause()
            self.pause_btn.setText("Continue")
            self.status_label.setText("Paused (the run waits between steps)")

    def stop(self) -> None:
        if self.worker is not None and self.is_training():
            self.worker.cancel()  # also releases a pause; a checkpoint is written
            self.status_label.setText("Stopping: writing a checkpoint…")

    def _update_buttons(self) -> None:
        busy = self.is_training()
        self.start_btn.setEnabled(not busy)
        self.resume_btn.setEnabled(not busy)
        self.pause_btn.setEnabled(busy)
        self.stop_btn.setEnabled(busy)
        if not busy:
            self.pause_btn.setText("Pause")

    # -- progress ----------------------------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        ev = p.event
        if isinstance(ev, NoticeEvent):
            self.notice_label.add(ev.text)
            return
        step = p.step
        if step is None:
            self.status_label.setText(p.message)
            return
        self.plot.add(step)
        eta = step.eta_s
        self.status_label.setText(
            f"{p.message}  ·  {step.images_per_s:.1f} images/s  ·  CPU {step.cpu_s:.0f} s  ·  "
            f"ETA {int(eta // 60)} min {int(eta % 60)} s"
        )
        if step.sample:
            self._refresh_sample()
        if step.checkpoint:
            self._refresh_checkpoints()

    def _load_metrics(self, run_dir: Path) -> None:
        self.plot.load_metrics(run_dir / METRICS)

    def _refresh_sample(self) -> None:
        if self.current_run is None:
            return
        d = self.current_run / SAMPLES
        if not d.is_dir():
            return
        files = sorted(d.glob("step_*.png"))
        if files and files[-1] != self._last_sample:
            self._last_sample = files[-1]
            pm = QPixmap(str(files[-1]))
            if not pm.isNull():
                self.sample_label.set_image(pm)
                self.sample_label.setToolTip(str(files[-1]))
                self.sample_caption.setText(_sample_caption(files[-1]))

    def _refresh_checkpoints(self) -> None:
        self.ckpt_list.clear()
        if self.current_run is None:
            return
        for step, path in list_checkpoints(self.current_run):
            mb = path.stat().st_size / 2**20
            it = QListWidgetItem(f"step {step}  ({mb:.1f} MB)")
            it.setData(Qt.ItemDataRole.UserRole, str(path))
            self.ckpt_list.addItem(it)

    def _on_finished(self, result: TrainResult) -> None:
        summary = result.summary
        state = {"total": "finished", "user": "stopped", "cpu_budget": "stopped (CPU budget spent)",
                 "time_budget": "stopped (time budget spent)"}[str(summary.stopped_by)]
        best = result.best
        kept = (f"; best validation FD {best.val_fd:.3f} at step {best.step}, kept as best.safetensors "
                "(sampling and export use it)" if best is not None else "")
        self.status_label.setText(
            f"Run {summary.run_dir.name} {state} at step {summary.step}/{summary.total_steps} "
            f"({summary.images_per_s:.1f} images/s){kept}"
        )
        self.context.status.emit(f"Training {state}: {summary.run_dir.name}")

    def _on_failed(self, message: str, _tb: str) -> None:
        self.status_label.setText(message)
        QMessageBox.warning(self, "Training failed", message)

    def _on_done(self) -> None:
        self._training = False
        self.plot.redraw()
        self._refresh_sample()
        self._refresh_checkpoints()
        self.refresh_runs()
        self._update_buttons()

    # -- runs --------------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        """List every run folder under the data dir (newest first)."""
        current = str(self.current_run) if self.current_run else None
        self.runs_list.blockSignals(True)
        self.runs_list.clear()
        root = self.context.paths.runs_dir
        dirs = sorted((p for p in root.iterdir() if (p / "run.json").is_file()), reverse=True) if root.is_dir() else []
        for d in dirs:
            try:
                info = load_run(d)
            except Exception as exc:  # a damaged run is listed with its problem
                it = QListWidgetItem(f"{d.name}  (unreadable: {exc})")
            else:
                ckpts = list_checkpoints(d)
                done = ckpts[-1][0] if ckpts else 0
                total = int(info.train_config.get("steps", 0))
                it = QListWidgetItem(f"{d.name}  ·  {info.method}  ·  step {done}/{total}")
            it.setData(Qt.ItemDataRole.UserRole, str(d))
            self.runs_list.addItem(it)
            if current == str(d):
                self.runs_list.setCurrentItem(it)
        self.runs_list.blockSignals(False)

    def _on_run_selected(self, item: QListWidgetItem | None, _prev: QListWidgetItem | None = None) -> None:
        if item is None or self.is_training():
            return
        self.current_run = Path(item.data(Qt.ItemDataRole.UserRole))
        self.plot.clear_curves()
        self._last_sample = None
        self.sample_label.clear_image("No sample grid in this run yet")
        self.sample_caption.setText("Samples")
        self._load_metrics(self.current_run)
        self._refresh_sample()
        self._refresh_checkpoints()
