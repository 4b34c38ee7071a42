#!/usr/bin/env bash
# Build the one-folder PyInstaller bundle for offline workstations.
#
#   bash packaging/build.sh                 CPU build with the project's .venv (torch CPU)
#   bash packaging/build.sh --cuda          CUDA build: a separate .venv-cuda with CUDA torch
#   bash packaging/build.sh --cuda=cu126    ... choosing the CUDA wheel index (default cu128)
#   bash packaging/build.sh --no-smoke      skip the smoke check of the finished bundle
#
# Result: dist/medgan-desktop/ with two programs sharing _internal/:
#   dist/medgan-desktop/medgan-desktop      the GUI   (--smoke checks every panel headless)
#   dist/medgan-desktop/medgan              the batch CLI
# Copy the whole folder to the workstation; it needs no Python, no network and no Debian
# data packages (the sample study is built here, once, into the bundle's resources).
# Run on the same OS family as the target (a Linux build runs on Linux of the same or a
# newer glibc). The build machine needs network access for pip; the bundle does not.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

cuda=""
smoke=1
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda="cu128" ;;
    --cuda=*) cuda="${arg#--cuda=}" ;;
    --no-smoke) smoke=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "usage: bash packaging/build.sh [--cuda[=cuXYZ]] [--no-smoke]" >&2; exit 2 ;;
  esac
done

TORCH_VERSION="2.13.0"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ -n "$cuda" ]; then
  # CUDA torch wheels come from PyTorch's own index; they make a bundle of several GB.
  venv=".venv-cuda"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "torch==${TORCH_VERSION}" \
    --index-url "https://download.pytorch.org/whl/${cuda}"
  "$venv/bin/python" -m pip install -q -e ".[build]"
  dist="dist-${cuda}"
else
  venv=".venv"
  [ -x "$venv/bin/python" ] || { echo "[build] run 'bash packaging/bootstrap.sh test' first" >&2; exit 1; }
  "$venv/bin/python" -c "import PyInstaller" 2>/dev/null \
    || "$venv/bin/python" -m pip install -q "pyinstaller>=6.10,<7"
  dist="dist"
fi
work="build/pyinstaller${cuda:+-$cuda}"
mkdir -p "$work"

# The sample study, built once from Debian's mricron-data / invesalius-examples.
sample="$work/sample_study"
if "$venv/bin/python" -m medgan_desktop.cli sample-study --out "$sample"; then
  export MEDGAN_SAMPLE_STUDY_DIR="$here/$sample"
else
  echo "[build] WARNING: no sample study in this bundle (install mricron-data and" \
       "invesalius-examples to ship one); File > Open sample study will say so." >&2
fi

start=$(date +%s)
"$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work" packaging/medgan_desktop.spec
echo "[build] built $dist/medgan-desktop in $(( $(date +%s) - start )) s," \
     "size $(du -sh "$dist/medgan-desktop" | cut -f1)"

if [ "$smoke" = 1 ]; then
  tmp_home="$(mktemp -d)"
  env -i HOME="$tmp_home" "$dist/medgan-desktop/medgan-desktop" --smoke
  env -i HOME="$tmp_home" "$dist/medgan-desktop/medgan" --version
  rm -rf "$tmp_home"
fi
