"""ui (work in progress)."""
