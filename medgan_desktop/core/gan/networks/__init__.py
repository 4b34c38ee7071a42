"""networks subsystem of the medgan core."""
