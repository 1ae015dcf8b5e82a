"""``anomalymatch-astro export`` writes the catalogue best first (rank order), not in id order."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import read_table, scores_to_table, write_table
from anomalymatch_astro.cli import main

EXT = {"fits": "fits", "votable": "xml", "ecsv": "ecsv", "parquet": "parquet", "hdf5": "h5"}


@pytest.fixture
def scored(tmp_path):
    cs = CutoutSet.from_arrays(
        np.zeros((5, 1, 4, 4)),
        ids=["a", "b", "c", "d", "e"],
        bands=["r"],
        coords=SkyCoord([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], unit="deg"),
    )
    write_table(scores_to_table(cs, [0.2, np.nan, 0.9, 0.5, 0.9]), tmp_path / "scores.ecsv")
    return tmp_path / "scores.ecsv"


@pytest.mark.parametrize("fmt", sorted(EXT))
def test_export_writes_rank_order(scored, fmt):
    out = scored.parent / f"out.{EXT[fmt]}"
    assert main(["export", "--scores", str(scored), "--format", fmt, "-o", str(out)]) == 0
    back = read_table(out)
    assert back["id"].tolist() == ["c", "e", "d", "a", "b"]  # ties keep their order, NaN (not scored) last
    assert back["rank"].tolist() == [1, 2, 3, 4, 5]


def test_export_top_and_tables_without_rank(scored):
    table = QTable({"id": ["p", "q", "r"], "score": [0.1, 0.8, np.nan]})
    table.write(scored.parent / "plain.ecsv")
    out = scored.parent / "top.ecsv"
    assert main(["export", "--scores", str(scored.parent / "plain.ecsv"), "--format", "ecsv", "-o", str(out)]) == 0
    assert read_table(out)["id"].tolist() == ["q", "p", "r"]
    argv = ["export", "--scores", str(scored), "--format", "ecsv", "-o", str(out), "--top", "2", "--overwrite"]
    assert main(argv) == 0
    assert read_table(out)["id"].tolist() == ["c", "e"]
