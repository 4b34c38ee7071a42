#!/usr/bin/env bash
# One-stop set-up for a fresh Debian machine (Python 3.11, root):
#   bash packaging/bootstrap.sh run    install everything, then launch the app
#   bash packaging/bootstrap.sh test   install everything, then run the whole test suite
# Idempotent: a second call only checks stamps and starts at once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
mode="${1:-run}"; shift || true

APT_PACKAGES=(xvfb xauth libosmesa6 libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0
  libxrender1 libxi6 libsm6 libice6 libxt6 libgl1-mesa-dri libglx-mesa0 xdotool imagemagick
  dicom3tools orthanc mricron-data invesalius-examples)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts an Orthanc service on install; the tests start their own on loopback.
  (command -v service >/dev/null && $SUDO service orthanc stop >/dev/null 2>&1) || true
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
stamp=".venv/.medgan-setup-$(cat pyproject.toml packaging/bootstrap.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv and installing pinned dependencies (first run takes a few minutes)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.medgan-setup-*
  touch "$stamp"
fi

# The 3D view picks its VTK render window itself: on-screen with a display, OSMesa without.

case "$mode" in
  run)
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
      echo "[run] no display found: starting the app on a virtual X display (Xvfb)."
      echo "[run] connect a real display, or use 'python main.py --screenshot out.png' to see it."
      exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python main.py "$@"
    fi
    exec .venv/bin/python main.py "$@"
    ;;
  test)
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    echo "[test] ruff"; .venv/bin/ruff check medgan_desktop tests benchmarks main.py
    echo "[test] mypy"; .venv/bin/mypy
    echo "[test] import-linter"; .venv/bin/lint-imports
    echo "[test] pytest"; exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
    ;;
  *) echo "usage: bash packaging/bootstrap.sh run|test [args]" >&2; exit 2 ;;
esac
