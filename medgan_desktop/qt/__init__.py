"""Qt layer: may import the core; the core never imports this."""
