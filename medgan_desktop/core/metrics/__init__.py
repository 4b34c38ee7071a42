"""metrics subsystem of the medgan core."""
