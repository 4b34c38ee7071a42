"""2D viewers on known-orientation phantoms and on the real MR/CT of the MRI-DIR phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pyqtgraph as pg
import pytest
import SimpleITK as sitk
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from medgan_desktop.core.volume import Volume
from medgan_desktop.qt.viewers.compare import CompareMode, CompareView, difference_pair
from medgan_desktop.qt.viewers.mpr import MprView
from medgan_desktop.qt.viewers.slice_view import SliceView
from medgan_desktop.qt.viewers.viewer_area import ViewerArea


# -- data -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mr(shared_data: Path) -> Volume:
    folder = shared_data / "mridir_phantom" / "MR_T2_DICOM"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return Volume.from_sitk(reader.Execute(), modality="MR", units="scanner",
                            description="T2 MR phantom")


@pytest.fixture(scope="module")
def ct(shared_data: Path) -> Volume:
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    return Volume.from_sitk(img, modality="CT", units="HU", description="Real CT")


@pytest.fixture(scope="module")
def synthetic_ct(shared_data: Path) -> Volume:
    """A stand-in 'synthetic CT': the real CT on a coarser grid, +30 HU, flagged synthetic."""
    img = sitk.ReadImage(str(shared_data / "mridir_phantom" / "CT_rigid_to_MR_grid.nii.gz"))
    small = sitk.Cast(sitk.Shrink(img, [2, 2, 1]), sitk.sitkFloat32) + 30.0
    return Volume.from_sitk(small, modality="CT", units="HU", description="Synthetic CT",
                            synthetic=True)


def marker_volume(direction: np.ndarray) -> Volume:
    """16x20x24 zeros with a 1000 at the voxel nearest the patient's left-anterior-superior corner."""
    shape = (16, 20, 24)
    vol = Volume(np.zeros(shape, np.float32), spacing=(1.0, 1.5, 2.0), direction=direction,
                 modality="CT", units="HU")
    k, j, i = np.indices(shape)
    pos = np.einsum("pa,a...->p...", vol.affine_lps[:3, :3], np.stack([i, j, k]).astype(float))
    score = pos[0] - pos[1] + pos[2]  # +L, -P (= anterior), +S
    arr = np.zeros(shape, np.float32)
    arr[np.unravel_index(int(np.argmax(score)), shape)] = 1000.0
    return vol.with_array(arr)


def shown(widget, qtbot, size=(500, 520)) -> None:
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    QApplication.processEvents()


def grab(widget, path: Path) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    assert img.save(str(path))
    w, h = img.width(), img.height()
    buf = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine())
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def assert_not_blank(rgb: np.ndarray) -> None:
    grey = rgb.mean(axis=2)
    assert grey.std() > 10, "the rendered view is blank"
    assert (grey > 100).mean() > 0.02, "almost nothing bright was drawn"


def widget_pos(view: SliceView, ijk: tuple[float, float, float]) -> QPoint:
    """Where the centre of voxel ``ijk`` is drawn, in the view's widget coordinates."""
    m = view.mapping()
    r, c, _s = m.from_voxel(ijk)
    scene = view.vb.mapViewToScene(QPointF((c + 0.5) * m.col_spacing, (r + 0.5) * m.row_spacing))
    return view.graphics.mapTo(view, view.graphics.mapFromScene(scene))


def send_drag(target, button, start: QPoint, end: QPoint, steps: int = 5) -> None:
    def ev(kind, pos, buttons):
        p = QPointF(pos)
        return QMouseEvent(kind, p, target.mapToGlobal(p), button, buttons,
                           Qt.KeyboardModifier.NoModifier)

    QApplication.sendEvent(target, ev(QMouseEvent.Type.MouseButtonPress, start, button))
    for n in range(1, steps + 1):
        pos = start + (end - start) * (n / steps)
        QApplication.sendEvent(target, ev(QMouseEvent.Type.MouseMove, pos, button))
    QApplication.sendEvent(target, ev(QMouseEvent.Type.MouseButtonRelease, end,
                                      Qt.MouseButton.NoButton))
    QApplication.processEvents()


def send_wheel(target, pos: QPoint, delta: int, mods=Qt.KeyboardModifier.NoModifier) -> None:
    p = QPointF(pos)
    ev = QWheelEvent(p, target.mapToGlobal(p), QPoint(0, 0), QPoint(0, delta),
                     Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, ev)
    QApplication.processEvents()


# -- orientation ------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]),
                                       np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])],
                         ids=["LPS", "RAS-flipped", "coronal-stored"])
def test_left_anterior_superior_marker_is_drawn_top_right(qtbot, tmp_path, direction) -> None:
    vol = marker_volume(direction)
    view = SliceView(axis="axial")
    qtbot.addWidget(view)
    view.set_volume(vol)
    view.set_window(200, 100)
    shown(view, qtbot)
    ijk = tuple(int(v) for v in np.argwhere(vol.array == 1000.0)[0][::-1])
    view.set_slice(int(view.mapping().from_voxel(ijk)[2]))
    view.vb.scaleBy((2.0, 2.0))  # zoom out: keep the image clear of the corner text
    QApplication.processEvents()
    rgb = grab(view, tmp_path / "marker.png")
    pos = widget_pos(view, ijk)
    gw = view.graphics.geometry()
    assert pos.x() > gw.center().x() and pos.y() < gw.center().y(), "marker not top-right"
    assert rgb[pos.y(), pos.x()].min() > 240, "marker voxel not drawn white there"
    mirrored = QPoint(2 * gw.center().x() - pos.x(), pos.y())
    assert rgb[mirrored.y(), mirrored.x()].max() < 30
    assert view.mapping().labels == ("A", "P", "R", "L")


def test_real_mr_axial_matches_the_dicom_pixels_and_position(qtbot, tmp_path, mr, shared_data):
    view = SliceView(axis="axial")
    qtbot.addWidget(view)
    view.set_volume(mr)
    shown(view, qtbot)
    # find the DICOM file for the shown slice through its ImagePositionPatient
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").iterdir())
    ds = next(pydicom.dcmread(f) for f in files
              if abs(float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
                     - view.slice_location()) < 0.01)
    # ImageOrientationPatient rows run +x (L), columns +y (P): radiological axial = the raw pixels
    assert [round(float(v)) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(view.current_image(), ds.pixel_array)
    info = view.probe(10, 500)
    assert info["ijk"][:2] == (500, 10)
    assert info["value"] == float(ds.pixel_array[10, 500])
    ipp = [float(v) for v in ds.ImagePositionPatient]
    assert info["lps"] == pytest.approx((ipp[0] + 500 * 0.5, ipp[1] + 10 * 0.5, ipp[2]), abs=1e-3)
    rgb = grab(view, tmp_path / "mr_axial.png")
    assert_not_blank(rgb)
    assert not view.synthetic_banner_visible()
    assert "T2 MR phantom" in view.corner_text("top_left")[0]


@pytest.mark.parametrize("axis,labels", [("coronal", ("S", "I", "R", "L")),
                                         ("sagittal", ("S", "I", "A", "P"))])
def test_real_mr_reformats_have_labels_and_aspect(qtbot, tmp_path, mr, axis, labels) -> None:
    view = SliceView(axis=axis)
    qtbot.addWidget(view)
    view.set_volume(mr)
    shown(view, qtbot)
    assert view.mapping().labels == labels
    assert (view.mapping().row_spacing, view.mapping().col_spacing) == (2.5, 0.5)
    # superior at the top: the first screen row is the last slice (k = 93)
    assert view.probe(0, 0)["ijk"][2] == 93
    # the image item spans the true height in mm (94 x 2.5), not 94 pixels
    rect = view.image_item.mapRectToView(view.image_item.boundingRect())
    assert rect.height() == pytest.approx(94 * 2.5) and rect.width() == pytest.approx(512 * 0.5)
    assert_not_blank(grab(view, tmp_path / f"mr_{axis}.png"))


# -- interaction --------------------------------------------------------------------------------
def test_scroll_keys_wheel_slider_and_window_drag(qtbot, ct) -> None:
    view = SliceView()
    qtbot.addWidget(view)
    view.set_volume(ct)
    shown(view, qtbot)
    start = view.slice_index()
    with qtbot.waitSignal(view.slice_changed) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Up)
    assert blocker.args == [start + 1]
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.slice_index() == start - 9
    view.slider.setValue(3)
    assert view.slice_index() == 3 and "Im: 4/94" in view.corner_text("top_right")
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.slice_index() == 93
    qtbot.keyClick(view, Qt.Key.Key_5)  # Default, Brain, Subdural, Stroke, Bone
    assert view.window_level() == (2000.0, 500.0)
    # right-drag: to the right widens the window, down raises the level
    w0, l0 = view.window_level()
    centre = view.graphics.viewport().rect().center()
    with qtbot.waitSignal(view.window_changed):
        send_drag(view.graphics.viewport(), Qt.MouseButton.RightButton, centre,
                  centre + QPoint(60, 40))
    w1, l1 = view.window_level()
    assert w1 > w0 and l1 > l0
    # wheel scrolls slices, Ctrl+wheel zooms; left-drag pans (pyqtgraph's pan mode)
    index = view.slice_index()
    send_wheel(view.graphics.viewport(), centre, -120)
    assert view.slice_index() == index - 1
    before = view.view_range()
    send_wheel(view.graphics.viewport(), centre, 120, Qt.KeyboardModifier.ControlModifier)
    assert view.view_range().width() < before.width()
    assert view.vb.state["mouseMode"] == pg.ViewBox.PanMode
    view.reset()
    assert view.window_level() == (400.0, 40.0)


def test_presets_invert_and_blinded_banner(qtbot, tmp_path, synthetic_ct) -> None:
    view = SliceView()
    qtbot.addWidget(view)
    view.set_volume(synthetic_ct)
    shown(view, qtbot)
    names = [view.preset_combo.itemText(i) for i in range(view.preset_combo.count())]
    assert "Bone" in names and "Lung" in names and "Brain" in names
    view.apply_preset("Bone")
    assert view.window_level() == (2000.0, 500.0)
    view.apply_preset("Lung")
    assert view.window_level() == (1500.0, -600.0)
    img_plain = view.image_item.image.copy()
    view.set_invert(True)
    assert np.array_equal(view.image_item.image, 255 - img_plain) or \
        np.abs(view.image_item.image.astype(int) - (255 - img_plain.astype(int))).max() <= 1

    def red_pixels(rgb):
        return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)).sum())

    assert view.synthetic_banner_visible()
    assert red_pixels(grab(view, tmp_path / "synthetic.png")) > 300
    view.set_blinded(True)
    assert not view.synthetic_banner_visible()
    assert red_pixels(grab(view, tmp_path / "blinded.png")) == 0
    assert view.corner_text("top_left") == []


# -- MPR ------------------------------------------------------------------------------------------
def test_mpr_click_moves_the_other_planes(qtbot, tmp_path, mr) -> None:
    mpr = MprView()
    qtbot.addWidget(mpr)
    mpr.set_volume(mr)
    shown(mpr, qtbot, (900, 800))
    axial = mpr.views["axial"]
    target = (100, 300, axial.slice_index())
    m = axial.mapping()
    r, c, _s = m.from_voxel(target)  # zoom in so a voxel covers several screen pixels
    axial.vb.scaleBy((0.1, 0.1), center=QPointF((c + 0.5) * m.col_spacing, (r + 0.5) * m.row_spacing))
    QApplication.processEvents()
    pos = widget_pos(axial, target)
    qtbot.mouseClick(axial.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=axial.graphics.viewport().mapFrom(axial, pos))
    assert mpr.point() == target
    assert mpr.views["sagittal"].slice_index() == 100  # sagittal slices run along i (R->L)
    assert mpr.views["coronal"].slice_index() == 300  # coronal slices along j (A->P)
    assert mpr.views["coronal"]._vline.isVisible()
    # scrolling the coronal plane moves the crosshair point
    mpr.views["coronal"].set_slice(200)
    assert mpr.point()[1] == 200
    # windows follow each other
    mpr.views["sagittal"].set_window(300, 500)
    assert mpr.views["axial"].window_level() == (300, 500)
    assert_not_blank(grab(mpr, tmp_path / "mpr.png"))


# -- Compare --------------------------------------------------------------------------------------
def test_compare_resamples_syncs_and_shows_difference_and_fusion(
    qtbot, tmp_path, mr, ct, synthetic_ct
) -> None:
    cmp = CompareView()
    qtbot.addWidget(cmp)
    cmp.set_volumes([mr, synthetic_ct, ct], ["MR", "Synthetic CT", "Real CT"])
    shown(cmp, qtbot, (1200, 600))
    vols = cmp.volumes()
    assert all(v.shape == mr.shape for v in vols)
    assert vols[1].synthetic and vols[1].modality == "CT"
    assert difference_pair(vols) == (1, 2)
    # slice sync
    cmp.views[0].set_slice(30)
    assert [v.slice_index() for v in cmp.all_views()] == [30] * 5
    # zoom/pan sync
    cmp.views[2].vb.scaleBy((0.5, 0.5))
    QApplication.processEvents()
    r0, r2 = cmp.views[0].view_range(), cmp.views[2].view_range()
    assert r0.width() == pytest.approx(r2.width()) and r0.x() == pytest.approx(r2.x())
    # window sync between the CTs only
    mr_window = cmp.views[0].window_level()
    cmp.views[2].apply_preset("Bone")
    assert cmp.views[1].window_level() == (2000.0, 500.0) and cmp.views[0].window_level() == mr_window
    side = grab(cmp, tmp_path / "compare_side.png")
    assert_not_blank(side)
    # difference: synthetic - real ~ +30 HU inside the phantom
    cmp.set_mode(CompareMode.DIFFERENCE)
    diff = cmp.diff_view.volume()
    centre = diff.array[47, 200:300, 200:300]
    assert np.median(centre) == pytest.approx(30.0, abs=5.0)
    assert cmp.diff_view.colorbar.isVisible() and cmp.diff_view.window_level()[1] == 0.0
    rgb = grab(cmp, tmp_path / "compare_difference.png")
    reds = ((rgb[..., 0] > 150) & (rgb[..., 2] < 120)).sum()
    blues = ((rgb[..., 2] > 150) & (rgb[..., 0] < 120)).sum()
    assert reds > 100 and blues > 100  # the diverging colour bar is drawn at least
    # fusion: MR base with a CT overlay at the slider's opacity
    cmp.set_mode("fusion")
    assert cmp.fusion_view.overlay_item.isVisible()
    cmp.opacity_slider.setValue(80)
    assert cmp.fusion_view.overlay_item.opacity() == pytest.approx(0.8)
    assert_not_blank(grab(cmp, tmp_path / "compare_fusion.png"))
    with pytest.raises(ValueError):
        cmp.set_volumes([mr])


# -- ViewerArea ------------------------------------------------------------------------------------
def test_viewer_area_modes_export_and_clipboard(qtbot, tmp_path, mr, ct, synthetic_ct) -> None:
    area = ViewerArea()
    qtbot.addWidget(area)
    shown(area, qtbot, (1000, 700))
    area.show_volume(mr)
    assert area.current_volume() is mr
    for mode in ("2D", "MPR"):
        area.set_mode(mode)
        out = area.export_png(tmp_path / f"area_{mode}.png")
        img = QImage(str(out))
        assert not img.isNull() and img.width() > 300
    area.show_comparison([ct, synthetic_ct], ["Real CT", "Synthetic CT"])
    assert area.mode() == "Compare"
    area.export_png(tmp_path / "area_compare.png")
    area.copy_to_clipboard()
    clip = QGuiApplication.clipboard().image()
    assert not clip.isNull() and clip.width() > 300
    area.show_comparison([ct, synthetic_ct], ["A", "B"])
    area.set_blinded(True)
    assert not any(v.synthetic_banner_visible() for v in area.compare_view.all_views())
    assert not area.slice_view.synthetic_banner_visible()
    with pytest.raises(ValueError):
        area.set_mode("4D")


def test_viewer_area_resamples_comparisons_in_a_worker(qtbot, ct, synthetic_ct) -> None:
    from medgan_desktop.core.config import Settings
    from medgan_desktop.qt.context import AppContext

    context = AppContext(Settings.default())
    area = ViewerArea(context)
    qtbot.addWidget(area)
    with qtbot.waitSignal(context.status, timeout=30_000):
        area.show_comparison([ct, synthetic_ct], ["Real CT", "Synthetic CT"])
        # the GUI thread is free while the worker resamples
        assert area.compare_view.current_widget() is area.compare_view.message
    worker = area._compare_worker
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=10_000)
    vols = area.compare_view.volumes()
    assert [v.shape for v in vols] == [ct.shape, ct.shape]
    assert vols[1].synthetic and area.compare_view.views[1].synthetic_banner_visible()
    assert area.compare_view.current_widget() is area.compare_view.side_page


def test_compare_shows_the_uncertainty_map_over_the_synthetic_pane_only_for_its_comparison(
    qtbot, mr, synthetic_ct
) -> None:
    from dataclasses import replace

    cmp = CompareView()
    qtbot.addWidget(cmp)
    syn = cmp_syn = replace(synthetic_ct, array=np.asarray(synthetic_ct.array))
    unc = replace(syn, array=np.abs(np.asarray(syn.array, dtype=np.float32)) / 10.0, description="UNCERTAINTY")
    cmp.set_uncertainty(unc)
    cmp.set_volumes([cmp_syn, cmp_syn], ["Synthetic", "Synthetic"])
    shown(cmp, qtbot, (900, 500))
    pane = cmp.views[1]
    assert cmp.uncertainty() is unc and cmp.uncertainty_check.isVisible()
    assert pane.overlay_item.isVisible() and pane.colorbar.isVisible()
    assert not cmp.views[0].overlay_item.isVisible()
    cmp.uncertainty_check.setChecked(False)
    assert not pane.overlay_item.isVisible()
    cmp.uncertainty_check.setChecked(True)
    cmp.set_volumes([mr, synthetic_ct], ["MR", "Synthetic CT"])  # another comparison: no stale map
    assert cmp.uncertainty() is None and not cmp.uncertainty_check.isVisible()
    assert not cmp.views[1].overlay_item.isVisible()
