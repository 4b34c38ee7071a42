"""Background workers: core callbacks become Qt signals here, and only here."""
