"""3D volume rendering (VTK, imported lazily so the application starts fast).

With a display, rendering happens in an embedded ``QVTKRenderWindowInteractor``.
Headless (Qt ``offscreen``/``minimal`` platform, or no ``DISPLAY`` on Linux), VTK
renders into an offscreen OSMesa window and the widget shows the rendered image,
with mouse drag to rotate and wheel to zoom. If VTK cannot start, the widget says
so instead of crashing the application.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout, QWidget

from medgan_desktop.core.imaging.orientation import axis_code
from medgan_desktop.core.imaging.windowing import auto_window, is_hu
from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.flow_layout import flow_row

log = logging.getLogger(__name__)

#: Largest number of voxels along an axis sent to the renderer (bigger volumes are strided).
MAX_RENDER_DIM = 256
#: The same limit for software (OSMesa) rendering, where every ray is cast on the CPU.
HEADLESS_MAX_RENDER_DIM = 160


class TransferPreset(StrEnum):
    CT_BONE = "CT bone"
    CT_SOFT_TISSUE = "CT soft tissue"
    MR_DEFAULT = "MR default"
    MIP = "MIP"


def is_headless() -> bool:
    """True when there is no on-screen display for an OpenGL window."""
    platform = QGuiApplication.platformName() if QGuiApplication.instance() else ""
    if platform in ("offscreen", "minimal"):
        return True
    return sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _offscreen_window() -> Any:
    """An OSMesa render window on Linux (no display needed), else None for VTK's default."""
    if not sys.platform.startswith("linux"):
        return None
    from vtkmodules.vtkRenderingOpenGL2 import vtkOSOpenGLRenderWindow

    return vtkOSOpenGLRenderWindow()


def transfer_points(
    preset: TransferPreset, lo: float, hi: float
) -> tuple[list[tuple[float, float, float, float]], list[tuple[float, float]]]:
    """Colour ``(value, r, g, b)`` and opacity ``(value, alpha)`` points of a preset.

    Args:
        preset: which transfer function.
        lo: low display value (percentile) for MR / MIP.
        hi: high display value (percentile) for MR / MIP.
    """
    colors: list[tuple[float, float, float, float]]
    alphas: list[tuple[float, float]]
    if preset == TransferPreset.CT_BONE:
        colors = [(-1024, 0, 0, 0), (150, 0.55, 0.25, 0.15), (300, 0.9, 0.82, 0.68), (1500, 1, 1, 0.95)]
        alphas = [(-1024, 0.0), (150, 0.0), (300, 0.35), (1500, 0.85)]
    elif preset == TransferPreset.CT_SOFT_TISSUE:
        colors = [(-1024, 0, 0, 0), (-600, 0.3, 0.15, 0.1), (-100, 0.75, 0.45, 0.35),
                  (60, 0.95, 0.65, 0.55), (400, 1, 0.95, 0.85), (1500, 1, 1, 1)]
        alphas = [(-1024, 0.0), (-600, 0.0), (-100, 0.03), (60, 0.12), (400, 0.5), (1500, 0.8)]
    elif preset == TransferPreset.MR_DEFAULT:
        span = hi - lo
        colors = [(lo, 0, 0, 0), (lo + 0.5 * span, 0.7, 0.6, 0.55), (hi, 1, 1, 1)]
        alphas = [(lo, 0.0), (lo + 0.25 * span, 0.0), (lo + 0.6 * span, 0.08), (hi, 0.5)]
    else:  # MIP
        colors = [(lo, 0, 0, 0), (hi, 1, 1, 1)]
        alphas = [(lo, 0.0), (hi, 1.0)]
    return ([(float(v), float(r), float(g), float(b)) for v, r, g, b in colors],
            [(float(v), float(a)) for v, a in alphas])


class _RenderLabel(QLabel):
    """Shows the offscreen rendering; drag rotates, wheel zooms."""

    rotated = Signal(float, float)
    zoomed = Signal(float)
    resized = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._last: QPoint | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("background: black;")

    def mousePressEvent(self, ev: Any) -> None:  # noqa: N802
        self._last = ev.position().toPoint()

    def mouseMoveEvent(self, ev: Any) -> None:  # noqa: N802
        if self._last is None:
            return
        p = ev.position().toPoint()
        d = p - self._last
        self._last = p
        self.rotated.emit(float(d.x()), float(d.y()))

    def mouseReleaseEvent(self, _ev: Any) -> None:  # noqa: N802
        self._last = None

    def wheelEvent(self, ev: Any) -> None:  # noqa: N802
        self.zoomed.emit(1.1 if ev.angleDelta().y() > 0 else 1 / 1.1)

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self.resized.emit()


class VolumeView(QWidget):
    """Volume rendering with transfer-function presets, camera reset and a crop slab."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._volume: Volume | None = None
        self._crop: list[tuple[float, float]] = [(0.0, 1.0)] * 3  # i, j, k fractions
        self._preset = TransferPreset.MR_DEFAULT
        self._vtk: dict[str, Any] = {}
        self._headless = False
        self.error: str | None = None
        self.max_render_dim = MAX_RENDER_DIM

        self.preset_combo = QComboBox(self)
        self.preset_combo.addItems([p.value for p in TransferPreset])
        self.preset_combo.currentTextChanged.connect(self.set_preset)
        self.reset_button = QPushButton("Reset camera", self)
        self.reset_button.clicked.connect(self.reset_camera)
        self.crop_axis = QComboBox(self)
        self.crop_axis.setToolTip("Axis of the crop slab")
        self.crop_axis.addItems(["i", "j", "k"])
        self.crop_axis.currentIndexChanged.connect(self._sync_crop_sliders)
        self.crop_lo = QSlider(Qt.Orientation.Horizontal, self)
        self.crop_hi = QSlider(Qt.Orientation.Horizontal, self)
        for s, v in ((self.crop_lo, 0), (self.crop_hi, 100)):
            s.setRange(0, 100)
            s.setValue(v)
            s.setFixedWidth(110)
            s.valueChanged.connect(self._on_crop_slider)
        # one toolbar that wraps onto a second row in a narrow viewer
        bar = flow_row(QLabel("Preset:"), self.preset_combo, self.reset_button,
                       QLabel("Crop slab along"), self.crop_axis, QLabel("from"), self.crop_lo,
                       QLabel("to"), self.crop_hi, parent=self)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setVisible(False)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(bar)
        self._layout.addWidget(self.message, 1)
        self.display: QWidget | None = None
        try:
            self._init_vtk()
        except Exception as exc:  # VTK or OpenGL unavailable: say so, never crash the app
            log.exception("3D view unavailable")
            self._fail(f"3D rendering is not available on this computer: {exc}")

    # -- setup --------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self.error = text
        self.message.setText(text)
        self.message.setVisible(True)
        if self.display is not None:
            self.display.setVisible(False)
        for w in (self.preset_combo, self.reset_button, self.crop_axis, self.crop_lo, self.crop_hi):
            w.setEnabled(False)

    def _init_vtk(self) -> None:
        self._headless = is_headless()
        if self._headless:
            self.max_render_dim = HEADLESS_MAX_RENDER_DIM
            if sys.platform.startswith("linux") and not ctypes.util.find_library("OSMesa"):
                raise RuntimeError("no display and no OSMesa library (install libosmesa6)")
        elif os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") == "vtkOSOpenGLRenderWindow":
            # an OSMesa default would give the on-screen widget a window that never draws
            os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW")
        import vtkmodules.vtkInteractionStyle  # noqa: F401  (registers interactor styles)
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the OpenGL backend)
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (GPU ray casting)
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

        renderer = vtkRenderer()
        renderer.SetBackground(0.0, 0.0, 0.0)
        if self._headless:
            window = _offscreen_window() or vtkRenderWindow()
            window.SetOffScreenRendering(1)
            window.SetSize(400, 400)
            label = _RenderLabel(self)
            label.rotated.connect(self._rotate)
            label.zoomed.connect(self._zoom)
            label.resized.connect(self._on_label_resized)
            self.display = label
        else:
            from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
            from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera

            widget = QVTKRenderWindowInteractor(self)  # type: ignore[no-untyped-call]
            window = widget.GetRenderWindow()  # type: ignore[no-untyped-call]
            window.GetInteractor().SetInteractorStyle(vtkInteractorStyleTrackballCamera())
            widget.Initialize()
            self.display = widget
        window.AddRenderer(renderer)
        if hasattr(window, "SupportsOpenGL") and self._headless and not window.SupportsOpenGL():
            raise RuntimeError("the OpenGL context could not be created")
        self._vtk = {"renderer": renderer, "window": window}
        self._layout.addWidget(self.display, 1)

    def available(self) -> bool:
        return self.error is None

    # -- public API ---------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Render ``volume`` (None clears); picks CT soft tissue or MR default."""
        self._volume = volume
        self._crop = [(0.0, 1.0)] * 3
        self._sync_crop_sliders()
        if volume is not None:
            code = axis_code(volume.direction)
            for n, letter in enumerate(code):
                self.crop_axis.setItemText(n, f"{'ijk'[n]} ({letter})")
            preset = TransferPreset.CT_SOFT_TISSUE if is_hu(volume.modality, volume.units) \
                else TransferPreset.MR_DEFAULT
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentText(preset.value)
            self.preset_combo.blockSignals(False)
            self._preset = preset
        if not self.available():
            return
        try:
            self._rebuild(reset_camera=True)
        except Exception as exc:
            log.exception("3D rendering failed")
            self._fail(f"3D rendering failed: {exc}")

    def volume(self) -> Volume | None:
        return self._volume

    def set_preset(self, preset: TransferPreset | str) -> None:
        self._preset = TransferPreset(preset)
        if self.preset_combo.currentText() != self._preset.value:
            self.preset_combo.setCurrentText(self._preset.value)
            return
        if self.available() and self._volume is not None:
            self._apply_property()
            self.refresh()

    def set_crop_box(self, box: tuple[tuple[float, float], ...]) -> None:
        """Crop to fractions ``((i0, i1), (j0, j1), (k0, k1))`` of each voxel axis."""
        if len(box) != 3:
            raise ValueError("the crop box needs three (start, end) pairs")
        self._crop = [(max(0.0, min(a, b)), min(1.0, max(a, b))) for a, b in box]
        self._sync_crop_sliders()
        if self.available() and self._volume is not None:
            self._rebuild(reset_camera=False)

    def crop_box(self) -> tuple[tuple[float, float], ...]:
        return tuple(self._crop)

    def reset_camera(self) -> None:
        """View from the patient's front (anterior), head up: patient right on screen left."""
        ren = self._vtk.get("renderer")
        if ren is None:
            return
        cam = ren.GetActiveCamera()
        fx, fy, fz = cam.GetFocalPoint()
        if self._volume is not None and "image" in self._vtk:
            b = self._vtk["volume"].GetBounds()
            fx, fy, fz = (b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2
        cam.SetFocalPoint(fx, fy, fz)
        cam.SetPosition(fx, fy - 1000.0, fz)  # anterior is -y in LPS
        cam.SetViewUp(0.0, 0.0, 1.0)
        ren.ResetCamera()
        self.refresh()

    def refresh(self) -> None:
        window = self._vtk.get("window")
        if window is None:
            return
        if self._headless and isinstance(self.display, QLabel):
            w, h = max(self.display.width(), 64), max(self.display.height(), 64)
            window.SetSize(w, h)
            window.Render()
            img = self._grab_array()
            qimg = QImage(img.data, img.shape[1], img.shape[0], img.shape[1] * 3,
                          QImage.Format.Format_RGB888).copy()
            self.display.setPixmap(QPixmap.fromImage(qimg))
        else:
            window.Render()

    def render_to_png(self, path: str | Path) -> Path:
        """Render the current view to a PNG through ``vtkWindowToImageFilter``."""
        if not self.available():
            raise RuntimeError(self.error or "3D view unavailable")
        from vtkmodules.vtkIOImage import vtkPNGWriter
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        window = self._vtk["window"]
        window.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(window)
        grab.ReadFrontBufferOff()
        grab.Update()
        writer = vtkPNGWriter()
        writer.SetFileName(str(path))
        writer.SetInputConnection(grab.GetOutputPort())
        writer.Write()
        return Path(path)

    def to_qimage(self) -> QImage:
        """The current rendering as a QImage (for the clipboard)."""
        if not self.available():
            raise RuntimeError(self.error or "3D view unavailable")
        self._vtk["window"].Render()
        img = self._grab_array()
        return QImage(img.data, img.shape[1], img.shape[0], img.shape[1] * 3,
                      QImage.Format.Format_RGB888).copy()

    # -- internals ----------------------------------------------------------------------
    def _grab_array(self) -> np.ndarray:
        from vtkmodules.util import numpy_support
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        grab = vtkWindowToImageFilter()
        grab.SetInput(self._vtk["window"])
        grab.ReadFrontBufferOff()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        flat = numpy_support.vtk_to_numpy(  # type: ignore[no-untyped-call]
            out.GetPointData().GetScalars())
        arr = flat.reshape(h, w, -1)
        return np.ascontiguousarray(arr[::-1, :, :3])  # VTK rows run bottom-up

    def _cropped(self) -> tuple[np.ndarray, tuple[float, float, float], tuple[float, float, float]]:
        vol = self._volume
        assert vol is not None
        k_n, j_n, i_n = vol.shape
        step = [max(1, int(np.ceil(n / self.max_render_dim))) for n in (i_n, j_n, k_n)]
        lo = [int(f0 * n) for (f0, _f1), n in zip(self._crop, (i_n, j_n, k_n), strict=True)]
        hi = [max(int(np.ceil(f1 * n)), lo_ + 1) for (_f0, f1), n, lo_
              in zip(self._crop, (i_n, j_n, k_n), lo, strict=True)]
        arr = vol.array[lo[2]:hi[2]:step[2], lo[1]:hi[1]:step[1], lo[0]:hi[0]:step[0]]
        spacing = tuple(float(s * st) for s, st in zip(vol.spacing, step, strict=True))
        origin = tuple(float(v) for v in vol.index_to_lps((lo[0], lo[1], lo[2])))
        return np.ascontiguousarray(arr, dtype=np.float32), spacing, origin  # type: ignore[return-value]

    def _rebuild(self, reset_camera: bool) -> None:
        from vtkmodules.util import numpy_support
        from vtkmodules.vtkCommonDataModel import vtkImageData
        from vtkmodules.vtkCommonMath import vtkMatrix4x4
        from vtkmodules.vtkRenderingCore import vtkVolume
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

        ren = self._vtk["renderer"]
        if "volume" in self._vtk:
            ren.RemoveVolume(self._vtk.pop("volume"))
            self._vtk.pop("image", None)
        if self._volume is None:
            self.refresh()
            return
        arr, spacing, origin = self._cropped()
        image = vtkImageData()
        image.SetDimensions(arr.shape[2], arr.shape[1], arr.shape[0])
        image.SetSpacing(*spacing)
        image.SetOrigin(0.0, 0.0, 0.0)
        # index -> patient position as the volume's user matrix, which every mapper honours
        matrix = vtkMatrix4x4()
        for r in range(3):
            for c in range(3):
                matrix.SetElement(r, c, float(self._volume.direction[r, c]))
            matrix.SetElement(r, 3, float(origin[r]))
        scalars = numpy_support.numpy_to_vtk(arr.reshape(-1), deep=True)  # type: ignore[no-untyped-call]
        image.GetPointData().SetScalars(scalars)
        mapper = vtkSmartVolumeMapper()
        mapper.SetInputData(image)
        if self._headless:  # software OpenGL: the multithreaded CPU ray caster is ~4x faster
            mapper.SetRequestedRenderModeToRayCast()
        actor = vtkVolume()
        actor.SetMapper(mapper)
        actor.SetUserMatrix(matrix)
        self._vtk.update(image=image, mapper=mapper, volume=actor)
        ren.AddVolume(actor)
        self._apply_property()
        if reset_camera:
            self.reset_camera()
        else:
            self.refresh()

    def _apply_property(self) -> None:
        from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
        from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolumeProperty

        vol = self._volume
        if vol is None or "volume" not in self._vtk:
            return
        width, level = auto_window(vol.array, 1.0, 99.8)
        lo, hi = level - width / 2, level + width / 2
        colors, alphas = transfer_points(self._preset, lo, hi)
        ctf = vtkColorTransferFunction()
        for v, r, g, b in colors:
            ctf.AddRGBPoint(v, r, g, b)
        otf = vtkPiecewiseFunction()
        for v, a in alphas:
            otf.AddPoint(v, a)
        prop = vtkVolumeProperty()
        prop.SetColor(ctf)
        prop.SetScalarOpacity(otf)
        prop.SetInterpolationTypeToLinear()
        mapper = self._vtk["mapper"]
        if self._preset == TransferPreset.MIP:
            mapper.SetBlendModeToMaximumIntensity()
            prop.ShadeOff()
        else:
            mapper.SetBlendModeToComposite()
            prop.ShadeOn()
            prop.SetAmbient(0.3)
            prop.SetDiffuse(0.7)
            prop.SetSpecular(0.2)
        self._vtk["volume"].SetProperty(prop)

    def _rotate(self, dx: float, dy: float) -> None:
        ren = self._vtk.get("renderer")
        if ren is None:
            return
        cam = ren.GetActiveCamera()
        cam.Azimuth(-dx * 0.5)
        cam.Elevation(dy * 0.5)
        cam.OrthogonalizeViewUp()
        ren.ResetCameraClippingRange()
        self.refresh()

    def _zoom(self, factor: float) -> None:
        ren = self._vtk.get("renderer")
        if ren is None:
            return
        ren.GetActiveCamera().Dolly(factor)
        ren.ResetCameraClippingRange()
        self.refresh()

    def _on_label_resized(self) -> None:
        if self._volume is not None and self.isVisible():
            self.refresh()

    def _sync_crop_sliders(self, *_args: Any) -> None:
        lo, hi = self._crop[self.crop_axis.currentIndex()]
        for s, v in ((self.crop_lo, lo), (self.crop_hi, hi)):
            s.blockSignals(True)
            s.setValue(round(v * 100))
            s.blockSignals(False)

    def _on_crop_slider(self, *_args: Any) -> None:
        box = list(self._crop)
        box[self.crop_axis.currentIndex()] = (self.crop_lo.value() / 100.0,
                                              self.crop_hi.value() / 100.0)
        self.set_crop_box(tuple(box))
