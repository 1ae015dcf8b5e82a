"""Candidates grouped by system: fragments of one object are one entry, the others listed with it."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet, make_cutouts
from anomalymatch_astro.active_learning import ActiveLearningSession, first_per_system, select_mix, select_top
from anomalymatch_astro.utils.exceptions import InvalidInputError

FRAGMENTS = ["frag0", "frag1", "frag2", "frag3"]
ISOLATED = [f"iso{k}" for k in range(8)]


class Flat:
    """A stand-in embedder: the pixels."""

    model_hash = "flat-systems"

    def embed(self, cutouts, *, batch_size=256):
        return np.nan_to_num(cutouts.data.reshape(len(cutouts), -1)).astype(np.float32)


def crowded_cutouts(size=32):
    """A bright object catalogued as 4 deblended fragments (<= 4.5 px apart) and 8 isolated faint ones."""
    rng = np.random.default_rng(0)
    n = 200
    image = rng.normal(0, 1, (n, n)).astype(np.float32)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [n / 2, n / 2]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    yy, xx = np.mgrid[:n, :n]
    image += 50 * np.exp(-((xx - 100) ** 2 + (yy - 100) ** 2) / (2 * 6**2))
    xs, ys = [100, 103, 97, 101], [100, 101, 98, 104]
    for k, (x, y) in enumerate(
        [(30, 30), (30, 170), (170, 30), (170, 170), (60, 140), (140, 60), (100, 30), (30, 100)]
    ):
        image += (5 + k) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2**2))
        xs.append(x)
        ys.append(y)
    sky = wcs.pixel_to_world(np.array(xs, float), np.array(ys, float))
    catalog = Table({"id": FRAGMENTS + ISOLATED, "ra": sky.ra.deg, "dec": sky.dec.deg})
    return make_cutouts({"r": (image, wcs)}, catalog, size, progress=False)


def brightness(cs):
    """A score in [0, 1]: the brightest pixel, fragments of the bright object on top (frag0 best)."""
    peak = np.nan_to_num(cs.data).max(axis=(1, 2, 3))
    scores = peak / (peak.max() + 1.0)
    scores[:4] -= np.arange(4) * 1e-3
    return scores


@pytest.fixture
def session():
    cs = crowded_cutouts()
    s = ActiveLearningSession(cs, classifier=Flat(), user="me")
    s._scores = brightness(cs)  # scores as a training would leave them
    return s


def test_default_radius_links_the_fragments(session):
    systems = session.systems
    assert len(set(systems[:4])) == 1  # the four fragments are one system
    assert len(set(systems)) == 1 + len(ISOLATED)
    assert session.systems is not session.systems  # a copy each time, computed once
    assert session._get_systems() is session._get_systems()


def test_candidates_are_distinct_systems(session):
    top = session.candidates(5)
    assert len(top) == 5 and len(set(top["system"])) == 5
    assert top["id"][0] == "frag0"  # the best member of its system
    assert top["n_members"][0] == 3 and top["members"][0] == "frag1,frag2,frag3"
    assert list(top["n_members"][1:]) == [0, 0, 0, 0] and set(top["members"][1:]) == {""}
    assert not set(top["id"]) & {"frag1", "frag2", "frag3"}
    assert top.meta["grouped"] is True


def test_group_false_is_the_old_behaviour(session):
    flat = session.candidates(5, group=False)
    assert flat.colnames == ["id", "score", "rank"]
    assert list(flat["id"][:4]) == FRAGMENTS  # the duplicates are back
    rows = select_top(session.scores, 5, exclude=session.labelled_mask())
    assert list(flat["id"]) == list(session.cutouts.ids[rows])


@pytest.mark.parametrize("strategy", ["uncertainty", "diversity", "mix"])
def test_every_strategy_gives_distinct_systems(session, strategy):
    table = session.candidates(6, strategy=strategy)
    assert len(table) == 6 and len(set(table["system"])) == 6


def test_similar_leaves_out_the_query_system(session):
    table = session.candidates(4, strategy="similar", like="frag0")
    assert not set(table["id"]) & set(FRAGMENTS)
    assert len(set(table["system"])) == len(table) == 4
    flat = session.candidates(4, strategy="similar", like="frag0", group=False)
    assert set(flat["id"][:3]) == {"frag1", "frag2", "frag3"}  # without grouping: pieces of itself


def test_labelling_the_primary_labels_only_it(session):
    session.label({"frag0": "anomaly"})
    assert session.labels == {"frag0": "anomaly"}
    top = session.candidates(1)
    assert top["id"][0] == "frag1" and top["members"][0] == "frag0,frag2,frag3"  # the system, by its next member
    session.label({"frag1": "normal"}, members=True)
    assert session.labels == {"frag0": "anomaly", "frag1": "normal", "frag2": "normal", "frag3": "normal"}
    assert not set(session.candidates(20)["id"]) & set(FRAGMENTS)


def test_to_table_system_columns(session):
    t = session.to_table()
    for name in ("system", "system_rank", "system_primary", "system_size"):
        assert name in t.colnames
    rows = {str(i): k for k, i in enumerate(t["id"])}
    assert t["system_primary"][rows["frag0"]] and not t["system_primary"][rows["frag1"]]
    assert t["system_rank"][rows["frag0"]] == 1 and t["system_rank"][rows["frag3"]] == 1
    assert list(t["system_size"][[rows[f] for f in FRAGMENTS]]) == [4, 4, 4, 4]
    assert t["system_size"][rows["iso0"]] == 1
    assert sorted(set(t["system_rank"])) == list(range(1, 10))
    assert t["system_primary"].sum() == 9


def test_no_positions_no_grouping():
    data = np.random.default_rng(0).normal(size=(20, 1, 8, 8))
    s = ActiveLearningSession(CutoutSet.from_arrays(data), classifier=Flat())
    s._scores = np.linspace(0.9, 0.1, 20)
    assert s.systems is None
    assert s.candidates(5).colnames == ["id", "score", "rank"]
    assert list(s.candidates(5)["id"]) == list(s.candidates(5, group=False)["id"])
    assert "system" not in s.to_table().colnames


def test_given_systems():
    cs = crowded_cutouts()
    off = ActiveLearningSession(cs, classifier=Flat(), systems=False)
    assert off.systems is None
    ids = np.arange(len(cs)) // 2  # pairs
    paired = ActiveLearningSession(cs, classifier=Flat(), systems=ids)
    np.testing.assert_array_equal(paired.systems, ids)
    wide = ActiveLearningSession(cs, classifier=Flat(), systems=1 * u.arcsec)
    assert len(set(wide.systems[:4])) == 1
    narrow = ActiveLearningSession(cs, classifier=Flat(), systems={"radius": 0.1 * u.arcsec})
    assert len(set(narrow.systems)) == len(cs)
    cs.table["system"] = ["a"] * 4 + [f"b{k}" for k in range(8)]
    column = ActiveLearningSession(cs, classifier=Flat())  # the table's system column, by default
    assert len(set(column.systems)) == 9
    column._scores = brightness(cs)
    assert list(column.to_table()["system"][:5]) == ["a", "a", "a", "a", "b0"]  # kept as given
    with pytest.raises(InvalidInputError, match="one system id per cutout"):
        ActiveLearningSession(cs, classifier=Flat(), systems=[0, 1])
    with pytest.raises(InvalidInputError, match="names no column"):
        ActiveLearningSession(cs, classifier=Flat(), systems="parent")
    with pytest.raises(InvalidInputError, match="unknown grouping option"):
        ActiveLearningSession(cs, classifier=Flat(), systems={"radious": 1 * u.arcsec})


def test_strategy_functions_with_systems():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    systems = np.array([0, 0, 1, 1, 2])
    np.testing.assert_array_equal(select_top(scores, 5, systems=systems), [0, 2, 4])
    np.testing.assert_array_equal(select_top(scores, 5, exclude=[0], systems=systems), [1, 2, 4])
    np.testing.assert_array_equal(first_per_system([4, 3, 2, 1, 0], systems), [4, 3, 1])
    rows = select_mix(scores, None, 3, systems=systems)
    assert len(set(systems[rows])) == 3
    with pytest.raises(InvalidInputError, match="one integer system id"):
        select_top(scores, 2, systems=[0, 1])
