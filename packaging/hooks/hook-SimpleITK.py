"""PyInstaller hook: SimpleITK is a package wrapping one large extension module."""

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules

hiddenimports = collect_submodules("SimpleITK")
binaries = collect_dynamic_libs("SimpleITK")
