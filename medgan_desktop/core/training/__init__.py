"""training subsystem of the medgan core."""
