"""The PyInstaller build: the spec, its hidden imports and (slow) a real build.

The normal suite executes ``packaging/medgan_desktop.spec`` with stand-ins for
PyInstaller's ``Analysis``/``PYZ``/``EXE``/``COLLECT`` (no PyInstaller needed) and checks
that everything the application imports lazily is listed. The slow test really builds the
bundle (``pytest -m slow tests/test_packaging.py``; about 15-25 minutes on 2 cores).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "packaging" / "medgan_desktop.spec"

REQUIRED_THIRD_PARTY = (
    "vtkmodules.vtkRenderingOpenGL2",
    "vtkmodules.vtkRenderingVolumeOpenGL2",
    "vtkmodules.vtkInteractionStyle",
    "vtkmodules.qt.QVTKRenderWindowInteractor",
    "pydicom.pixels.decoders.pylibjpeg",
    "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.rle",
    "pydicom.pixels.encoders.pylibjpeg",
    "pylibjpeg",
    "openjpeg",
    "libjpeg",
    "rle",
    "SimpleITK",
    "safetensors",
    "safetensors.torch",
)


class _Rec:
    """Records the arguments PyInstaller's build objects would receive."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __init__(self, kind: str, *args: Any, **kwargs: Any) -> None:
        self.kind, self.args, self.kwargs = kind, args, kwargs
        _Rec.calls.append((kind, args, kwargs))
        # what the spec reads back from an Analysis
        self.scripts = [("pyiboot01_bootstrap", "/x/pyiboot01_bootstrap.py", "PYSOURCE"),
                        ("main", str(REPO / "main.py"), "PYSOURCE")]
        self.pure: list[Any] = []
        self.binaries: list[Any] = []
        self.datas: list[Any] = []


@pytest.fixture(scope="module")
def spec() -> dict[str, list[_Rec]]:
    _Rec.calls = []
    found: dict[str, list[_Rec]] = {}

    def factory(kind: str) -> Any:
        def make(*args: Any, **kwargs: Any) -> _Rec:
            rec = _Rec(kind, *args, **kwargs)
            found.setdefault(kind, []).append(rec)
            return rec
        return make

    namespace = {name: factory(name) for name in ("Analysis", "PYZ", "EXE", "COLLECT")}
    namespace.update(SPECPATH=str(SPEC.parent), __file__=str(SPEC), __name__="__main__")
    saved = list(sys.path)
    try:
        exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    finally:
        sys.path[:] = saved
    return found


@pytest.fixture(scope="module")
def hidden(spec: dict[str, list[_Rec]]) -> set[str]:
    (analysis,) = spec["Analysis"]
    return set(analysis.kwargs["hiddenimports"])


def test_spec_builds_two_programs_in_one_folder(spec: dict[str, list[_Rec]]) -> None:
    (analysis,) = spec["Analysis"]
    assert analysis.args[0] == [str(REPO / "main.py")]
    names = [e.kwargs["name"] for e in spec["EXE"]]
    assert names == ["medgan-desktop", "medgan"]
    cli_scripts = spec["EXE"][1].args[1]
    assert [s[0] for s in cli_scripts][-1] == "pyi_entry_cli"
    assert all(s[1] != str(REPO / "main.py") for s in cli_scripts)
    assert (REPO / "packaging" / "pyi_entry_cli.py").is_file()
    (coll,) = spec["COLLECT"]
    assert coll.kwargs["name"] == "medgan-desktop"
    assert spec["EXE"][0] in coll.args and spec["EXE"][1] in coll.args
    # paths are relative to the spec file
    assert analysis.kwargs["hookspath"] == [str(REPO / "packaging" / "hooks")]


def test_models_and_resources_are_collected(spec: dict[str, list[_Rec]]) -> None:
    (analysis,) = spec["Analysis"]
    datas = {dest: Path(src) for src, dest in analysis.kwargs["datas"]}
    assert datas["models"] == REPO / "models" and datas["models"].is_dir()
    assert datas["resources"] == REPO / "resources" and datas["resources"].is_dir()
    assert (datas["models"] / "manifest.json").is_file()


def test_unneeded_packages_are_excluded(spec: dict[str, list[_Rec]]) -> None:
    (analysis,) = spec["Analysis"]
    excludes = set(analysis.kwargs["excludes"])
    assert {"matplotlib", "tkinter", "pytest", "hypothesis", "PyQt5"} <= excludes


def test_third_party_lazy_modules_are_hidden_imports(hidden: set[str]) -> None:
    missing = [m for m in REQUIRED_THIRD_PARTY if m not in hidden]
    assert not missing, f"add to packaging/pyi_modules.py: {missing}"


def test_every_hidden_import_exists(hidden: set[str]) -> None:
    """A typo in the list would silently ship a broken bundle."""
    absent = [m for m in sorted(hidden) if importlib.util.find_spec(m) is None]
    assert not absent


def test_gan_methods_and_cli_commands_are_hidden_imports(hidden: set[str]) -> None:
    from medgan_desktop import cli
    from medgan_desktop.core.gan import methods

    need = [f"medgan_desktop.core.gan.methods.{m}" for m in methods._MODULES]
    need += [f"medgan_desktop.cli.{m}" for m in cli._COMMANDS]
    assert len(need) >= 5
    missing = [m for m in need if m not in hidden]
    assert not missing


def test_panels_and_viewers_are_hidden_imports(hidden: set[str]) -> None:
    from medgan_desktop.qt.main_window import PANELS

    need = [spec.module for spec in PANELS]
    need += [f"medgan_desktop.qt.viewers.{p.stem}"
             for p in (REPO / "medgan_desktop" / "qt" / "viewers").glob("*.py")
             if p.stem != "__init__"]
    need.append("medgan_desktop.qt.viewers.viewer_area")  # imported by name in MainWindow
    # A panel whose module is not written yet is the app's --smoke test's business; here:
    # every panel module that exists must be bundled.
    present = [m for m in need if importlib.util.find_spec(m) is not None]
    assert "medgan_desktop.qt.panels.browser" in present
    missing = [m for m in present if m not in hidden]
    assert not missing


def test_every_import_module_call_by_name_is_covered(hidden: set[str]) -> None:
    """``importlib.import_module("a.b")`` with a literal name anywhere in the package."""
    literal: set[str] = set()
    for path in (REPO / "medgan_desktop").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "import_module" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                literal.add(node.args[0].value)
    assert not [m for m in literal if m not in hidden]


def test_pylibjpeg_hook_copies_entry_point_metadata() -> None:
    """pylibjpeg finds its decoders through entry points: the dist-info must ship."""
    text = (REPO / "packaging" / "hooks" / "hook-pylibjpeg.py").read_text(encoding="utf-8")
    for dist in ("pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pylibjpeg-rle"):
        assert f'"{dist}"' in text
    assert "copy_metadata" in text
    from pylibjpeg.utils import get_pixel_data_decoders

    assert "1.2.840.10008.1.2.4.90" in get_pixel_data_decoders()  # JPEG 2000 via openjpeg


def test_build_script_documents_cpu_and_cuda() -> None:
    text = (REPO / "packaging" / "build.sh").read_text(encoding="utf-8")
    assert "--cuda" in text and "download.pytorch.org/whl/" in text
    assert "packaging/medgan_desktop.spec" in text
    assert "sample-study" in text
    out = subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--cuda" in out.stdout
    bad = subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), "--bogus"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_frozen_bundle_runs_from_a_copied_folder(tmp_path: Path) -> None:
    """Build the bundle, copy it elsewhere and run both programs with an empty environment.

    Only ``HOME`` is set (to a temp folder) so the run writes nothing into the real home.
    """
    t0 = time.perf_counter()
    build = subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), "--no-smoke"],
                           cwd=REPO, capture_output=True, text=True, timeout=3500)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    built = REPO / "dist" / "medgan-desktop"
    copy = tmp_path / "elsewhere" / "medgan-desktop"
    shutil.copytree(built, copy, symlinks=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}

    smoke = subprocess.run([str(copy / "medgan-desktop"), "--smoke"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "[smoke] ok" in smoke.stdout

    version = subprocess.run([str(copy / "medgan"), "--version"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("medgan "), version.stderr

    sample = subprocess.run([str(copy / "medgan"), "sample-study", "--quiet"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert sample.returncode == 0, sample.stderr
    folder = Path(sample.stdout.strip().splitlines()[-1])
    assert folder.is_relative_to(home) and len(list(folder.rglob("*.dcm"))) > 150

    size = sum(f.stat().st_size for f in copy.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"bundle {size / 2**20:.0f} MiB, build+checks {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    assert size < 3 * 2**30
    assert os.access(copy / "medgan", os.X_OK)


def test_entry_script_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, str(REPO / "packaging" / "pyi_entry_cli.py"),
                          "--version"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("medgan "), out.stderr


def test_wheel_test_binaries_are_left_out(spec: dict[str, list[_Rec]]) -> None:
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import pyi_modules
    finally:
        sys.path.remove(str(REPO / "packaging"))
    assert not pyi_modules.keep(("torch/test/Dict_test", "/x", "BINARY"))
    assert not pyi_modules.keep(("torch/bin/protoc", "/x", "BINARY"))
    assert pyi_modules.keep(("torch/lib/libtorch_cpu.so", "/x", "BINARY"))
    assert pyi_modules.keep(("torch/bin/torch_shm_manager", "/x", "BINARY"))  # import needs it
    assert "pyi_modules.keep" in SPEC.read_text(encoding="utf-8")
