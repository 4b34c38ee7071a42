"""Application entry: ``python main.py [--smoke | --screenshot OUT.png ...]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from medgan_desktop import APP_NAME, ORGANIZATION, __version__

log = logging.getLogger(__name__)


def _headless_requested(args: argparse.Namespace) -> bool:
    return bool(args.smoke or args.screenshot)


def _prepare_environment(args: argparse.Namespace) -> None:
    """Pick a Qt platform that works where we are (before QApplication).

    The VTK render window is chosen by the 3D view itself from the platform Qt ends up
    on: the on-screen window (GLX/EGL through the Qt widget) when there is a display,
    OSMesa only when headless. A process-wide ``VTK_DEFAULT_OPENGL_WINDOW`` naming
    OSMesa would make the on-screen widget draw nothing, so it is dropped when a display
    exists.
    """
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if has_display and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"):
        if os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") == "vtkOSOpenGLRenderWindow":
            log.info("a display exists: ignoring VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow")
            os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW")
    elif _headless_requested(args) and not has_display:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


PANEL_KEYS = ("browser", "translate", "train", "sample", "evaluate", "review")
VIEWER_MODES = ("2D", "MPR", "Compare", "3D")


def _viewer_mode(text: str) -> str:
    for mode in VIEWER_MODES:
        if mode.lower() == text.strip().lower():
            return mode
    raise argparse.ArgumentTypeError(f"unknown viewer {text!r}; one of {', '.join(VIEWER_MODES)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="medgan-desktop", description="medgan desktop application")
    p.add_argument("--version", action="version", version=f"medgan-desktop {__version__}")
    p.add_argument("--smoke", action="store_true",
                   help="start headless, build every panel, exit 0 (or 1 with the error)")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the main window to a PNG and exit")
    p.add_argument("--panel", type=str.lower, choices=PANEL_KEYS,
                   help="panel to bring to the front on start (browser, translate, train, "
                   "sample, evaluate, review)")
    p.add_argument("--viewer", type=_viewer_mode, metavar="{2D,MPR,Compare,3D}",
                   help="viewer mode to show on start; with --open, once the image is shown")
    p.add_argument("--open", type=Path, metavar="PATH", help="folder or image file to open first")
    p.add_argument("--sample", action="store_true", help="open the sample study on start")
    p.add_argument("--no-sample", action="store_true",
                   help="do not open the sample study on first launch (empty index)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for opening to finish before a screenshot")
    return p.parse_args(argv)


def _wait_idle(app: object, window: object, timeout: float) -> None:
    """Process events until no worker runs (bounded by ``timeout`` seconds)."""
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        app.processEvents()
        busy = bool(window.context.workers.running())  # type: ignore[attr-defined]
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
        time.sleep(0.02)


def _index_empty(context: object) -> bool:
    try:
        return sum(context.index.counts().values()) == 0  # type: ignore[attr-defined]
    except Exception:  # an unreadable index is reported when the browser opens it
        return False


def _startup_probe(app: object, window: object) -> None:
    """For ``benchmarks/bench_startup.py``: print when the event loop first answers (the
    window is usable), then how late a 5 ms timer ran while the panels loaded behind it,
    and when the last panel was built; then quit. Times are taken by the benchmark."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    clock = QElapsedTimer()
    late: list[float] = []
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        late.append(max((now - last[0]) / 1e6 - 5.0, 0.0))
        last[0] = now
        if not getattr(window, "_pending", None) and clock.elapsed() > 300:
            timer.stop()
            late.sort()
            p99 = late[min(len(late) - 1, int(0.99 * len(late)))] if late else 0.0
            print(f"[startup] panels {clock.elapsed() / 1000:.3f} s after usable; timer lateness "
                  f"p99 {p99:.1f} ms, max {max(late, default=0.0):.1f} ms", flush=True)
            app.quit()  # type: ignore[attr-defined]

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)

    def usable() -> None:
        print("[startup] usable", flush=True)
        clock.start()
        last[0] = clock.nsecsElapsed()
        timer.start()

    QTimer.singleShot(0, usable)
    window._probe_timer = timer  # type: ignore[attr-defined]  # kept alive with the window


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    _prepare_environment(args)

    from PySide6.QtCore import QCoreApplication, QSettings, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from medgan_desktop.core.config import Settings
    from medgan_desktop.qt.context import AppContext
    from medgan_desktop.qt.logging_setup import setup_logging
    from medgan_desktop.qt.main_window import MainWindow

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)

    settings = Settings.default()
    settings.paths.ensure()
    log_path = setup_logging(settings.paths.log_dir)
    log.info("medgan desktop %s starting (log %s)", __version__, log_path)
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" and not (args.smoke or args.screenshot):
        print("[medgan] running without a display (Qt offscreen platform)")

    qsettings = QSettings(str(settings.paths.data_dir / "settings.ini"), QSettings.Format.IniFormat)
    theme = str(qsettings.value("theme", settings.theme))
    from medgan_desktop.qt.theme import apply_theme

    apply_theme(app, theme, settings.paths.resources_dir)

    context = AppContext(settings)
    # a normal launch shows the window first and loads the work panels (torch, metrics,
    # the model catalogue) behind it; --smoke and --screenshot build everything at once
    window = MainWindow(context, qsettings, lazy_panels=not _headless_requested(args))

    if args.smoke:
        window.show()
        app.processEvents()
        context.workers.stop_all()
        if window.failures:
            for key, err in window.failures.items():
                print(f"[smoke] {key} failed to build: {err.splitlines()[0]}", file=sys.stderr)
            return 1
        print(f"[smoke] ok: {len(window.panels)} panels and the viewer built")
        return 0

    window.show()
    window.start_loading_panels()
    first_launch = not args.open and not args.screenshot and not args.no_sample and _index_empty(context)
    if args.sample or first_launch:
        if first_launch:
            print("[medgan] first launch: opening the sample study (File > Open sample study)")
        window.open_sample_study()
    if args.open:
        if not args.open.exists():
            print(f"[medgan] cannot open {args.open}: no such file or folder", file=sys.stderr)
        else:
            window.open_path(args.open)
    window.apply_start_view(viewer=args.viewer, panel=args.panel)

    if args.screenshot:
        _wait_idle(app, window, args.timeout)
        window.apply_start_view(viewer=args.viewer, panel=args.panel)
        _wait_idle(app, window, args.timeout)
        for _ in range(5):
            app.processEvents()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(args.screenshot))
        context.workers.stop_all()
        print(f"[screenshot] {'wrote' if ok else 'FAILED to write'} {args.screenshot}")
        return 0 if ok else 1

    if os.environ.get("MEDGAN_STARTUP_PROBE"):
        _startup_probe(app, window)
    code = app.exec()
    context.workers.stop_all()
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
