"""PyInstaller hook: the VTK Qt interactor picks its Qt binding at run time.

``vtkmodules.qt`` tries PyQt5/PyQt6/PySide2/PySide6 in turn; only PySide6 ships, so
point it at PySide6 and keep the others out.
"""

hiddenimports = [
    "vtkmodules.qt.QVTKRenderWindowInteractor",
    "vtkmodules.vtkRenderingOpenGL2",
    "vtkmodules.vtkRenderingVolumeOpenGL2",
    "vtkmodules.vtkInteractionStyle",
    "PySide6.QtCore",
    "PySide6.QtGui",
    "PySide6.QtWidgets",
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
]
excludedimports = ["PyQt5", "PyQt6", "PySide2"]
