"""scoring (work in progress)."""
