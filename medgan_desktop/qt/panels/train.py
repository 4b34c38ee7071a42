"""The Train panel: choose data and a method, watch a GAN learn, stop and resume runs.

Everything runs through :func:`medgan_desktop.core.training.loop.train` in a
:class:`~medgan_desktop.qt.workers.base.Worker` (the ``medgan train`` CLI calls the same
function). Runs live in ``AppPaths.runs_dir`` and are listed again after a restart.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.gan.methods.base import MethodConfig, Task, available_methods
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.devices import list_devices
from medgan_desktop.core.training.loop import RunSummary
from medgan_desktop.core.training.run import METRICS, SAMPLES, list_checkpoints, load_run
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

#: The recommended default for new users: plain DCGAN measured best at equal CPU budget
#: (benchmarks/results/synthesis_quality.md: no other method, and no DiffAugment/EMA variant,
#: beat it on both 500 and 4,434 chest X-rays within 50-200 CPU-seconds).
DEFAULT_METHOD = "dcgan"
_CURVE_COLOURS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#636363", "#d6616b")


def _array_pixmap(arr: np.ndarray, max_side: int = 384) -> QPixmap:
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 2:
        img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], QImage.Format.Format_RGB888)
    pm = QPixmap.fromImage(img.copy())
    return pm.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


# -- jobs run in the worker thread -----------------------------------------------------------------
def _dataset_for(data: DataConfig, seed: int, index_db: Path | None) -> Any:
    from medgan_desktop.core.training.data import build_dataset

    if data.kind == "index":
        from medgan_desktop.core.dicom.index import StudyIndex

        if index_db is None:
            raise ValueError("no study index available")
        index = StudyIndex(index_db)  # this thread's own connection
        try:
            return build_dataset(data, seed=seed, index=index)
        finally:
            index.close()
    return build_dataset(data, seed=seed)


def preview_job(
    data: DataConfig, index_db: Path | None, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
) -> tuple[np.ndarray, int, tuple[str, ...]]:
    """Build the dataset and return a preview grid, its size and class names."""
    from medgan_desktop.core.inference.sample import grid
    from medgan_desktop.core.training.data import preview_batch

    ds = _dataset_for(data, 0, index_db)
    if cancel is not None:
        cancel.check()
    batch = preview_batch(ds, 16, seed=1)
    return grid(batch.numpy()), len(ds), ds.preprocessing.class_names


def train_job(
    method: str,
    mcfg: MethodConfig,
    tcfg: TrainConfig,
    run_dir: Path,
    index_db: Path | None,
    resume: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> RunSummary:
    """Build the dataset (from run.json on resume) and train."""
    import dataclasses

    from medgan_desktop.core.training.loop import train

    progress(Progress(0, tcfg.steps, "loading data"))
    if resume:
        stored = TrainConfig.from_dict(load_run(run_dir).train_config)
        ds = _dataset_for(stored.data, stored.seed, index_db)
    else:
        ds = _dataset_for(tcfg.data, tcfg.seed, index_db)
        names = ds.preprocessing.class_names
        if names:
            mcfg = dataclasses.replace(mcfg, num_classes=len(names))
    return train(method, mcfg, tcfg, ds, run_dir, progress=progress, cancel=cancel, resume=resume)


class TrainPanel(QWidget):
    """Data, method and device choice; Start/Pause/Stop/Resume; live curves and samples."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker: Worker | None = None
        self.preview_worker: Worker | None = None
        self.current_run: Path | None = None
        self._training = False
        self.selected_series: str = ""
        self._curves: dict[str, list[tuple[int, float]]] = {}
        self._plot_items: dict[str, Any] = {}
        self._last_sample: Path | None = None
        self._last_plot = 0.0
        self._build()
        context.series_selected.connect(self._on_series_selected)
        self.refresh_runs()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        lv = QVBoxLayout(left)

        data_box = QGroupBox("Data")
        df = QFormLayout(data_box)
        self.rb_folder = QRadioButton("Folder or volume file")
        self.rb_series = QRadioButton("Series selected in the browser")
        self.rb_folder.setChecked(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("image folder (PNG/JPEG), NIfTI/MHA file or folder")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit)
        row.addWidget(browse)
        df.addRow(self.rb_folder)
        df.addRow(row)
        self.series_label = QLabel("(no series selected)")
        df.addRow(self.rb_series, self.series_label)
        self.labels_check = QCheckBox("Class labels from subfolders")
        self.labels_check.setToolTip("Each first-level subfolder is a class (e.g. NORMAL / PNEUMONIA); needed by cgan.")
        df.addRow(self.labels_check)
        self.max_images = QSpinBox()
        self.max_images.setRange(0, 1_000_000)
        self.max_images.setSpecialValueText("all")
        self.max_images.setToolTip("Use a fixed random subset of this many images or slices (0: all).")
        df.addRow("Max images", self.max_images)
        self.flip_check = QCheckBox("Random flips")
        self.rot_check = QCheckBox("Random 90° rotations")
        aug_row = QHBoxLayout()
        aug_row.addWidget(self.flip_check)
        aug_row.addWidget(self.rot_check)
        df.addRow(aug_row)
        self.preview_btn = QPushButton("Preview batch")
        self.preview_btn.setToolTip("Show 16 images after preprocessing (window, resize, augmentation).")
        self.preview_btn.clicked.connect(self.preview)
        df.addRow(self.preview_btn)
        lv.addWidget(data_box)

        m_box = QGroupBox("Method")
        mf = QFormLayout(m_box)
        self.method_combo = QComboBox()
        for name, cls in available_methods(Task.SYNTHESIS).items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(self.method_combo.count() - 1, cls.description, Qt.ItemDataRole.ToolTipRole)
        i = self.method_combo.findData(DEFAULT_METHOD)
        self.method_combo.setCurrentIndex(max(0, i))
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        mf.addRow("Method", self.method_combo)
        self.size_combo = QComboBox()
        for s in (32, 64, 128, 256):
            self.size_combo.addItem(f"{s} px", s)
        self.size_combo.setCurrentIndex(1)
        self.size_combo.setToolTip("Training resolution; 64 px trains in minutes on a CPU, 256 px needs a GPU.")
        mf.addRow("Size", self.size_combo)
        self.batch_spin = self._spin(1, 1024, 32, "Global batch size; halve it after an out-of-memory error.")
        mf.addRow("Batch", self.batch_spin)
        self.steps_spin = self._spin(1, 10_000_000, 2000, "Total optimisation steps (for Resume: the new total).")
        mf.addRow("Steps", self.steps_spin)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-1)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(2e-4)
        self.lr_spin.setToolTip("Adam learning rate of generator and discriminator (DCGAN paper: 2e-4).")
        mf.addRow("Learning rate", self.lr_spin)
        self.diffaug_edit = QLineEdit("translation,cutout")
        self.diffaug_edit.setToolTip(
            "DiffAugment policy (Zhao et al. 2020) applied to real and fake images: any of "
            "color, translation, cutout; empty to switch off. Helps most below ~2000 images."
        )
        mf.addRow("DiffAugment", self.diffaug_edit)
        self.ema_spin = QDoubleSpinBox()
        self.ema_spin.setDecimals(4)
        self.ema_spin.setRange(0.0, 0.9999)
        self.ema_spin.setValue(0.999)
        self.ema_spin.setToolTip("Generator EMA decay (0: off). Samples come from the averaged generator.")
        mf.addRow("EMA decay", self.ema_spin)
        self.sample_every = self._spin(0, 1_000_000, 100, "Write a sample grid every N steps (0: never).")
        mf.addRow("Sample every", self.sample_every)
        self.ckpt_every = self._spin(1, 1_000_000, 500, "Write a checkpoint every N steps (always at stop).")
        mf.addRow("Checkpoint every", self.ckpt_every)
        self.seed_spin = self._spin(0, 2**31 - 1, 0, "Random seed: the same seed and data give the same run.")
        mf.addRow("Seed", self.seed_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto (GPU if present)", "auto")
        for d in list_devices():
            self.device_combo.addItem(d.label, d.key)
        self.device_combo.setToolTip("Detected devices with their memory.")
        mf.addRow("Device", self.device_combo)
        lv.addWidget(m_box)

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
        lv.addWidget(QLabel("Runs"))
        self.runs_list = QListWidget()
        self.runs_list.currentItemChanged.connect(self._on_run_selected)
        lv.addWidget(self.runs_list)

        right = QWidget()
        rv = QVBoxLayout(right)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend()
        rv.addWidget(self.plot, 2)
        imgs = QHBoxLayout()
        self.sample_label = QLabel("Samples appear here while training")
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_label.setMinimumSize(256, 256)
        self.preview_label = QLabel("Preview")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumSize(256, 256)
        imgs.addWidget(self.preview_label)
        imgs.addWidget(self.sample_label)
        rv.addLayout(imgs, 2)
        rv.addWidget(QLabel("Checkpoints"))
        self.ckpt_list = QListWidget()
        rv.addWidget(self.ckpt_list, 1)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self._update_buttons()
        self._on_method_changed()

    def _preset(self) -> MethodConfig:
        cls = available_methods(Task.SYNTHESIS).get(str(self.method_combo.currentData()))
        preset = getattr(cls, "default_config", None)
        return preset() if callable(preset) else MethodConfig()

    def _on_method_changed(self, *_: object) -> None:
        """Show the chosen method's published defaults (learning rate, EMA, DiffAugment)."""
        p = self._preset()
        self.lr_spin.setValue(p.lr_g)
        if p.diffaugment:
            self.diffaug_edit.setText(p.diffaugment)
        if p.ema_decay:
            self.ema_spin.setValue(p.ema_decay)

    @staticmethod
    def _spin(lo: int, hi: int, val: int, tip: str) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setValue(val)
        s.setToolTip(tip)
        return s

    # -- data --------------------------------------------------------------------------------
    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Training images or volumes")
        if d:
            self.path_edit.setText(d)
            self.rb_folder.setChecked(True)

    def _on_series_selected(self, uid: str) -> None:
        self.selected_series = uid
        self.series_label.setText(uid[-24:] if uid else "(no series selected)")

    def data_config(self) -> DataConfig:
        size = int(self.size_combo.currentData())
        common: dict[str, Any] = dict(
            size=size,
            max_images=self.max_images.value(),
            flip=self.flip_check.isChecked(),
            rotate90=self.rot_check.isChecked(),
        )
        if self.rb_series.isChecked():
            if not self.selected_series:
                raise ValueError("select a series in the browser first, or choose a folder")
            return DataConfig(kind="index", series_uids=(self.selected_series,), **common)
        path = self.path_edit.text().strip()
        if not path:
            raise ValueError("choose a folder of images or a volume file first")
        return DataConfig(path=path, label_from_subfolders=self.labels_check.isChecked(), **common)

    def _index_db(self) -> Path | None:
        return self.context.paths.index_db if self.context.paths.index_db.exists() else None

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

    def _on_preview(self, result: tuple[np.ndarray, int, tuple[str, ...]]) -> None:
        arr, n, names = result
        self.preview_label.setPixmap(_array_pixmap(arr, 320))
        cls = f"; classes: {', '.join(names)}" if names else ""
        self.status_label.setText(f"{n} training images{cls}")

    # -- run control -------------------------------------------------------------------------
    def method_config(self) -> MethodConfig:
        import dataclasses

        lr = self.lr_spin.value()
        base = self._preset()
        ratio = base.lr_d / base.lr_g if base.lr_g else 1.0
        return dataclasses.replace(
            base,
            size=int(self.size_combo.currentData()),
            lr_g=lr,
            lr_d=lr * ratio,
            diffaugment=self.diffaug_edit.text().strip(),
            ema_decay=self.ema_spin.value(),
        )

    def train_config(self, data: DataConfig) -> TrainConfig:
        return TrainConfig(
            steps=self.steps_spin.value(),
            batch_size=self.batch_spin.value(),
            checkpoint_every=self.ckpt_every.value(),
            sample_every=self.sample_every.value(),
            seed=self.seed_spin.value(),
            device=str(self.device_combo.currentData()),
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
        method = str(self.method_combo.currentData())
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = self.context.paths.ensure().runs_dir / f"{method}-{stamp}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = run_dir.with_name(f"{method}-{stamp}-{n}")
        self._launch(method, self.method_config(), self.train_config(data), run_dir, resume=False)

    def resume_selected(self) -> None:
        item = self.runs_list.currentItem()
        if item is None:
            QMessageBox.information(self, "Resume", "Select a run in the list first.")
            return
        if self.is_training():
            QMessageBox.information(self, "Resume", "A run is already training; stop it first.")
            return
        run_dir = Path(item.data(Qt.ItemDataRole.UserRole))
        info = load_run(run_dir)
        ckpts = list_checkpoints(run_dir)
        done = ckpts[-1][0] if ckpts else 0
        if not ckpts:
            QMessageBox.warning(self, "Resume", f"{run_dir.name} has no checkpoint to resume from.")
            return
        total = self.steps_spin.value()
        if total <= done:
            QMessageBox.information(
                self, "Resume", f"{run_dir.name} is at step {done}; set Steps above {done} to continue."
            )
            return
        stored = TrainConfig.from_dict(info.train_config)
        tcfg = stored.replace(steps=total, device=str(self.device_combo.currentData()))
        self._launch(info.method, info.method_config, tcfg, run_dir, resume=True)

    def _launch(self, method: str, mcfg: MethodConfig, tcfg: TrainConfig, run_dir: Path, resume: bool) -> None:
        self.current_run = run_dir
        self._curves = {}
        for item in self._plot_items.values():
            self.plot.removeItem(item)
        self._plot_items = {}
        if resume:
            self._load_metrics(run_dir)
        w = Worker(train_job, method, mcfg, tcfg, run_dir, self._index_db(), resume, name=f"train {run_dir.name}")
        w.progress.connect(self._on_progress)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(lambda: self.status_label.setText("Stopped"))
        w.done.connect(self._on_done)
        self.worker = w
        self._training = True
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
        d = p.data or {}
        losses = d.get("losses")
        step = int(d.get("step", p.done))  # type: ignore[call-overload]
        if isinstance(losses, dict):
            for k, v in losses.items():
                self._curves.setdefault(k, []).append((step, float(v)))
        now = time.monotonic()
        if now - self._last_plot > 0.25 or p.done >= p.total:
            self._last_plot = now
            self._redraw_curves()
        ips = float(d.get("images_per_s", 0.0) or 0.0)  # type: ignore[arg-type]
        eta = float(d.get("eta_s", 0.0) or 0.0)  # type: ignore[arg-type]
        self.status_label.setText(
            f"{p.message}  ·  {ips:.1f} images/s  ·  ETA {int(eta // 60)} min {int(eta % 60)} s"
            if "losses" in d
            else p.message
        )
        self._refresh_sample()
        if "checkpoint" in d:
            self._refresh_checkpoints()

    def _redraw_curves(self) -> None:
        for i, (k, pts) in enumerate(sorted(self._curves.items())):
            if k not in ("d", "g", "d_real", "d_fake", "gp", "r1", "l1", "cycle"):
                continue
            xs = np.fromiter((s for s, _ in pts), dtype=np.float64)
            ys = np.fromiter((v for _, v in pts), dtype=np.float64)
            item = self._plot_items.get(k)
            if item is None:
                item = self.plot.plot(name=k, pen=pg.mkPen(_CURVE_COLOURS[i % len(_CURVE_COLOURS)], width=1.5))
                self._plot_items[k] = item
            item.setData(xs, ys)

    def _load_metrics(self, run_dir: Path) -> None:
        path = run_dir / METRICS
        if not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            for k, v in (rec.get("losses") or {}).items():
                self._curves.setdefault(k, []).append((int(rec["step"]), float(v)))
        self._redraw_curves()

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
                self.sample_label.setPixmap(
                    pm.scaled(320, 320, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
                )
                self.sample_label.setToolTip(files[-1].name)

    def _refresh_checkpoints(self) -> None:
        self.ckpt_list.clear()
        if self.current_run is None:
            return
        for step, path in list_checkpoints(self.current_run):
            mb = path.stat().st_size / 2**20
            it = QListWidgetItem(f"step {step}  ({mb:.1f} MB)")
            it.setData(Qt.ItemDataRole.UserRole, str(path))
            self.ckpt_list.addItem(it)

    def _on_finished(self, summary: RunSummary) -> None:
        state = "stopped" if summary.cancelled else "finished"
        self.status_label.setText(
            f"Run {summary.run_dir.name} {state} at step {summary.step}/{summary.total_steps} "
            f"({summary.images_per_s:.1f} images/s)"
        )
        self.context.status.emit(f"Training {state}: {summary.run_dir.name}")

    def _on_failed(self, message: str, _tb: str) -> None:
        self.status_label.setText(message)
        QMessageBox.warning(self, "Training failed", message)

    def _on_done(self) -> None:
        self._training = False
        self._redraw_curves()
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
        self._curves = {}
        for pi in self._plot_items.values():
            self.plot.removeItem(pi)
        self._plot_items = {}
        self._last_sample = None
        self._load_metrics(self.current_run)
        self._refresh_sample()
        self._refresh_checkpoints()
