"""evaluation (work in progress)."""
