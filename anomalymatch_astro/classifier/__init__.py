"""classifier (work in progress)."""
