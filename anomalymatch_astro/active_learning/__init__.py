"""active_learning (work in progress)."""
