"""Shared fixtures of the catalogue tests: a tiny CutoutSet with sky positions and extra columns."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from anomalymatch_astro import CutoutSet

DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "catalogs"


@pytest.fixture
def recorded():
    """A function giving the text of a recorded response in tests/data/catalogs."""
    return lambda name: (DATA / name).read_text(encoding="utf-8")


@pytest.fixture
def cutouts():
    """Five 3-band 16x16 cutouts; ids chosen to trip Astronomaly (leading zeros, float-like)."""
    rng = np.random.default_rng(42)
    data = rng.normal(0, 1, size=(5, 3, 16, 16)).astype(np.float32)
    data[:, :, 6:10, 6:10] += 20  # a source in the middle
    extra = Table(
        {
            "truth": np.array([1, 0, 0, 1, 0]),
            "source_image": ["a.fits", "a.fits", "b.fits", "b.fits", "c.fits"],
            "overlap": np.array([1.0, 1.0, 0.5, 1.0, 1.0]),
        }
    )
    return CutoutSet.from_arrays(
        data,
        ids=["007", "x1", "1.5", "1e3", "NGC 4993"],
        bands=["g", "r", "i"],
        coords=SkyCoord([10.0, 10.01, 10.02, 150.5, 359.99], [-1.0, -1.0, 2.5, 30.25, -89.0], unit="deg"),
        table=extra,
        meta={"made_by": "test"},
    )


@pytest.fixture
def scores():
    """P(anomaly) for the five cutouts."""
    return np.array([0.9, 0.1, 0.35, 0.7, 0.05])
