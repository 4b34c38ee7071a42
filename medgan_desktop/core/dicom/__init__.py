"""dicom subsystem of the medgan core."""
