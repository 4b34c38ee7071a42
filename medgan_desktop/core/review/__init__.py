"""review subsystem of the medgan core."""
