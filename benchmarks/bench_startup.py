"""Cold start: seconds from launching ``main.py`` to a usable window, idle and under load.

The application runs on a real X display (this benchmark starts its own Xvfb when none is
set) with ``MEDGAN_STARTUP_PROBE=1``: it prints ``[startup] usable`` when its event loop
first answers after the window is shown, then how late a 5 ms timer ran while the work
panels (torch, the metrics, the model catalogue) loaded behind the window, and when the
last panel was built. The time to ``usable`` is taken here, from the launch.

Measured in the same run: (a) an idle machine, (b) the same while another process keeps
one core busy, and (c) the reference, a bare PySide6 window (QApplication + QMainWindow,
shown, first event) started the same way. Figures: medians of several launches, the
busy/idle ratio and the app/bare-Qt ratio. Target: under 3 s to a usable window with
one core busy, on a 2-core machine.

    python benchmarks/bench_startup.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
BARE_QT = (
    "import sys\n"
    "from PySide6.QtCore import QTimer\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "app = QApplication(sys.argv)\n"
    "w = QMainWindow(); w.resize(1500, 950); w.show()\n"
    "QTimer.singleShot(0, lambda: (print('[startup] usable', flush=True), app.quit()))\n"
    "app.exec()\n"
)


@contextlib.contextmanager
def _display() -> Iterator[str]:
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        raise RuntimeError("the startup benchmark needs a display or Xvfb (apt-get install xvfb)")
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f":{n}"
    finally:
        proc.terminate()
        proc.wait(10)


def _launch(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    out: dict[str, float] = {}
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("[startup] usable"):
                out["usable_s"] = time.perf_counter() - t0
            m = re.match(r"\[startup\] panels ([\d.]+) s after usable; timer lateness "
                         r"p99 ([\d.]+) ms, max ([\d.]+) ms", line)
            if m:
                out["panels_after_usable_s"] = float(m.group(1))
                out["lateness_p99_ms"] = float(m.group(2))
                out["lateness_max_ms"] = float(m.group(3))
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if "usable_s" not in out:
        raise RuntimeError(f"{' '.join(cmd)} never reported a usable window (exit {proc.returncode})")
    return out


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = runs[0].keys()
    return {k: round(statistics.median(r[k] for r in runs if k in r), 3) for k in keys}


@contextlib.contextmanager
def _busy_core() -> Iterator[None]:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


def run(quick: bool = False) -> dict[str, Any]:
    n = 3 if quick else 5
    with _display() as display, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "VTK_DEFAULT_OPENGL_WINDOW")}
        env.update(DISPLAY=display, MEDGAN_DATA_DIR=str(Path(tmp) / "data"), MEDGAN_STARTUP_PROBE="1")
        app = [sys.executable, str(REPO / "main.py"), "--no-sample"]
        bare = [sys.executable, "-c", BARE_QT]
        _launch(app, env)  # warm the file cache and the bytecode
        idle = _median([_launch(app, env) for _ in range(n)])
        bare_idle = _median([_launch(bare, env) for _ in range(n)])
        with _busy_core():
            busy = _median([_launch(app, env) for _ in range(n)])
            bare_busy = _median([_launch(bare, env) for _ in range(n)])
    return {
        "target_s": TARGET_S,
        "launches_each": n,
        "idle": idle,
        "one_core_busy": busy,
        "bare_qt_window_idle_s": bare_idle["usable_s"],
        "bare_qt_window_busy_s": bare_busy["usable_s"],
        "busy_vs_idle": round(busy["usable_s"] / idle["usable_s"], 2),
        "app_vs_bare_qt_busy": round(busy["usable_s"] / bare_busy["usable_s"], 2),
        "meets_target_busy": busy["usable_s"] < TARGET_S,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    result = run(quick=a.quick)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
