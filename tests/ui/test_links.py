from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from anomalymatch_astro.ui import SKY_LINKS, sky_links
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_links():
    links = sky_links(370.5, -12.25)
    assert tuple(links) == SKY_LINKS
    ls = urlsplit(links["Legacy Survey"])
    assert ls.netloc == "www.legacysurvey.org"
    q = parse_qs(ls.query)
    assert q["ra"] == ["10.500000"] and q["dec"] == ["-12.250000"]
    esa = parse_qs(urlsplit(links["ESASky"]).query)
    assert esa["target"] == ["10.500000 -12.250000"]
    sim = parse_qs(urlsplit(links["SIMBAD"]).query)
    assert sim["Coord"] == ["10.500000 -12.250000"] and sim["Radius.unit"] == ["arcsec"]


@pytest.mark.parametrize("ra,dec", [(np.nan, 0.0), (10.0, 91.0), (np.inf, 1.0)])
def test_bad_position(ra, dec):
    with pytest.raises(InvalidInputError, match="position"):
        sky_links(ra, dec)
