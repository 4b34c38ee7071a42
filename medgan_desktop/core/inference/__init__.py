"""inference subsystem of the medgan core."""
