import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro.catalogs import scores_to_table, write_regions
from anomalymatch_astro.utils.exceptions import InvalidInputError, OutputExistsError

regions = pytest.importorskip("regions")


@pytest.fixture
def table(cutouts, scores):
    return scores_to_table(cutouts, scores, labels={"007": "anomaly", "x1": "normal"})


def test_ds9(tmp_path, table):
    path = tmp_path / "c.reg"
    write_regions(table, path, radius=2 * u.arcsec)
    back = regions.Regions.read(path, format="ds9")
    assert len(back) == len(table)
    for reg, coord in zip(back, table["coord"]):
        assert isinstance(reg, regions.CircleSkyRegion)
        assert reg.center.separation(coord) < 1e-4 * u.arcsec  # 8 decimals of a degree
        assert reg.radius.to_value(u.arcsec) == pytest.approx(2.0, rel=1e-4)
    text = path.read_text()
    for obj_id in table["id"]:  # (regions' reader turns the text "007" into the number 7)
        assert f"text={{{obj_id}}}" in text
    assert [r.visual["edgecolor"] for r in back][:3] == ["red", "blue", "green"]


def test_crtf(tmp_path, table):
    path = tmp_path / "c.crtf"
    write_regions(table, path, format="crtf", radius="1.5arcsec", color="yellow")
    back = regions.Regions.read(path, format="crtf")
    assert len(back) == len(table)
    sep = SkyCoord([r.center for r in back]).separation(table["coord"])
    assert np.all(sep < 0.1 * u.arcsec)  # CRTF is written in J2000 (FK5)
    assert back[0].radius.to_value(u.arcsec) == pytest.approx(1.5, rel=1e-3)


def test_plain_table_and_errors(tmp_path):
    t = QTable({"name": ["p"], "ra": [1.0], "dec": [2.0]})
    write_regions(t, tmp_path / "p.reg", text_column="name")
    assert "text={p}" in (tmp_path / "p.reg").read_text()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_regions(t, tmp_path / "p.reg", text_column="name")
    with pytest.raises(InvalidInputError, match="format"):
        write_regions(t, tmp_path / "p.x", format="ascii", text_column=None)
    with pytest.raises(InvalidInputError, match="text_column"):
        write_regions(t, tmp_path / "q.reg")
