"""2D (pyqtgraph) and 3D (VTK, imported lazily) viewers."""
