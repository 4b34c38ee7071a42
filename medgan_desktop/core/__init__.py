"""The Qt-free core: everything a batch job needs (DICOM, GANs, training, metrics, review)."""
