"""Tests of anomalymatch_astro.archives."""
