"""catalogs (work in progress)."""
