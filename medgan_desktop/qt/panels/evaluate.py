"""The Evaluate panel: unpaired set metrics and paired translation metrics, with reports.

Runs the jobs of :mod:`medgan_desktop.core.jobs.evaluate` in a worker (the ``medgan
evaluate`` CLI runs the same ones), shows the numbers in a
table, pyqtgraph plots (feature/distance distributions, per-slice curves), a gallery of
each synthetic image beside its nearest training image, and exports an HTML report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from medgan_desktop.core.jobs.evaluate import (
    PairedSpec,
    UnpairedSpec,
    UtilitySpec,
    run_paired,
    run_unpaired,
    run_utility,
)
from medgan_desktop.core.metrics.evaluate import UnpairedResult
from medgan_desktop.core.metrics.paired import PairedReport
from medgan_desktop.core.metrics.report import paired_html, unpaired_html, unpaired_rows, utility_html, write_html
from medgan_desktop.core.metrics.utility import UtilityReport
from medgan_desktop.core.progress import Progress
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.dialogs import existing_folder, open_file_name, save_file_name
from medgan_desktop.qt.flow_layout import flow_row
from medgan_desktop.qt.widgets import note_label, spin_box, unit_pixmap
from medgan_desktop.qt.workers.base import Worker

log = logging.getLogger(__name__)


class _PathRow(QWidget):
    """A line edit with Browse buttons for a folder and/or a file."""

    def __init__(self, folder: bool = True, file: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.edit = QLineEdit()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        if folder:
            b = QPushButton("Folder…")
            b.clicked.connect(self._pick_folder)
            lay.addWidget(b)
        if file:
            b = QPushButton("File…")
            b.clicked.connect(self._pick_file)
            lay.addWidget(b)

    def _pick_folder(self) -> None:
        d = existing_folder(self, "Choose a folder", self.edit.text())
        if d:
            self.edit.setText(d)

    def _pick_file(self) -> None:
        f = open_file_name(self, "Choose a file")
        if f:
            self.edit.setText(f)

    def path(self) -> Path | None:
        t = self.edit.text().strip()
        return Path(t) if t else None


class EvaluatePanel(QWidget):
    """Measure synthetic images: FD/KID/PR/memorisation, or SynthRAD paired metrics."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker: Worker | None = None
        self.result: UnpairedResult | PairedReport | UtilityReport | None = None
        self._busy = False

        self.mode_tabs = QTabWidget()
        # unpaired inputs
        up = QWidget()
        f1 = QFormLayout(up)
        self.real_row, self.fake_row, self.train_row = _PathRow(), _PathRow(), _PathRow()
        f1.addRow("Real images", self.real_row)
        f1.addRow("Synthetic images", self.fake_row)
        self.memo_check = QCheckBox("Search near-copies of training images (memorisation)")
        f1.addRow(self.memo_check)
        f1.addRow("Training images (optional)", self.train_row)
        self.c2st_check = QCheckBox("Classifier two-sample test (C2ST)")
        self.c2st_check.setToolTip(
            "Train a small CNN from scratch, in 5 folds, to tell the real images from the synthetic "
            "ones: accuracy 0.5 means they cannot be told apart, 1.0 that every image is. Shown with "
            "the same test between two real sets (the training images against the real ones, or two "
            "halves of the real set) as the floor. Takes about a minute for 600 images.")
        f1.addRow(self.c2st_check)
        self.extractor_combo = QComboBox()
        self.extractor_combo.addItem("Shipped extractor (MedFeatureNet, offline)", "shipped")
        self.extractor_combo.addItem("InceptionV3 FID weights file…", "inception")
        self.inception_row = _PathRow(folder=False, file=True)
        f1.addRow("Feature extractor", self.extractor_combo)
        f1.addRow("InceptionV3 weights", self.inception_row)
        self.limit_spin = spin_box(0, 100000)
        self.limit_spin.setSpecialValueText("all")
        f1.addRow("Images per folder", self.limit_spin)
        self.mode_tabs.addTab(up, "Unpaired (synthesis)")
        # paired inputs
        pp = QWidget()
        f2 = QFormLayout(pp)
        self.pred_row = _PathRow(folder=True, file=True)
        self.ref_row = _PathRow(folder=True, file=True)
        self.mask_row = _PathRow(folder=False, file=True)
        f2.addRow("Synthetic volume", self.pred_row)
        f2.addRow("Reference volume", self.ref_row)
        f2.addRow("Body mask (optional)", self.mask_row)
        self.source1_row = _PathRow(folder=True, file=True)
        self.source2_row = _PathRow(folder=True, file=True)
        fusion_tip = ("Only when the synthetic volume is a fusion of two source images (same "
                      "grid): adds the SCD fusion metric. Not for MR→sCT translation, which "
                      "has one source.")
        for row in (self.source1_row, self.source2_row):
            row.setToolTip(fusion_tip)
            row.edit.setPlaceholderText("fusion only")
        f2.addRow("Fusion source 1", self.source1_row)
        f2.addRow("Fusion source 2", self.source2_row)
        self.window_combo = QComboBox()
        self.window_combo.addItems(["uniform", "gaussian"])
        f2.addRow("SSIM window", self.window_combo)
        self.mode_tabs.addTab(pp, "Paired (translation)")
        # downstream utility inputs
        ut = QWidget()
        f3 = QFormLayout(ut)
        f3.addRow(note_label("Folders with one sub-folder per class (e.g. NORMAL/, PNEUMONIA/)."))
        self.u_train_row, self.u_fake_row, self.u_test_row = _PathRow(), _PathRow(), _PathRow()
        f3.addRow("Real training images", self.u_train_row)
        f3.addRow("Synthetic images (labelled)", self.u_fake_row)
        f3.addRow("Real held-out test images", self.u_test_row)
        self.seeds_spin = spin_box(2, 20, 5)
        f3.addRow("Seeds", self.seeds_spin)
        self.mode_tabs.addTab(ut, "Utility (downstream)")

        self.run_btn = QPushButton("Evaluate")
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.export_btn = QPushButton("Export HTML report…")
        self.export_btn.clicked.connect(lambda: self.export_report())
        self.error_map_btn = QPushButton("Show error map")
        self.error_map_btn.setToolTip("Open pred − ref (HU) in the viewer")
        self.error_map_btn.clicked.connect(self.show_error_map)
        self.progress_bar = QProgressBar()
        self.status_label = QLabel("Choose inputs and press Evaluate.")
        self.status_label.setWordWrap(True)
        buttons = flow_row(self.run_btn, self.cancel_btn, self.export_btn, self.error_map_btn)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["metric", "value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.plot = pg.PlotWidget()
        self.plot.addLegend()
        self.curve_plot = pg.PlotWidget()
        self.curve_plot.addLegend()
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(192, 96))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.result_tabs = QTabWidget()
        self.result_tabs.addTab(self.table, "Numbers")
        self.result_tabs.addTab(self.plot, "Distributions")
        self.result_tabs.addTab(self.curve_plot, "Per slice")
        self.result_tabs.addTab(self.gallery, "Nearest neighbours")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.addWidget(self.mode_tabs)
        tl.addWidget(buttons)
        tl.addWidget(self.progress_bar)
        tl.addWidget(self.status_label)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.result_tabs)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.memo_check.toggled.connect(self._update_buttons)
        self.c2st_check.toggled.connect(self._update_buttons)
        self.extractor_combo.currentIndexChanged.connect(self._update_buttons)
        self._update_buttons()

    # -- state ----------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        self.run_btn.setEnabled(not self._busy)
        self.cancel_btn.setEnabled(self._busy)
        self.export_btn.setEnabled(self.result is not None and not self._busy)
        self.error_map_btn.setEnabled(isinstance(self.result, PairedReport) and not self._busy)
        self.train_row.setEnabled(self.memo_check.isChecked() or self.c2st_check.isChecked())
        self.inception_row.setEnabled(self.extractor_combo.currentData() == "inception")

    def is_busy(self) -> bool:
        return self._busy

    # -- running --------------------------------------------------------------------------
    def run(self) -> None:
        """Start the evaluation for the current tab in a worker."""
        if self._busy:
            return
        try:
            fn, args, kwargs = self._job()
        except ValueError as exc:
            QMessageBox.information(self, "Evaluate", str(exc))
            return
        self._busy = True
        self.result = None
        w = Worker(fn, *args, name="Evaluation", **kwargs).connect_slots(
            progress=self._on_progress, finished=self._on_result, failed=self._on_failed,
            cancelled=self._on_cancelled, done=self._on_done)
        self.worker = w
        self.status_label.setText("Evaluating…")
        self.progress_bar.setValue(0)
        self.context.workers.submit(w)
        self._update_buttons()

    def _job(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        if self.mode_tabs.currentIndex() == 0:
            real, fake = self.real_row.path(), self.fake_row.path()
            if real is None or fake is None:
                raise ValueError("Choose a folder of real images and a folder of synthetic images.")
            for p in (real, fake):
                if not p.exists():
                    raise ValueError(f"{p} does not exist.")
            extractor: Any = "shipped"
            if self.extractor_combo.currentData() == "inception":
                w = self.inception_row.path()
                if w is None or not w.is_file():
                    raise ValueError("Choose your local InceptionV3 FID weights file "
                                     "(pt_inception-2015-12-05); it is never downloaded.")
                extractor = w
            train = (self.train_row.path()
                     if self.memo_check.isChecked() or self.c2st_check.isChecked() else None)
            return run_unpaired, (UnpairedSpec(
                real, fake, extractor=str(extractor), memorization=self.memo_check.isChecked(),
                train=train, limit=self.limit_spin.value(), c2st=self.c2st_check.isChecked()),), {}
        if self.mode_tabs.currentIndex() == 2:
            dirs = [self.u_train_row.path(), self.u_fake_row.path(), self.u_test_row.path()]
            if any(d is None or not d.is_dir() for d in dirs):
                raise ValueError("Choose the real training, synthetic and real test folders "
                                 "(each with one sub-folder per class).")
            train_dir, fake_dir, test_dir = (Path(d) for d in dirs if d is not None)
            return run_utility, (UtilitySpec(train_dir, fake_dir, test_dir,
                                             seeds=self.seeds_spin.value(),
                                             limit=self.limit_spin.value()),), {}
        pred, ref = self.pred_row.path(), self.ref_row.path()
        if pred is None or ref is None:
            raise ValueError("Choose the synthetic and the reference volume.")
        sources = [r.path() for r in (self.source1_row, self.source2_row)]
        if (sources[0] is None) != (sources[1] is None):
            raise ValueError("SCD needs both fusion sources (or neither).")
        for q in (pred, ref, self.mask_row.path(), *sources):
            if q is not None and not q.exists():
                raise ValueError(f"{q} does not exist.")
        both = (sources[0], sources[1]) if sources[0] is not None and sources[1] is not None else None
        return run_paired, (PairedSpec(pred, ref, self.mask_row.path(),
                                       window=self.window_combo.currentText(), sources=both),), {}

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, p: Progress) -> None:
        self.progress_bar.setValue(int(100 * p.fraction))
        self.status_label.setText(p.message)

    def _on_failed(self, message: str, _tb: str) -> None:
        self.status_label.setText(message)
        QMessageBox.warning(self, "Evaluation failed", message)

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled.")

    def _on_done(self) -> None:
        self._busy = False
        self._update_buttons()

    def _on_result(self, result: Any) -> None:
        if isinstance(result, tuple):  # the utility job: (report, class names)
            result = result[0]
        self.result = result
        self.progress_bar.setValue(100)
        if isinstance(result, PairedReport):
            self._show_paired(result)
        elif isinstance(result, UtilityReport):
            self._show_utility(result)
        else:
            self._show_unpaired(result)
        self._update_buttons()

    # -- display --------------------------------------------------------------------------
    def _fill_table(self, rows: list[tuple[str, Any]]) -> None:
        self.table.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(k))
            text = f"{v:.5g}" if isinstance(v, float) else str(v)
            self.table.setItem(i, 1, QTableWidgetItem(text))

    def table_dict(self) -> dict[str, str]:
        """The numbers table as ``{metric: text}`` (used by tests and copy/paste)."""
        out = {}
        for i in range(self.table.rowCount()):
            k, v = self.table.item(i, 0), self.table.item(i, 1)
            if k is not None and v is not None:
                out[k.text()] = v.text()
        return out

    def _show_unpaired(self, res: UnpairedResult) -> None:
        rows = unpaired_rows(res, memorisation=True)
        d, m = res.distribution, res.memorization
        self._fill_table(rows)
        self.plot.clear()
        if m is not None:
            self._hist(m.reference_feature_distances, "real held-out → train" if
                       m.reference == "held-out real" else "train leave-one-out", (80, 120, 255))
            self._hist([e["distance"] for e in m.entries], "synthetic → train", (230, 60, 60))
            self.plot.addItem(pg.InfiniteLine(m.feature_threshold, angle=90,
                                              pen=pg.mkPen((255, 160, 0), width=2)))
            self.plot.setLabel("bottom", "nearest-training distance (features)")
        elif res.real_features is not None and res.fake_features is not None:
            both = np.concatenate([res.real_features, res.fake_features])
            mu = both.mean(0)
            _, _, vt = np.linalg.svd(both - mu, full_matrices=False)
            self._hist(((res.real_features - mu) @ vt[0]).tolist(), "real", (80, 120, 255))
            self._hist(((res.fake_features - mu) @ vt[0]).tolist(), "synthetic", (230, 60, 60))
            self.plot.setLabel("bottom", "first principal component of features")
        self.gallery.clear()
        if m is not None and res.fake_thumbs is not None and res.train_thumbs is not None:
            for e in sorted(m.entries, key=lambda e: e["distance"])[:48]:
                pair = np.concatenate([res.fake_thumbs[e["fake_index"]],
                                       res.train_thumbs[e["real_index"]]], axis=1)
                label = (f"{'⚠ NEAR-COPY ' if e['flagged'] else ''}{Path(e['fake']).name}\n"
                         f"≈ {Path(e['nearest_real']).name}  d={e['distance']:.3g}")
                item = QListWidgetItem(QIcon(unit_pixmap(pair)), label)
                item.setData(Qt.ItemDataRole.UserRole, e)
                self.gallery.addItem(item)
        flagged = len(m.flagged) if m is not None else 0
        self.status_label.setText(
            f"FD {d.fd:.4g}, KID {d.kid:.4g}, precision {d.precision:.3f}, recall {d.recall:.3f}"
            + (f"; {flagged} near-copies flagged" if m is not None else "")
            + (f"; C2ST accuracy {res.c2st.accuracy:.3f} (real vs real {res.c2st_null.accuracy:.3f})"
               if res.c2st is not None and res.c2st_null is not None else ""))

    def _hist(self, values: list[float], name: str, colour: tuple[int, int, int]) -> None:
        if not values:
            return
        y, x = np.histogram(np.asarray(values, float), bins=30, density=True)
        self.plot.plot(x, y, stepMode="center", pen=pg.mkPen(colour, width=2), name=name)

    def _show_paired(self, rep: PairedReport) -> None:
        rows: list[tuple[str, Any]] = [
            ("MAE (HU)", rep.mae), ("ME (HU)", rep.me), ("PSNR (dB)", rep.psnr),
            ("SSIM", rep.ssim), ("MS-SSIM", rep.ms_ssim), ("mask voxels", rep.mask_voxels),
            ("spatial frequency synthetic", rep.spatial_frequency_pred),
            ("spatial frequency reference", rep.spatial_frequency_ref)]
        if rep.scd is not None:
            rows.append(("SCD (fusion)", rep.scd))
        for t, v in rep.per_tissue.items():
            rows.append((f"MAE {t} (HU)", v["mae"]))
            rows.append((f"ME {t} (HU)", v["me"]))
        self._fill_table(rows)
        self.curve_plot.clear()
        ks = [s["slice"] for s in rep.per_slice]
        self.curve_plot.plot(ks, [s["mae"] for s in rep.per_slice], pen=pg.mkPen((230, 60, 60), width=2),
                             name="MAE (HU)")
        self.curve_plot.setLabel("bottom", "slice")
        self.plot.clear()
        if rep.error is not None and rep.mask is not None:
            err = rep.error.array[rep.mask]
            y, x = np.histogram(np.clip(err, -500, 500), bins=60, density=True)
            self.plot.plot(x, y, stepMode="center", pen=pg.mkPen((80, 120, 255), width=2),
                           name="error pred − ref (HU, in mask)")
            self.context.status.emit(f"MAE {rep.mae:.1f} HU, SSIM {rep.ssim:.3f}")
        self.gallery.clear()
        self.result_tabs.setCurrentWidget(self.table)
        self.status_label.setText(f"MAE {rep.mae:.2f} HU, ME {rep.me:.2f} HU, PSNR {rep.psnr:.2f} dB, "
                                  f"SSIM {rep.ssim:.4f}, MS-SSIM {rep.ms_ssim:.4f}")

    def _show_utility(self, rep: UtilityReport) -> None:
        rows: list[tuple[str, Any]] = [("real training images", rep.n_train_real),
                                       ("synthetic images", rep.n_train_synthetic),
                                       ("real test images", rep.n_test), ("seeds", len(rep.seeds))]
        for k, (m, lo, hi) in rep.summary.items():
            rows.append((f"{k} (mean)", m))
            rows.append((f"{k} 95% CI", f"[{lo:.4f}, {hi:.4f}]"))
        self._fill_table(rows)
        self.plot.clear()
        x = np.arange(len(rep.seeds))
        self.plot.plot(x, rep.real_auc, pen=pg.mkPen((80, 120, 255), width=2), symbol="o",
                       name="AUC real only")
        self.plot.plot(x, rep.mixed_auc, pen=pg.mkPen((230, 60, 60), width=2), symbol="o",
                       name="AUC real + synthetic")
        self.plot.setLabel("bottom", "seed")
        self.gallery.clear()
        d = rep.summary["delta_auc"]
        self.status_label.setText(f"AUC change with synthetic data: {d[0]:+.4f} "
                                  f"(95% CI {d[1]:+.4f} to {d[2]:+.4f})")

    def show_error_map(self) -> None:
        """Send the error map to the main viewer (paired mode)."""
        if isinstance(self.result, PairedReport) and self.result.error is not None:
            self.context.volume_opened.emit(self.result.error)

    # -- export ---------------------------------------------------------------------------
    def export_report(self, path: str | Path | None = None) -> Path | None:
        """Write the HTML report (asks for a file name when ``path`` is None)."""
        if self.result is None:
            QMessageBox.information(self, "Export", "Run an evaluation first.")
            return None
        if path is None:
            chosen = save_file_name(self, "Save report", "evaluation.html", "HTML (*.html)")
            if not chosen:
                return None
            path = chosen
        try:
            if isinstance(self.result, PairedReport):
                text = paired_html(self.result)
            elif isinstance(self.result, UtilityReport):
                text = utility_html(self.result)
            else:
                text = unpaired_html(self.result)
            out = write_html(text, Path(path))
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None
        self.status_label.setText(f"Report written to {out}")
        return out
