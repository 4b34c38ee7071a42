"""imaging subsystem of the medgan core."""
