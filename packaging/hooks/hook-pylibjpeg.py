"""PyInstaller hook: pylibjpeg finds its decoders through entry points.

``pylibjpeg.utils.get_pixel_data_decoders()`` reads the ``pylibjpeg.*`` entry-point
groups from the installed distributions' metadata, so the frozen app needs the
``*.dist-info`` folders of the plugins as well as their modules.
"""

from PyInstaller.utils.hooks import collect_dynamic_libs, copy_metadata

hiddenimports = ["openjpeg", "libjpeg", "rle", "pylibjpeg.utils"]
datas = []
binaries = []
for dist, mod in (
    ("pylibjpeg", "pylibjpeg"),
    ("pylibjpeg-openjpeg", "openjpeg"),
    ("pylibjpeg-libjpeg", "libjpeg"),
    ("pylibjpeg-rle", "rle"),
):
    datas += copy_metadata(dist)
    binaries += collect_dynamic_libs(mod)
