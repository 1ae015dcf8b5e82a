"""archives.mine through the HiPS route (hips2fits), offline: a recorded-style server renders the mosaic."""

import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

pytest.importorskip("mocpy")
pytest.importorskip("astroquery")
pytest.importorskip("reproject")
requests_mock = pytest.importorskip("requests_mock")

from anomalymatch_astro.archives import VOSurvey, mine, mining_status  # noqa: E402

from . import test_mining as _shared  # noqa: E402
from .test_mining import REGION, SIZE, MeanScorer  # noqa: E402

mosaic = _shared.mosaic
reference = _shared.reference
survey = _shared.survey

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

SERVER = "http://hips2fits.example.invalid/hips-image-services/hips2fits"


class HiPSWithCatalog(VOSurvey):
    """HiPS images from a hips2fits service, sources from a local catalogue (no TAP in this test)."""

    def __init__(self, local, **kwargs):
        super().__init__(SERVER, hips=True, **kwargs)
        self.local = local

    def cell_sources(self, center, radius):
        return self.local.cell_sources(center, radius)


def _renderer(module):
    """A hips2fits stand-in: the requested TAN image, resampled from the whole mosaic of the band."""
    from reproject import reproject_interp

    sources = module.make_sources()
    bands = {b: (module.render(sources, b), module.mosaic_wcs()) for b in module.BANDS}

    def answer(request, context):
        q = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        assert q["projection"] == "TAN" and q["format"] == "fits"
        width, height, fov = int(q["width"]), int(q["height"]), float(q["fov"])
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [float(q["ra"]), float(q["dec"])]
        wcs.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
        scale = fov / max(width, height)
        wcs.wcs.cdelt = [-scale, scale]
        pixels, _ = reproject_interp(bands[q["hips"].rsplit("/", 1)[-1]], wcs, shape_out=(height, width))
        buf = io.BytesIO()
        fits.PrimaryHDU(pixels.astype(np.float32), header=wcs.to_header()).writeto(buf)
        return buf.getvalue()

    return answer


def test_mining_through_hips_finds_the_same_sources(mosaic, survey, reference, tmp_path):
    module = mosaic[0]
    hips = HiPSWithCatalog(
        survey,
        bands={b: f"AMMOSAIC/{b}" for b in module.BANDS},
        pixel_scale=module.PIXEL_SCALE_ARCSEC * u.arcsec,
        image_size=0.3 * u.deg,
        cache_dir=tmp_path / "cache",
        retries=0,
        backoff=0,
    )
    with requests_mock.Mocker() as m:
        m.get(SERVER, content=_renderer(module))
        result = mine(
            hips,
            REGION,
            scorer=MeanScorer(),
            workdir=tmp_path / "wd",
            size=SIZE,
            order=reference.order,
            scheduler="synchronous",
            progress=False,
        )
        asked = [r for r in m.request_history if r.url.startswith(SERVER)]
    _, mocs = mining_status(result.workdir)
    _, ref_mocs = mining_status(reference.workdir)
    # every cell meets the all-sky HiPS; the cells beyond the mosaic hold no catalogued source
    assert mocs["failed"].empty()
    assert ref_mocs["done"].difference(mocs["done"]).empty()
    assert len(asked) == len(module.BANDS) * result.ran
    ref, got = _shared.catalog_rows(reference), _shared.catalog_rows(result)
    assert set(got) == set(ref)  # the same sources, cut from HiPS images instead of the tiles
    diff = np.array([got[k] - ref[k] for k in ref])
    assert np.median(np.abs(diff)) < 0.05 * np.std(list(ref.values()))  # resampled pixels, the same cutouts
    assert set(np.asarray(result.top["method_r"])) == {"hips"}
