"""group_systems / collapse_systems: fragments of one object become one entry."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable, Table
from astropy.wcs import WCS

from anomalymatch_astro.catalogs import collapse_systems, group_systems
from anomalymatch_astro.utils.exceptions import InvalidInputError

SCALE = 0.13 * u.arcsec  # HST-like pixel


def _wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.16, -27.78]
    wcs.wcs.crpix = [100.5, 100.5]
    wcs.wcs.cdelt = [-SCALE.to_value(u.deg), SCALE.to_value(u.deg)]
    return wcs


def _table(pixels, scores=None, **cols):
    wcs = _wcs()
    x, y = np.array(pixels, dtype=float).T
    t = QTable({"id": [f"s{i}" for i in range(len(x))]})
    t["coord"] = wcs.pixel_to_world(x, y)
    if scores is not None:
        t["score"] = np.asarray(scores, dtype=float)
    for name, values in cols.items():
        t[name] = values
    return t


# three fragments of one merger (chained: 0-1 and 1-2 close, 0-2 not), two isolated sources
MERGER = [(100, 100), (106, 101), (112, 103)]
ISOLATED = [(40, 40), (160, 150)]


def test_merger_fragments_are_one_system_isolated_their_own():
    t = _table(MERGER + ISOLATED, scores=[0.3, 0.95, 0.4, 0.8, 0.1])
    g = group_systems(t, radius=8 * SCALE, score="score")
    system = np.asarray(g["system"])
    assert len(set(system[:3])) == 1  # friends of friends: 0 and 2 are 12 px apart, linked through 1
    assert len(set(system)) == 3
    assert system[3] != system[4] and system[3] != system[0]
    # the merger's best member (0.95) ranks it first, then the 0.8 source, then 0.1
    assert g["system_rank"].tolist() == [1, 1, 1, 2, 3]
    assert g["system_primary"].tolist() == [False, True, False, True, True]
    assert g["system_size"].tolist() == [3, 3, 3, 1, 1]
    assert g.meta["systems"]["n_systems"] == 3
    # the input is not modified
    assert "system" not in t.colnames


def test_small_radius_keeps_everything_apart():
    t = _table(MERGER + ISOLATED)
    g = group_systems(t, radius=2 * SCALE)
    assert g["system"].tolist() == [0, 1, 2, 3, 4]
    assert g["system_rank"].tolist() == [1, 2, 3, 4, 5]  # no score: table order is the ranking
    assert all(g["system_primary"])


def test_radius_column_in_pixels_links_overlapping_discs():
    # discs of radius r touch when separation <= r_i + r_j: 0-1 are 6.1 px apart
    t = _table([(100, 100), (106, 101), (140, 140)], kron=np.array([3.5, 3.0, 1.0]) * u.pix)
    g = group_systems(t, radius="kron", pixel_scale=SCALE)
    assert g["system"].tolist() == [0, 0, 1]
    g = group_systems(t, radius="kron", factor=0.5, pixel_scale=SCALE)
    assert g["system"].tolist() == [0, 1, 2]
    with pytest.raises(InvalidInputError, match="pixel_scale"):
        group_systems(t, radius="kron")


def test_default_radius_from_cutout_size():
    t = _table(MERGER + ISOLATED)
    t.meta["cutout_shape"] = [64, 64]  # an eighth of 64 px = 8 px
    t.meta["grid_wcs"] = _wcs().to_header_string()
    g = group_systems(t)
    assert g["system"].tolist() == [0, 0, 0, 1, 2]
    t.meta.clear()
    with pytest.raises(InvalidInputError, match="radius"):
        group_systems(t)


def test_segmentation_parents():
    seg = np.zeros((200, 200), dtype=np.int32)
    seg[95:106, 95:120] = 7  # one parent segment under the three fragments
    seg[35:45, 35:45] = 3
    t = _table(MERGER + ISOLATED, scores=[0.3, 0.95, 0.4, 0.8, 0.1])
    g = group_systems(t, segmentation=seg, wcs=_wcs(), score="score")
    assert g["system"].tolist() == [0, 0, 0, 1, 2]
    # a deblended map (one label per fragment) and its label -> parent mapping
    deblended = np.zeros_like(seg)
    deblended[95:106, 95:103], deblended[95:106, 103:109], deblended[95:106, 109:120] = 10, 11, 12
    g2 = group_systems(t, segmentation=deblended, wcs=_wcs(), parents={10: 7, 11: 7, 12: 7})
    assert g2["system"].tolist() == [0, 0, 0, 1, 2]
    g3 = group_systems(t, segmentation=deblended, wcs=_wcs())  # without parents the fragments stay apart
    assert g3["system"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidInputError, match="wcs"):
        group_systems(t, segmentation=seg)
    with pytest.raises(InvalidInputError, match="integer"):
        group_systems(t, segmentation=seg.astype(float), wcs=_wcs())


def test_collapse_keeps_rank_order_and_lists_members():
    # a ranked candidate list: rows in score order
    t = _table([(100, 100), (40, 40), (106, 101), (160, 150), (112, 103)], scores=[0.95, 0.8, 0.6, 0.5, 0.4])
    c = collapse_systems(t, radius=8 * SCALE)
    assert c["id"].tolist() == ["s0", "s1", "s3"]
    assert c["members"].tolist() == ["s2,s4", "", ""]
    assert c["n_members"].tolist() == [2, 0, 0]
    assert c["system_rank"].tolist() == [1, 2, 3]
    # a table that is already grouped is collapsed as it is
    g = group_systems(t, radius=8 * SCALE, score="score")
    assert collapse_systems(g)["id"].tolist() == ["s0", "s1", "s3"]


def test_collapse_without_score_uses_table_order():
    t = _table([(40, 40), (100, 100), (106, 101)], scores=[0.1, 0.2, 0.9])
    c = collapse_systems(t, score=None, radius=8 * SCALE)
    assert c["id"].tolist() == ["s0", "s1"]
    assert c["members"].tolist() == ["", "s2"]


def test_ra_dec_columns_and_errors():
    t = Table({"id": ["a", "b"], "ra": [10.0, 10.0001], "dec": [0.0, 0.0], "score": [1.0, 2.0]})
    assert group_systems(t, radius="1arcsec")["system"].tolist() == [0, 0]
    with pytest.raises(InvalidInputError, match="score"):
        group_systems(t, radius="1arcsec", score="nope")
    with pytest.raises(InvalidInputError, match="unit"):
        group_systems(t, radius=1.0)
    with pytest.raises(InvalidInputError, match="id column"):
        collapse_systems(t, id_column="name", radius="1arcsec")


def test_empty_table():
    t = Table({"id": np.array([], dtype=str), "ra": np.array([]), "dec": np.array([])})
    g = group_systems(t, radius="1arcsec")
    assert len(g) == 0 and g.meta["systems"]["n_systems"] == 0
