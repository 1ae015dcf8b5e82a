"""VOTable helpers on pyvo's recorded documents and ours: error statuses, DataLink, SODA descriptors."""

import os

import pytest

from anomalymatch_astro.archives._votable import datalink_url_column, parse_votable, soda_request
from anomalymatch_astro.utils.exceptions import ServiceError

from .conftest import recorded

pyvo = pytest.importorskip("pyvo")
PYVO_DATA = os.path.join(os.path.dirname(pyvo.__file__), "dal", "tests", "data")


def _pyvo(*parts):
    with open(os.path.join(PYVO_DATA, *parts), "rb") as f:
        return f.read()


def test_soda_in_pyvo_datalink():
    votable = parse_votable(_pyvo("datalink", "datalink.xml"), source="test")
    url, params = soda_request(votable, source="test")
    assert url.startswith("http") and params["ID"]


def test_soda_in_dachs_datalink():
    votable = parse_votable(recorded("datalink_candels_f606w.xml"), source="dachs")
    url, params = soda_request(votable, source="dachs")
    assert url == "http://127.0.0.1:8099/amtest/q/dl/dlget"
    assert params == {"ID": "ivo://amtest.test/~?amtest/data/candels_f606w.fits"}


def test_no_soda():
    votable = parse_votable(_pyvo("datalink", "datalink-obscore.xml"), source="svc")
    with pytest.raises(ServiceError, match="no SODA"):
        soda_request(votable, source="svc")


def test_datalink_descriptor_of_results():
    base, column, fixed = datalink_url_column(parse_votable(recorded("sia1_candels.xml"), source="s"))
    assert base == "http://127.0.0.1:8099/amtest/q/dl/dlmeta" and column == "pub_did" and fixed == {}
    assert datalink_url_column(parse_votable(_pyvo("query", "basic.xml"), source="s")) is None


@pytest.mark.parametrize("body", [b"", b"<html>oops</html>", b"\x00\x01garbage"])
def test_malformed(body):
    with pytest.raises(ServiceError, match="not a VOTable"):
        parse_votable(body, source="svc")


def test_error_status_message():
    with pytest.raises(ServiceError, match="Could not locate table 'ivoa.nonexisting_table'"):
        parse_votable(recorded("tap_error.xml"), source="tap")
    with pytest.raises(ServiceError, match="reported an error"):
        parse_votable(_pyvo("query", "errorstatus.xml"), source="q")
