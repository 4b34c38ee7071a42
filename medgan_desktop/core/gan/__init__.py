"""gan subsystem of the medgan core."""
