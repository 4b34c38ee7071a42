"""3D volume rendering headless through OSMesa, checked with vtkWindowToImageFilter PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.viewers import volume_view
from medgan_desktop.qt.viewers.viewer_area import ViewerArea
from medgan_desktop.qt.viewers.volume_view import TransferPreset, VolumeView


def png_rgb(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    assert not img.isNull(), f"{path} is not an image"
    w, h = img.width(), img.height()
    buf = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine())
    return buf[:, : w * 3].reshape(h, w, 3).copy()


@pytest.fixture(scope="module")
def ct_small(shared_data: Path) -> Volume:
    """The real phantom CT (HU), halved in-plane to keep software rendering quick."""
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_native_half_res.nii.gz"))
    img = sitk.Shrink(img, [2, 2, 2])
    return Volume.from_sitk(img, modality="CT", units="HU", description="CT phantom")


def make_view(qtbot) -> VolumeView:
    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(320, 360)
    view.show()
    qtbot.waitExposed(view)
    assert view.available(), view.error
    return view


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, 1.0, -1.0])],
                         ids=["LPS", "RPI-flipped"])
def test_left_superior_blob_renders_top_right_from_the_front(qtbot, tmp_path, direction) -> None:
    shape = (24, 24, 24)
    vol = Volume(np.zeros(shape, np.float32), spacing=(2.0, 2.0, 2.0), direction=direction,
                 modality="CT", units="HU")
    k, j, i = np.indices(shape)
    pos = np.einsum("pa,a...->p...", vol.affine_lps[:3, :3], np.stack([i, j, k]).astype(float))
    centre = pos.reshape(3, -1).mean(axis=1)[:, None, None, None]
    rel = pos - centre
    arr = np.full(shape, -1000.0, np.float32)
    arr[(rel[0] > 8) & (rel[2] > 8)] = 1500.0  # patient left + superior block
    arr[np.abs(rel).max(axis=0) < 3] = 1500.0  # a small centre cube for scale
    view = make_view(qtbot)
    view.set_volume(vol.with_array(arr))
    view.set_preset(TransferPreset.MIP)
    rgb = png_rgb(view.render_to_png(tmp_path / "blob.png")).mean(axis=2)
    h, w = rgb.shape
    ys, xs = np.nonzero(rgb > 128)
    assert xs.size > 50, "nothing rendered"
    # viewed from the front (anterior), patient left is on screen right, superior at the top
    corner = rgb[: h // 2, w // 2:]
    assert (corner > 128).sum() > 0.6 * xs.size
    assert (rgb[: h // 2, : w // 2] > 128).sum() < 0.1 * xs.size


def test_real_ct_presets_crop_and_reset(qtbot, tmp_path, ct_small) -> None:
    view = make_view(qtbot)
    view.set_volume(ct_small)
    assert view.preset_combo.currentText() == TransferPreset.CT_SOFT_TISSUE.value
    images = {}
    for preset in TransferPreset:
        view.set_preset(preset)
        rgb = png_rgb(view.render_to_png(tmp_path / f"ct_{preset.name.lower()}.png"))
        assert rgb.std() > 5, f"{preset} rendered blank"
        images[preset] = rgb
    assert np.abs(images[TransferPreset.CT_BONE].astype(int)
                  - images[TransferPreset.MIP].astype(int)).mean() > 2
    # crop away the upper half (k axis): the rendering changes and the box is kept
    view.set_crop_box(((0.0, 1.0), (0.0, 1.0), (0.0, 0.5)))
    assert view.crop_box()[2] == (0.0, 0.5)
    cropped = png_rgb(view.render_to_png(tmp_path / "ct_cropped.png"))
    assert np.abs(cropped.astype(int) - images[TransferPreset.MIP].astype(int)).mean() > 1
    # the slider drives the same crop
    view.crop_axis.setCurrentIndex(2)
    assert view.crop_hi.value() == 50
    view.crop_hi.setValue(100)
    assert view.crop_box()[2] == (0.0, 1.0)
    view._rotate(90, 0)
    turned = png_rgb(view.render_to_png(tmp_path / "ct_turned.png"))
    view.reset_camera()
    back = png_rgb(view.render_to_png(tmp_path / "ct_reset.png"))
    assert np.abs(turned.astype(int) - back.astype(int)).mean() > 1
    assert np.abs(back.astype(int) - images[TransferPreset.MIP].astype(int)).mean() < 1
    # the headless widget shows the rendering as a pixmap too
    QApplication.processEvents()
    assert view.display.pixmap() is not None and not view.display.pixmap().isNull()


def test_viewer_area_3d_mode_exports_through_vtk(qtbot, tmp_path, ct_small) -> None:
    area = ViewerArea()
    qtbot.addWidget(area)
    area.resize(500, 450)
    area.show()
    qtbot.waitExposed(area)
    assert area.volume_view is None  # VTK is not touched until the 3D tab is opened
    area.show_volume(ct_small)
    area.set_mode("3D")
    assert area.volume_view is not None and area.volume_view.volume() is ct_small
    out = area.export_png(tmp_path / "area_3d.png")
    assert png_rgb(out).std() > 5


def test_no_opengl_gives_an_honest_message(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(volume_view.ctypes.util, "find_library", lambda _name: None)
    view = VolumeView()
    qtbot.addWidget(view)
    assert not view.available()
    assert "not available" in view.message.text() and "OSMesa" in view.message.text()
    view.set_volume(Volume(np.zeros((2, 2, 2), np.float32)))  # must not raise
    assert not view.reset_button.isEnabled()
    with pytest.raises(RuntimeError):
        view.render_to_png("/nonexistent/x.png")
