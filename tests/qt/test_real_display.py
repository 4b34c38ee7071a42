"""The GUI on a real X display: what the X server shows, driven by real key and mouse events.

Each scenario runs the application in its own Xvfb (Mesa software GL, ``DISPLAY`` set, Qt's
xcb platform; never the offscreen platform) through ``display_driver.py``; the driver
presses keys and drags with ``xdotool`` and grabs the root window with ImageMagick's
``import``. These tests assert on those screen shots and on the layout the driver
recorded: the 3D pane draws a volume (not blank, not the 2D image, changes when rotated and
with MIP), Compare shows the SYNTHETIC banner on the synthetic pane only, Fusion does not
move the docks, Ctrl+1..6 bring each panel to the front with the focus in it, nothing
scrolls sideways, the study tree shows full names, and MPR opens fitted, at 1280x800,
1600x1000 and 1920x1080.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

DRIVER = Path(__file__).with_name("display_driver.py")
TOOLS = ("xvfb-run", "xdotool", "import")
PANEL_KEYS = ("browser", "translate", "train", "sample", "evaluate", "review")


def _run(scenario: str, size: str, out: Path, data: Path) -> dict[str, Any]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"real-display tests need {', '.join(missing)} "
                    "(apt-get install xvfb xdotool imagemagick; packaging/bootstrap.sh does)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "VTK_DEFAULT_OPENGL_WINDOW", "DISPLAY", "WAYLAND_DISPLAY")}
    env["MEDGAN_DATA_DIR"] = str(out / "data")
    env["PYTHONPATH"] = str(REPO)
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, str(DRIVER),
           str(out), scenario, str(data)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
    report_path = out / "report.json"
    if not report_path.is_file():
        pytest.fail(f"the display driver wrote no report (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert not report["errors"], "\n".join(report["errors"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["platform"] == "xcb", report["platform"]
    return report


@cache
def _full(data: Path, out: Path) -> dict[str, Any]:
    return _run("full", "1600x1000", out, data)


@pytest.fixture(scope="module")
def full(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("display_full")
    return _full(shared_data, out), out


def _pixels(out: Path, step: str, rect: list[int]) -> np.ndarray:
    x, y, w, h = rect
    img = np.asarray(Image.open(out / f"{step}.png").convert("RGB"), dtype=np.float32)
    return img[y:y + h, x:x + w]


def _on_top(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: d for k, d in step["docks"].items() if d["on_top"]}


def _no_sideways_scroll(step: dict[str, Any]) -> None:
    for key, dock in _on_top(step).items():
        assert dock["panel_width"] <= dock["viewport_width"], (key, dock)
        assert dock["panel_min_width"] <= dock["viewport_width"], (key, dock)


def _tree_shows_full_names(step: dict[str, Any]) -> None:
    tree = step["tree"]
    assert tree["h_scroll_max"] == 0, tree
    assert all(s >= w for s, w in zip(tree["sections"], tree["wanted"], strict=True)), tree
    assert sum(tree["sections"]) <= tree["viewport"], tree


def test_3d_view_draws_a_volume_that_is_not_the_2d_image(full: tuple[dict[str, Any], Path]) -> None:
    report, out = full
    steps = report["steps"]
    rect = steps["3d"]["panes"]["image"]
    assert rect is not None and not steps["3d"]["panes"]["error"], steps["3d"]["panes"]
    shown = _pixels(out, "3d", rect)
    grey = shown.mean(axis=2)
    assert grey.std() > 10 and (grey > 60).mean() > 0.02, "the 3D pane is blank"
    # the same screen area in 2D mode shows the slice; the 3D rendering is another picture
    before = _pixels(out, "2d", rect)
    assert np.abs(shown - before).mean() > 10, "the 3D pane shows the 2D image"
    rotated = _pixels(out, "3d_rotated", rect)
    assert np.abs(rotated - shown).mean() > 2, "dragging in the 3D pane did not rotate it"
    mip = _pixels(out, "3d_mip", rect)
    assert np.abs(mip - rotated).mean() > 2, "the MIP preset did not change the rendering"
    crop = _pixels(out, "3d_crop", rect)
    assert np.abs(crop - mip).mean() > 2, "cropping the slab did not change the rendering"


def test_compare_shows_the_synthetic_banner_on_the_synthetic_pane(full: tuple[dict[str, Any], Path]) -> None:
    report, out = full
    step = report["steps"]["compare"]
    assert step["panes"]["banners"] == [False, True, False]
    for n, rect in enumerate(step["panes"]["compare"]):
        px = _pixels(out, "compare", rect)
        red = (px[..., 0] > 170) & (px[..., 1] < 40) & (px[..., 2] < 40)
        if n == 1:
            assert red.sum() > 200, "no SYNTHETIC banner drawn on the synthetic pane"
        else:
            assert red.sum() < 20, f"a red banner on the real pane {n}"


def test_fusion_keeps_the_docks_and_marks_the_synthetic_overlay(full: tuple[dict[str, Any], Path]) -> None:
    report, _out = full
    steps = report["steps"]
    widths = {name: {k: d["rect"][2] for k, d in _on_top(steps[name]).items()}
              for name in ("compare", "fusion", "side_by_side_again")}
    assert widths["compare"] == widths["fusion"] == widths["side_by_side_again"], widths
    assert steps["fusion"]["panes"]["compare_mode"] == "fusion"
    for name in ("compare", "fusion"):
        _no_sideways_scroll(steps[name])


def test_ctrl_number_brings_each_panel_to_the_front_with_the_focus(full: tuple[dict[str, Any], Path]) -> None:
    report, _out = full
    for key in PANEL_KEYS:
        step = report["steps"][f"panel_{key}"]
        dock = step["docks"][key]
        assert dock["visible"] and dock["on_top"], (key, dock)
        assert dock["focus_inside"], f"Ctrl+number did not move the focus into {key}"
        assert all(d["visible"] for d in step["docks"].values()), "a panel was hidden"
        _no_sideways_scroll(step)


def test_layout_at_1600x1000(full: tuple[dict[str, Any], Path]) -> None:
    report, _out = full
    for name in ("2d", "mpr", "3d", "compare"):
        _tree_shows_full_names(report["steps"][name])
    assert report["steps"]["2d"]["tree"]["names"] == ["MRI-DIR-zzmeatphantom"]
    assert all(report["steps"]["mpr"]["panes"]["mpr_fitted"].values())


@pytest.mark.parametrize("size", ["1280x800", "1920x1080"])
def test_layout_holds_at_other_screen_sizes(size: str, shared_data: Path, tmp_path: Path) -> None:
    report = _run("layout", size, tmp_path, shared_data)
    step = report["steps"]["layout_mpr"]
    sw, sh = (int(v) for v in size.split("x"))
    x, y, w, h = step["window"]
    assert x >= 0 and y >= 0 and x + w <= sw and y + h <= sh, (step["window"], size)
    _tree_shows_full_names(step)
    _no_sideways_scroll(step)
    assert all(step["panes"]["mpr_fitted"].values()), step["panes"]["mpr_fitted"]
    viewer_w = step["panes"]["viewer"][2]
    assert viewer_w >= sw // 3, f"the viewer got {viewer_w} of {sw} px"
