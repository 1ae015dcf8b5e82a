"""archives (work in progress)."""
