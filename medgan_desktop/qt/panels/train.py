"""The Train panel: choose data and a method, watch a GAN learn, stop and resume runs.

Two tabs: *Synthesis* (noise -> image methods) and *Translation (MR→CT)*, which hosts
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
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
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
from medgan_desktop.core.imaging.intensity import CT_HU_RANGE
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.training.config import DataConfig, TrainConfig
from medgan_desktop.core.training.devices import cpu_bf16_supported, list_devices
from medgan_desktop.core.training.loop import RunSummary
from medgan_desktop.core.training.run import METRICS, SAMPLES, list_checkpoints, load_run
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)

#: The method entry the panel opens on: the recommended small-data setting
#: (:data:`~medgan_desktop.core.gan.recommend.RECOMMENDED_METHOD` with
#: :data:`~medgan_desktop.core.gan.recommend.RECOMMENDED_OPTIONS`).
DEFAULT_ENTRY = ALIAS
#: The module that provides the translation tab's widget.
TRANSLATION_WIDGET_MODULE = "medgan_desktop.qt.panels.train_translation"
_CURVE_COLOURS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#636363", "#d6616b")
_PIXMAP_SIDE = 240


@dataclasses.dataclass(frozen=True)
class MethodOption:
    """One method-specific hyperparameter (a ``MethodConfig.extra`` key) shown in the form.

    ``default`` is the value the method uses when the key is absent; the panel writes a
    key only when its value differs from it. A spin box at its minimum shows ``special``
    (when set) instead of the number and means "the method's own default".
    """

    key: str
    label: str
    default: bool | int | float | str
    help: str
    lo: float = 0.0
    hi: float = 1000.0
    decimals: int = 3
    choices: tuple[str, ...] = ()
    special: str = ""


_SPECTRAL = "Spectral normalisation of the discriminator (Miyato et al. 2018): bounds its slope; steadier on small data."
_R1 = "R1 penalty on real images (Mescheder et al. 2018), weight γ (adds γ/2·|∇D(x)|²); 0: off. Try 0.1–10 on small data."

#: The important method-specific options per synthesis method, with the defaults the
#: methods use (``core/gan/methods/*.py``, ``config.option(key, default)``).
METHOD_OPTIONS: dict[str, tuple[MethodOption, ...]] = {
    "dcgan": (
        MethodOption("spectral_norm", "Spectral norm", False, _SPECTRAL),
        MethodOption("r1_gamma", "R1 γ", 0.0, _R1, hi=100.0),
    ),
    "lsgan": (
        MethodOption("spectral_norm", "Spectral norm", False, _SPECTRAL),
        MethodOption("r1_gamma", "R1 γ", 0.0, _R1, hi=100.0),
    ),
    "wgan_gp": (
        MethodOption("n_critic", "Critic steps", 5, "Critic (discriminator) updates per generator update.", 1, 20),
        MethodOption("gp_lambda", "GP weight λ", 10.0, "Weight of the gradient penalty (Gulrajani et al.: 10).", hi=100.0),
    ),
    "cgan": (
        MethodOption("spectral_norm", "Spectral norm", True, _SPECTRAL),
        MethodOption("r1_gamma", "R1 γ", 0.0, _R1, hi=100.0),
        MethodOption(
            "g_cond", "Label input", "cbn",
            "How the generator sees the class: conditional batch norm (cbn) or a label embedding "
            "concatenated to the noise (concat).",
            choices=("cbn", "concat"),
        ),
    ),
    "stylegan2": (
        MethodOption(
            "r1_gamma", "R1 γ", 0.0,
            "R1 weight γ; auto: 0.0002·size²/batch (the StyleGAN2-ADA heuristic). Set the R1 interval to 0 to switch R1 off.",
            hi=100.0, decimals=4, special="auto",
        ),
        MethodOption("r1_interval", "R1 interval", 16, "Lazy R1: apply it every N steps (1: every step; 0: off).", 0, 64),
        MethodOption(
            "ada", "Adaptive augmentation", False,
            "StyleGAN2-ADA: apply the DiffAugment policy with a probability tuned so that the "
            "discriminator's overfitting measure r_t stays at the target. Needs a DiffAugment policy.",
        ),
        MethodOption("ada_target", "ADA target r_t", 0.6, "Target of ADA's overfitting measure r_t (paper: 0.6).", 0.0, 1.0, 2),
        MethodOption(
            "pl_weight", "Path length weight", 0.0,
            "Path-length regularisation of the generator (paper: 2; 0: off). Costs a second generator pass.",
            hi=10.0, decimals=2,
        ),
        MethodOption("mapping_layers", "Mapping layers", 4, "Depth of the mapping network z → w.", 1, 8),
    ),
    "progressive": (
        MethodOption(
            "phase_steps", "Phase steps", 500,
            "Steps per fade-in and per stabilisation phase; 8×8 trains first, each larger size fades in over this many steps.",
            1, 1_000_000,
        ),
        MethodOption("gp_lambda", "GP weight λ", 10.0, "WGAN-GP gradient-penalty weight (paper: 10).", hi=100.0),
        MethodOption("drift", "Drift ε", 0.001, "The paper's drift term ε·E[D(x)²] that keeps critic outputs near 0.", hi=1.0, decimals=4),
    ),
}

#: Slice axes for volume data (``DataConfig.axis``).
_AXES = (("0: axial (k)", 0), ("1: coronal (j)", 1), ("2: sagittal (i)", 2))
_MODALITIES = (("Auto (guess)", ""), ("CT", "CT"), ("MR", "MR"), ("PT", "PT"), ("CR", "CR"), ("DX", "DX"))


def _array_pixmap(arr: np.ndarray) -> QPixmap:
    arr = np.ascontiguousarray(arr)
    fmt = QImage.Format.Format_Grayscale8 if arr.ndim == 2 else QImage.Format.Format_RGB888
    img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], fmt)
    return QPixmap.fromImage(img.copy())


class _GridImage(QLabel):
    """A sample/preview grid scaled to the label's width, so it never widens the panel."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._source: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(120, 120)
        self.setFixedHeight(_PIXMAP_SIDE)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_image(self, pm: QPixmap) -> None:
        self._source = pm
        self._rescale()

    def clear_image(self, text: str) -> None:
        self._source = None
        self.clear()
        self.setText(text)

    def _rescale(self) -> None:
        if self._source is not None and not self._source.isNull():
            side = max(1, min(self.width(), self.height()))
            self.setPixmap(
                self._source.scaled(
                    side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            )

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()


def _grid(pairs: list[tuple[str, QWidget]], columns: int = 2, grid: QGridLayout | None = None) -> QGridLayout:
    """``label: field`` pairs in ``columns`` columns (an empty label: the field spans both cells)."""
    g = grid if grid is not None else QGridLayout()
    g.setHorizontalSpacing(8)
    for i, (text, w) in enumerate(pairs):
        r, c = divmod(i, columns)
        if text:
            lab = QLabel(text)
            lab.setToolTip(w.toolTip())
            lab.setBuddy(w)
            g.addWidget(lab, r, 2 * c)
            g.addWidget(w, r, 2 * c + 1)
        else:
            g.addWidget(w, r, 2 * c, 1, 2)
    for c in range(columns):
        g.setColumnStretch(2 * c + 1, 1)
    return g


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
        return _note(text), None
    try:
        mod = importlib.import_module(TRANSLATION_WIDGET_MODULE)
        widget: QWidget = mod.TranslationTrainWidget(context)
    except Exception as exc:  # shown honestly in the tab, the synthesis tab keeps working
        log.exception("translation training widget failed to build")
        return _note(f"Translation training failed to load: {exc}"), None
    return widget, widget


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setContentsMargins(8, 8, 8, 8)
    return label


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
    """Synthesis tab: data, method and device; Start/Pause/Stop/Resume; live curves and samples.
    Translation tab: the MR→CT training widget, when available."""

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
        self._labels_auto = False  # "class labels" was ticked by choosing a conditional method
        self.option_widgets: dict[str, QWidget] = {}
        self._build()
        context.series_selected.connect(self._on_series_selected)
        self.refresh_runs()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget()
        synth = QWidget()
        self._build_synthesis(synth)
        self.tabs.addTab(synth, "Synthesis")
        self.translation_tab, self.translation_widget = _translation_tab(self.context)
        self.tabs.addTab(self.translation_tab, "Translation (MR→CT)")
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
        lv.addWidget(self._build_data_box())
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

        # monitoring, below the form so the dock never needs to scroll sideways
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend()
        self.plot.setMinimumHeight(200)
        self.plot.setMaximumHeight(280)
        lv.addWidget(self.plot)
        imgs = QGridLayout()
        self.preview_caption = QLabel("Preview (after preprocessing)")
        self.sample_caption = QLabel("Samples")
        self.preview_label = _GridImage("Preview batch shows 16 training images here")
        self.sample_label = _GridImage("Samples appear here while training")
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

    def _build_data_box(self) -> QGroupBox:
        data_box = QGroupBox("Data")
        dv = QVBoxLayout(data_box)
        self.rb_folder = QRadioButton("Folder or volume file")
        self.rb_series = QRadioButton("Series from the browser")
        self.rb_folder.setChecked(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("image folder (PNG/JPEG), NIfTI/MHA file or folder")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.rb_folder)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        dv.addLayout(row)

        srow = QHBoxLayout()
        srow.addWidget(self.rb_series)
        self.series_label = QLabel("(no series selected)")
        self.series_label.setToolTip("The series selected in the study browser.")
        self.series_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        srow.addWidget(self.series_label, 1)
        self.add_series_btn = QPushButton("Add")
        self.add_series_btn.setToolTip("Add the series selected in the browser to the training series.")
        self.add_series_btn.clicked.connect(self.add_selected_series)
        self.remove_series_btn = QPushButton("Remove")
        self.remove_series_btn.setToolTip("Remove the highlighted series from the list.")
        self.remove_series_btn.clicked.connect(self._remove_series)
        srow.addWidget(self.add_series_btn)
        srow.addWidget(self.remove_series_btn)
        dv.addLayout(srow)
        self.series_list = QListWidget()
        self.series_list.setMaximumHeight(64)
        self.series_list.setToolTip(
            "Series to train on (slices of all of them, one modality). Empty: the series selected in the browser."
        )
        dv.addWidget(self.series_list)
        self.series_list.setVisible(False)  # shown once a series is added

        self.channels_combo = QComboBox()
        self.channels_combo.addItem("1 (grey)", 1)
        self.channels_combo.addItem("3 (RGB)", 3)
        self.channels_combo.setToolTip("Channels of the training images; 3 only for colour image folders (volumes are grey).")
        self.max_images = QSpinBox()
        self.max_images.setRange(0, 1_000_000)
        self.max_images.setSpecialValueText("all")
        self.max_images.setToolTip("Use a fixed random subset of this many images or slices (0: all).")
        self.labels_check = QCheckBox("Class labels from subfolders")
        self.labels_check.setToolTip(
            "Each first-level subfolder is a class (e.g. NORMAL / PNEUMONIA); needed by cgan (ticked when you choose it)."
        )
        self.labels_check.toggled.connect(lambda _on: setattr(self, "_labels_auto", False))
        self.flip_check = QCheckBox("Random flips")
        self.rot_check = QCheckBox("Random 90° rotations")
        dv.addLayout(
            _grid(
                [
                    ("Channels", self.channels_combo),
                    ("Max images", self.max_images),
                    ("", self.labels_check),
                    ("", self.flip_check),
                    ("", self.rot_check),
                ]
            )
        )
        self.preview_btn = QPushButton("Preview batch")
        self.preview_btn.setToolTip("Show 16 images after preprocessing (window, resize, augmentation).")
        self.preview_btn.clicked.connect(self.preview)
        dv.addWidget(self.preview_btn)
        self.rb_series.toggled.connect(self._on_source_changed)
        return data_box

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
        self.batch_spin = self._spin(1, 1024, 32, "Global batch size; halve it after an out-of-memory error.")
        self.steps_spin = self._spin(1, 10_000_000, 2000, "Total optimisation steps (for Resume: the new total).")
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
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto (GPU if present)", "auto")
        for d in list_devices():
            self.device_combo.addItem(d.label, d.key)
        self.device_combo.setToolTip("Detected devices with their memory.")
        mv.addLayout(
            _grid(
                [
                    ("Size", self.size_combo),
                    ("Batch", self.batch_spin),
                    ("Steps", self.steps_spin),
                    ("Learning rate", self.lr_spin),
                    ("DiffAugment", self.diffaug_edit),
                    ("EMA decay", self.ema_spin),
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
        drow.addWidget(self.bf16_check)
        mv.addLayout(drow)
        return m_box

    def _build_advanced(self) -> QWidget:
        """A collapsible group: method options, volume slicing/window, sampling and checkpoints."""
        box = QWidget()
        bv = QVBoxLayout(box)
        bv.setContentsMargins(0, 0, 0, 0)
        self.advanced_btn = QToolButton()
        self.advanced_btn.setText("Advanced: method options, volumes, checkpoints")
        self.advanced_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_btn.setCheckable(True)
        self.advanced_btn.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_btn.setAutoRaise(True)
        self.advanced_btn.toggled.connect(self.set_advanced_visible)
        bv.addWidget(self.advanced_btn)
        self.advanced = QWidget()
        av = QVBoxLayout(self.advanced)
        av.setContentsMargins(0, 0, 0, 0)

        self.options_box = QGroupBox("Method options")
        self.options_layout = QGridLayout(self.options_box)
        av.addWidget(self.options_box)

        vol = QGroupBox("Volumes (NIfTI/MHA, DICOM series)")
        self.axis_combo = QComboBox()
        for text, axis in _AXES:
            self.axis_combo.addItem(text, axis)
        self.axis_combo.setToolTip("Axis the 2D training slices are taken along (voxel index order k, j, i).")
        self.modality_combo = QComboBox()
        for text, mod in _MODALITIES:
            self.modality_combo.addItem(text, mod)
        self.modality_combo.setToolTip(
            "Sets the intensity window: CT → fixed HU window, MR and others → per-volume percentiles. "
            "Auto: the series' modality, or CT when the values look like HU."
        )
        self.window_check = QCheckBox("Fixed window")
        self.window_check.setToolTip(
            f"Map a fixed value range to [-1, 1] instead of the modality's default "
            f"(CT: {CT_HU_RANGE[0]:g}…{CT_HU_RANGE[1]:g} HU; MR: 0.5–99.5 percentiles per volume)."
        )
        self.window_lo = QDoubleSpinBox()
        self.window_hi = QDoubleSpinBox()
        for w, v in ((self.window_lo, CT_HU_RANGE[0]), (self.window_hi, CT_HU_RANGE[1])):
            w.setRange(-100_000.0, 100_000.0)
            w.setDecimals(0)
            w.setValue(float(v))
            w.setEnabled(False)
            w.setToolTip("Window bounds in the volume's units (HU for CT).")
        self.window_check.toggled.connect(self.window_lo.setEnabled)
        self.window_check.toggled.connect(self.window_hi.setEnabled)
        vg = _grid([("Slice axis", self.axis_combo), ("Modality", self.modality_combo)])
        vv = QVBoxLayout(vol)
        vv.addLayout(vg)
        wrow = QHBoxLayout()
        wrow.addWidget(self.window_check)
        wrow.addWidget(QLabel("from"))
        wrow.addWidget(self.window_lo, 1)
        wrow.addWidget(QLabel("to"))
        wrow.addWidget(self.window_hi, 1)
        vv.addLayout(wrow)
        av.addWidget(vol)

        run = QGroupBox("Run")
        self.sample_every = self._spin(0, 1_000_000, 100, "Write a sample grid every N steps (0: never).")
        self.ckpt_every = self._spin(1, 1_000_000, 500, "Write a checkpoint every N steps (always at stop).")
        self.seed_spin = self._spin(0, 2**31 - 1, 0, "Random seed: the same seed and data give the same run.")
        run.setLayout(
            _grid([("Sample every", self.sample_every), ("Checkpoint every", self.ckpt_every), ("Seed", self.seed_spin)])
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
        self._build_options(method, p)
        conditional = bool(getattr(available_methods(Task.SYNTHESIS).get(method), "conditional", False))
        if conditional and not self.labels_check.isChecked():
            self.labels_check.setChecked(True)
            self._labels_auto = True
        elif not conditional and self._labels_auto:
            self.labels_check.setChecked(False)

    def _build_options(self, method: str, p: MethodConfig) -> None:
        """The form of ``method``'s options (:data:`METHOD_OPTIONS`), at the preset's values."""
        while self.options_layout.count():
            item = self.options_layout.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()  # gone now, deleted when the event loop next runs
                w.setParent(None)
                w.deleteLater()
        self.option_widgets = {}
        specs = METHOD_OPTIONS.get(method, ())
        self.options_box.setTitle(f"Method options: {method}" if specs else f"Method options: {method} (none)")
        pairs: list[tuple[str, QWidget]] = []
        for spec in specs:
            w = self._option_widget(spec, p.option(spec.key, spec.default))
            self.option_widgets[spec.key] = w
            pairs.append(("" if isinstance(w, QCheckBox) else spec.label, w))
        _grid(pairs, grid=self.options_layout)

    @staticmethod
    def _option_widget(spec: MethodOption, value: Any) -> QWidget:
        w: QWidget
        if spec.choices:
            combo = QComboBox()
            for ch in spec.choices:
                combo.addItem(ch, ch)
            combo.setCurrentIndex(max(0, combo.findData(str(value))))
            w = combo
        elif isinstance(spec.default, bool):
            box = QCheckBox(spec.label)
            box.setChecked(bool(value))
            w = box
        elif isinstance(spec.default, int):
            spin = QSpinBox()
            spin.setRange(int(spec.lo), int(spec.hi))
            spin.setValue(int(value))
            w = spin
        else:
            dspin = QDoubleSpinBox()
            dspin.setDecimals(spec.decimals)
            dspin.setRange(spec.lo, spec.hi)
            dspin.setSingleStep(10 ** -min(spec.decimals, 2))
            if spec.special:
                dspin.setSpecialValueText(spec.special)
            dspin.setValue(float(value) if value is not None else spec.lo)
            w = dspin
        w.setToolTip(f"{spec.help}\n(option {spec.key}, default {spec.special or spec.default})")
        return w

    def method_options(self) -> dict[str, Any]:
        """The method-specific options whose values differ from the method's defaults."""
        out: dict[str, Any] = {}
        for spec in METHOD_OPTIONS.get(self.selected_method(), ()):
            w = self.option_widgets.get(spec.key)
            value: Any
            if isinstance(w, QComboBox):
                value = str(w.currentData())
            elif isinstance(w, QCheckBox):
                value = w.isChecked()
            elif isinstance(w, QSpinBox):
                value = w.value()
            elif isinstance(w, QDoubleSpinBox):
                value = w.value()
            else:
                continue
            if value != spec.default:
                out[spec.key] = value
        return out

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

    def _on_source_changed(self, series: bool) -> None:
        if series:
            self.channels_combo.setCurrentIndex(0)  # volume slices are grey
        self.channels_combo.setEnabled(not series)

    def _series_text(self, uid: str) -> str:
        rec = None
        try:
            rec = self.context.index.series(uid) if self.context.paths.index_db.exists() else None
        except Exception:  # the index may be unreadable; the UID still identifies the series
            log.debug("series %s not readable from the index", uid, exc_info=True)
        if rec is None:
            return f"…{uid[-24:]}" if len(uid) > 24 else uid
        return f"{rec.modality} {rec.description or '(no description)'} ({rec.instance_count} images)"

    def _on_series_selected(self, uid: str) -> None:
        self.selected_series = uid
        self.series_label.setText(self._series_text(uid) if uid else "(no series selected)")
        self.series_label.setToolTip(uid)

    def add_selected_series(self) -> None:
        """Add the browser's series to the list (several series train together)."""
        uid = self.selected_series
        if not uid:
            QMessageBox.information(self, "Series", "Select a series in the study browser first.")
            return
        if uid not in self.series_uids_listed():
            it = QListWidgetItem(self._series_text(uid))
            it.setData(Qt.ItemDataRole.UserRole, uid)
            it.setToolTip(uid)
            self.series_list.addItem(it)
        self.series_list.setVisible(True)
        self.rb_series.setChecked(True)

    def _remove_series(self) -> None:
        for it in self.series_list.selectedItems():
            self.series_list.takeItem(self.series_list.row(it))
        self.series_list.setVisible(self.series_list.count() > 0)

    def series_uids_listed(self) -> tuple[str, ...]:
        return tuple(
            str(self.series_list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.series_list.count())
        )

    def data_config(self) -> DataConfig:
        size = int(self.size_combo.currentData())
        fixed = self.window_check.isChecked()
        lo, hi = self.window_lo.value(), self.window_hi.value()
        if fixed and lo >= hi:
            raise ValueError(f"the window's lower bound ({lo:g}) must be below its upper bound ({hi:g})")
        common: dict[str, Any] = dict(
            size=size,
            max_images=self.max_images.value(),
            flip=self.flip_check.isChecked(),
            rotate90=self.rot_check.isChecked(),
            axis=int(self.axis_combo.currentData()),
            modality=str(self.modality_combo.currentData()),
            window_lo=lo if fixed else None,
            window_hi=hi if fixed else None,
        )
        if self.rb_series.isChecked():
            uids = self.series_uids_listed() or ((self.selected_series,) if self.selected_series else ())
            if not uids:
                raise ValueError("select a series in the browser first (Add several to train on them together), or choose a folder")
            return DataConfig(kind="index", series_uids=uids, **common)
        path = self.path_edit.text().strip()
        if not path:
            raise ValueError("choose a folder of images or a volume file first")
        return DataConfig(
            path=path,
            channels=int(self.channels_combo.currentData()),
            label_from_subfolders=self.labels_check.isChecked(),
            **common,
        )

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
        self.preview_label.set_image(_array_pixmap(arr))
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
            channels=1 if self.rb_series.isChecked() else int(self.channels_combo.currentData()),
            lr_g=lr,
            lr_d=lr_d,
            diffaugment=self.diffaug_edit.text().strip(),
            ema_decay=self.ema_spin.value(),
            extra={**base.extra, **self.method_options()},
        )

    def train_config(self, data: DataConfig) -> TrainConfig:
        return TrainConfig(
            steps=self.steps_spin.value(),
            batch_size=self.batch_spin.value(),
            checkpoint_every=self.ckpt_every.value(),
            sample_every=self.sample_every.value(),
            seed=self.seed_spin.value(),
            device=str(self.device_combo.currentData()),
            cpu_bf16=self.bf16_check.isChecked(),
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
        if getattr(cls, "conditional", False) and not data.label_from_subfolders:
            QMessageBox.warning(
                self, "Train",
                f"{method} is class-conditional: choose an image folder with one subfolder per class "
                "and tick “Class labels from subfolders”.",
            )
            return
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
        self.sample_label.clear_image("No sample grid in this run yet")
        self.sample_caption.setText("Samples")
        self._load_metrics(self.current_run)
        self._refresh_sample()
        self._refresh_checkpoints()
