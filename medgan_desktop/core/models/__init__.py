"""models subsystem of the medgan core."""
