"""datasets (work in progress)."""
