"""mask_neighbours: a bright neighbour star with spikes next to a faint object."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet, make_cutouts
from anomalymatch_astro.cutouts import mask_neighbours
from anomalymatch_astro.utils.exceptions import InvalidInputError

NOISE = 1.0
FAINT = (60.0, 60.0)  # faint galaxy at the cutout centre
STAR = (72.0, 62.0)  # bright star 12 px away, inside the 41 px cutout


def _wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.16, -27.78]
    wcs.wcs.crpix = [60.5, 60.5]
    wcs.wcs.cdelt = [-0.13 / 3600, 0.13 / 3600]
    return wcs


def _gauss(shape, x0, y0, sigma, flux):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


def _star(shape):
    """A bright star with four diffraction spikes, 4 px wide: its own image (no noise)."""
    star = _gauss(shape, *STAR, 1.5, 5e4)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    dx, dy = xx - STAR[0], yy - STAR[1]
    spike = 200.0 * np.exp(-np.hypot(dx, dy) / 6.0)
    star += np.where((np.abs(dx) <= 0.5) | (np.abs(dy) <= 0.5), spike, 0.0)
    return star


@pytest.fixture(scope="module")
def field():
    shape = (120, 120)
    rng = np.random.default_rng(3)
    galaxy = _gauss(shape, *FAINT, 2.5, 300.0)
    star = _star(shape)
    image = (galaxy + star + rng.normal(0, NOISE, shape)).astype(np.float32)
    wcs = _wcs()
    catalog = QTable({"id": ["faint", "star"]})
    catalog["coord"] = wcs.pixel_to_world(np.array([FAINT[0], STAR[0]]), np.array([FAINT[1], STAR[1]]))
    catalog["semimajor_sigma"] = [2.5, 1.5] * u.pix
    catalog["semiminor_sigma"] = [2.5, 1.5] * u.pix
    catalog["orientation"] = [0.0, 0.0] * u.deg
    cs = make_cutouts({"r": (image, wcs), "i": (image * 1.5, wcs)}, catalog[:1], 41, progress=False)
    return {"image": image, "wcs": wcs, "catalog": catalog, "cutouts": cs, "star": star, "shape": shape}


def _star_in_cutout(field):
    cs = field["cutouts"]
    x0, y0 = int(cs.table["x_origin"][0]), int(cs.table["y_origin"][0])
    return field["star"][y0 : y0 + 41, x0 : x0 + 41]


def test_shapes_remove_the_neighbour_keep_the_centre(field):
    cs = field["cutouts"]
    masked, masks = mask_neighbours(cs, field["catalog"], factor=3.0, dilate=3, progress=False, return_masks=True)
    before, after = cs.data[0, 0], masked.data[0, 0]
    region = _star_in_cutout(field) > 3 * NOISE  # where the star (and its spikes) is brighter than 3 sigma
    assert region.sum() > 20
    # the star dominated those pixels; after masking they look like background
    assert np.mean(before[region]) > 100
    assert abs(np.mean(after[masks[0]])) < 0.5
    assert 0.6 < np.std(after[masks[0]]) < 1.5
    # the spike beyond the ellipse is mostly gone too (dilated mask), the central object untouched bit for bit
    yy, xx = np.mgrid[0:41, 0:41]
    centre = np.hypot(xx - 20, yy - 20) <= 3.0 * 2.5  # the faint object's own ellipse (factor x semi-axis)
    np.testing.assert_array_equal(after[centre], before[centre])
    assert not (masks[0] & centre).any()
    # pixels outside the mask are untouched, in every band
    np.testing.assert_array_equal(masked.data[:, :, ~masks[0]], cs.data[:, :, ~masks[0]])
    # ids, bands, coords, WCS and meta carried over
    assert masked.ids.tolist() == cs.ids.tolist() and masked.bands == cs.bands
    assert masked.coords.separation(cs.coords).max() < 1e-6 * u.arcsec
    np.testing.assert_allclose(masked.wcs(0).wcs.crpix, cs.wcs(0).wcs.crpix)
    assert masked.meta["neighbour_mask"]["mode"] == "noise"
    assert masked.table["n_masked"][0] == masks[0].sum()


def test_flux_fraction_of_the_neighbour_drops(field):
    cs = field["cutouts"]
    masked = mask_neighbours(cs, field["catalog"], factor=3.0, dilate=3, progress=False)
    star = _star_in_cutout(field)
    total_before = np.sum(cs.data[0, 0])
    total_after = np.sum(masked.data[0, 0])
    assert star.sum() / total_before > 0.9  # the neighbour makes the cutout
    assert total_after < 0.2 * total_before


def test_same_seed_same_noise(field):
    cs = field["cutouts"]
    a = mask_neighbours(cs, field["catalog"], seed=1, progress=False)
    b = mask_neighbours(cs, field["catalog"], seed=1, progress=False)
    c = mask_neighbours(cs, field["catalog"], seed=2, progress=False)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


@pytest.mark.parametrize(("mode", "check"), [("nan", np.isnan), ("zero", lambda v: v == 0)])
def test_other_modes(field, mode, check):
    masked, masks = mask_neighbours(field["cutouts"], field["catalog"], mode=mode, progress=False, return_masks=True)
    assert masks[0].sum() > 0
    assert check(masked.data[0][:, masks[0]]).all()


def test_median_mode(field):
    masked, masks = mask_neighbours(
        field["cutouts"], field["catalog"], mode="median", progress=False, return_masks=True
    )
    values = masked.data[0, 0][masks[0]]
    assert np.ptp(values) == 0 and abs(values[0]) < 0.3


def test_segmentation_map(field):
    seg = np.zeros(field["shape"], dtype=np.int32)
    yy, xx = np.mgrid[0 : field["shape"][0], 0 : field["shape"][1]]
    seg[np.hypot(xx - FAINT[0], yy - FAINT[1]) <= 6] = 1
    seg[_star(field["shape"]) > 3 * NOISE] = 2  # the star's segment includes its spikes
    masked, masks = mask_neighbours(field["cutouts"], segmentation=seg, progress=False, return_masks=True)
    assert masked.meta["neighbour_mask"]["keep_blended"] is False
    # the star's spike touches the faint object's segment (one blend), but the star is far over
    # blend_contrast times brighter: masked with keep_blended too, kept only without a contrast limit
    _, blend = mask_neighbours(field["cutouts"], segmentation=seg, keep_blended=True, progress=False, return_masks=True)
    np.testing.assert_array_equal(blend, masks)
    kept, kept_masks = mask_neighbours(
        field["cutouts"], segmentation=seg, keep_blended=True, blend_contrast=np.inf, progress=False, return_masks=True
    )
    assert not kept_masks[0].any()
    np.testing.assert_array_equal(kept.data, field["cutouts"].data)
    x0, y0 = int(field["cutouts"].table["x_origin"][0]), int(field["cutouts"].table["y_origin"][0])
    block = seg[y0 : y0 + 41, x0 : x0 + 41]
    np.testing.assert_array_equal(masks[0], block == 2)
    own = block == 1
    np.testing.assert_array_equal(masked.data[0, :, own], field["cutouts"].data[0, :, own])
    assert abs(np.mean(masked.data[0, 0][masks[0]])) < 0.5
    # the same map given with its WCS explicitly, read through the WCS
    again = mask_neighbours(field["cutouts"], segmentation=seg, wcs=field["wcs"], progress=False)
    np.testing.assert_array_equal(again.data, masked.data)


def test_keep_blended_keeps_the_touching_pieces_of_the_own_blend(field):
    """A galaxy deblended into a chain of touching segments keeps them; a separate neighbour is masked."""
    shape = field["shape"]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    seg = np.zeros(shape, dtype=np.int32)
    seg[np.hypot(xx - FAINT[0], yy - FAINT[1]) <= 4] = 1  # the central piece
    seg[(np.hypot(xx - (FAINT[0] - 7), yy - FAINT[1]) <= 4) & (seg == 0)] = 3  # its deblended sibling, touching
    seg[(np.hypot(xx - (FAINT[0] - 14), yy - FAINT[1]) <= 4) & (seg == 0)] = 4  # touching the sibling only
    seg[np.hypot(xx - STAR[0], yy - STAR[1]) <= 3] = 2  # a separate neighbour (core only, no spikes)
    x0, y0 = int(field["cutouts"].table["x_origin"][0]), int(field["cutouts"].table["y_origin"][0])
    block = seg[y0 : y0 + 41, x0 : x0 + 41]
    kept, masks = mask_neighbours(
        field["cutouts"], segmentation=seg, keep_blended=True, progress=False, return_masks=True
    )
    np.testing.assert_array_equal(masks[0], block == 2)
    assert kept.meta["neighbour_mask"]["keep_blended"] is True
    _, all_masks = mask_neighbours(field["cutouts"], segmentation=seg, progress=False, return_masks=True)
    np.testing.assert_array_equal(all_masks[0], np.isin(block, [2, 3, 4]))
    # a touching piece over blend_contrast times brighter than the centre is masked, and so is what lies beyond it
    bright = field["cutouts"].data.copy()
    bright[0, :, block == 3] += 1e4
    bright_set = CutoutSet(bright, field["cutouts"].table, field["cutouts"].bands, meta=field["cutouts"].meta)
    _, cut = mask_neighbours(bright_set, segmentation=seg, keep_blended=True, progress=False, return_masks=True)
    np.testing.assert_array_equal(cut[0], np.isin(block, [2, 3, 4]))
    # the catalogue's entry of a kept piece does not mask it either; the neighbour's ellipse still does
    catalog = QTable(field["catalog"], copy=True)
    sibling = field["wcs"].pixel_to_world(FAINT[0] - 7, FAINT[1])
    catalog.add_row({"id": "sibling", "coord": sibling, "semimajor_sigma": 2 * u.pix, "semiminor_sigma": 2 * u.pix})
    _, both = mask_neighbours(
        field["cutouts"], catalog, segmentation=seg, keep_blended=True, progress=False, return_masks=True
    )
    assert not (both[0] & (block == 3)).any()
    assert both[0][int(STAR[1]) - y0, int(STAR[0]) - x0]
    _, none_kept = mask_neighbours(field["cutouts"], catalog, segmentation=seg, progress=False, return_masks=True)
    assert (none_kept[0] & (block == 3)).any()  # what the central object's own ellipse leaves of it


def test_saturation_stops_a_blend_at_a_clipped_star(field):
    """A display-clipped star passes the contrast test; its saturated pixels mask it all the same."""
    seg = np.zeros(field["shape"], dtype=np.int32)
    yy, xx = np.mgrid[0 : field["shape"][0], 0 : field["shape"][1]]
    seg[np.hypot(xx - FAINT[0], yy - FAINT[1]) <= 6] = 1
    seg[(_star(field["shape"]) > 3 * NOISE) & (seg == 0)] = 2  # touches the faint object through its spike
    cs = field["cutouts"]
    levels = np.array([50.0, 75.0])  # r, i: an 8-bit-like ceiling under the star's peak
    clipped = CutoutSet(np.minimum(cs.data, levels[None, :, None, None]), cs.table, cs.bands, meta=cs.meta)
    x0, y0 = int(cs.table["x_origin"][0]), int(cs.table["y_origin"][0])
    star = seg[y0 : y0 + 41, x0 : x0 + 41] == 2
    # clipped at 50 + 75, the star is under 10 times the faint galaxy's peak (about 19): the blend keeps it
    _, kept = mask_neighbours(clipped, segmentation=seg, keep_blended=True, progress=False, return_masks=True)
    assert not kept[0].any()
    masked, masks = mask_neighbours(
        clipped, segmentation=seg, keep_blended=True, saturation=levels, progress=False, return_masks=True
    )
    np.testing.assert_array_equal(masks[0], star)
    assert masked.meta["neighbour_mask"]["saturation"] == [50.0, 75.0]
    # one level for every band; an unclipped image has no pixel at the level, so nothing changes
    _, one = mask_neighbours(
        clipped, segmentation=seg, keep_blended=True, saturation=50.0, progress=False, return_masks=True
    )
    np.testing.assert_array_equal(one[0], star)
    _, high = mask_neighbours(
        clipped, segmentation=seg, keep_blended=True, saturation=1e9, progress=False, return_masks=True
    )
    assert not high[0].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"saturation": 50.0}, "keep_blended=True only"),
        ({"saturation": [1.0, 2.0, 3.0], "keep_blended": True}, "one per band"),
        ({"saturation": np.nan, "keep_blended": True}, "finite"),
        ({"saturation": "high", "keep_blended": True}, "a number"),
    ],
)
def test_bad_saturation(field, kwargs, match):
    seg = np.zeros(field["shape"], dtype=np.int32)
    with pytest.raises(InvalidInputError, match=match):
        mask_neighbours(field["cutouts"], segmentation=seg, progress=False, **kwargs)


def test_radius_discs_and_own_catalogue(field):
    # no shapes: discs; the default catalogue is the cutouts' own table
    catalog = field["catalog"]["id", "coord"]
    masked, masks = mask_neighbours(field["cutouts"], catalog, radius=6, progress=False, return_masks=True)
    x0, y0 = int(field["cutouts"].table["x_origin"][0]), int(field["cutouts"].table["y_origin"][0])
    assert masks[0][int(STAR[1]) - y0, int(STAR[0]) - x0]
    assert masks[0].sum() == pytest.approx(np.pi * 36, rel=0.15)
    alone = mask_neighbours(field["cutouts"], progress=False)  # only itself in its catalogue
    np.testing.assert_array_equal(alone.data, field["cutouts"].data)
    assert alone.table["n_masked"].tolist() == [0]


def test_nan_pixels(field):
    cs = field["cutouts"]
    data = cs.data.copy()
    data[0, :, :, :5] = np.nan  # e.g. the edge of the image
    data[0, :, 30:33, 30:33] = np.nan
    nan_set = CutoutSet(data, cs.table, cs.bands, meta=cs.meta)
    masked, masks = mask_neighbours(nan_set, field["catalog"], dilate=3, progress=False, return_masks=True)
    np.testing.assert_array_equal(np.isnan(masked.data), np.isnan(data))  # NaN stay NaN, nothing new
    assert np.isfinite(masked.data[0][:, masks[0] & np.isfinite(data[0, 0])]).all()


def test_errors(field):
    plain = CutoutSet.from_arrays(np.zeros((1, 1, 8, 8)), coords=SkyCoord([1.0], [2.0], unit="deg"))
    with pytest.raises(InvalidInputError, match="WCS"):
        mask_neighbours(plain, progress=False)
    with pytest.raises(InvalidInputError, match="mode"):
        mask_neighbours(field["cutouts"], mode="blur", progress=False)
    with pytest.raises(InvalidInputError, match="integer"):
        mask_neighbours(field["cutouts"], segmentation=np.zeros((4, 4)), progress=False)
    with pytest.raises(InvalidInputError, match="shapes"):
        mask_neighbours(field["cutouts"], field["catalog"], shapes=("a", "b", "theta"), progress=False)
