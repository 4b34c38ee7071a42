"""What the PyInstaller build must collect, in plain Python (no PyInstaller import).

The spec (``medgan_desktop.spec``) imports this module, and so does the normal test
suite (``tests/test_packaging.py``), which checks that every module the application
imports lazily (``importlib.import_module``, imports inside functions, plugin entry
points) is listed here. Keep the lists data: the spec only passes them on.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Third-party modules imported only inside functions or found through plugins, so that
#: PyInstaller's import scanner cannot see them.
THIRD_PARTY_HIDDEN: tuple[str, ...] = (
    # VTK: render backends register object factories only when imported; without them
    # nothing is drawn (STYLE.md). The Qt interactor is imported lazily by the 3D viewer.
    "vtkmodules.vtkRenderingOpenGL2",
    "vtkmodules.vtkRenderingVolumeOpenGL2",
    "vtkmodules.vtkRenderingVolume",
    "vtkmodules.vtkRenderingCore",
    "vtkmodules.vtkRenderingFreeType",
    "vtkmodules.vtkRenderingAnnotation",
    "vtkmodules.vtkInteractionStyle",
    "vtkmodules.vtkInteractionWidgets",
    "vtkmodules.vtkCommonCore",
    "vtkmodules.vtkCommonDataModel",
    "vtkmodules.vtkImagingCore",
    "vtkmodules.vtkIOImage",
    "vtkmodules.util.numpy_support",
    "vtkmodules.qt",
    "vtkmodules.qt.QVTKRenderWindowInteractor",
    # pydicom 3 chooses pixel decoders/encoders at run time by name.
    "pydicom.pixels.decoders.base",
    "pydicom.pixels.decoders.pylibjpeg",
    "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.rle",
    "pydicom.pixels.encoders.base",
    "pydicom.pixels.encoders.pylibjpeg",
    "pydicom.pixels.encoders.native",
    "pydicom.encoders",
    # pylibjpeg finds its plugins through entry points (metadata copied by our hook).
    "pylibjpeg",
    "pylibjpeg.utils",
    "openjpeg",
    "libjpeg",
    "rle",
    # Imported lazily by core code (Volume.to_sitk, weights loading, NIfTI opening).
    "SimpleITK",
    "safetensors",
    "safetensors.torch",
    "nibabel",
    "pynetdicom",
    "jsonschema",
    "platformdirs",
    "PIL.Image",
    "sqlite3",
)

#: Never needed at run time; keeping them out saves size and start-up time.
EXCLUDES: tuple[str, ...] = (
    "matplotlib",
    "tkinter",
    "_tkinter",
    "IPython",
    "jupyter_client",
    "notebook",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "mypy",
    "ruff",
    "importlinter",
    "grimp",
    "pydicom_data",
    "deid_data",
    "data_store",
    "torch.utils.tensorboard",
    "tensorboard",
    "PyQt5",
    "PyQt6",
    "PySide2",
)

#: Files the wheels ship that the application never uses (test binaries, protoc).
DROP_PREFIXES: tuple[str, ...] = (
    "torch/test/",
    "torch/bin/",
    "torch/include/",
    "torch/share/",
    "torch/lib/libtorchbind_test.so",
)
#: ... except these, which torch needs at import time.
KEEP_ANYWAY: tuple[str, ...] = ("torch/bin/torch_shm_manager",)


def keep(toc_entry: tuple[str, ...]) -> bool:
    """False for a PyInstaller TOC entry (destination first) that matches DROP_PREFIXES."""
    dest = str(toc_entry[0]).replace("\\", "/")
    return dest in KEEP_ANYWAY or not dest.startswith(DROP_PREFIXES)


def project_modules(root: Path = REPO) -> list[str]:
    """Every module of the ``medgan_desktop`` package, found on disk (nothing imported).

    Collecting all of them as hidden imports covers the explicit registries loaded with
    ``importlib`` (GAN methods ``_MODULES``, CLI ``_COMMANDS``, the main window's
    ``PANELS`` and the viewers) without repeating their names here.
    """
    pkg = root / "medgan_desktop"
    mods: list[str] = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        mods.append(".".join(parts))
    return mods


def hidden_imports(root: Path = REPO) -> list[str]:
    """The full hidden-import list handed to PyInstaller's ``Analysis``."""
    return [*project_modules(root), *THIRD_PARTY_HIDDEN]


def data_dirs(root: Path = REPO) -> list[tuple[str, str]]:
    """``(source, destination)`` folders copied into the bundle next to the code."""
    return [(str(root / "models"), "models"), (str(root / "resources"), "resources")]
