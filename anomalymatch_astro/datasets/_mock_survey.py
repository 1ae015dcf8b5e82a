"""A deterministic synthetic multi-band imaging survey with injected anomalies.

`make_mock_survey` draws a small sky survey -- stars, bulge+disk and elliptical
galaxies, faint uncatalogued background galaxies, PSF blur and sky noise -- into
one FITS mosaic per band, each band on its OWN pixel grid (a rotated one, a
coarser one ...) with a real celestial TAN WCS, so that any cutout tool has to
reproject.  A few per cent of the catalogued objects are anomalies of four kinds:
strong gravitational lenses, mergers, image artefacts and odd colours.  It also
writes the truth catalogue (ECSV).

Objects are drawn on small local stamps, evaluated in sky coordinates (arcsec
east/north of the object) through each band's WCS, and added into that band's
mosaic; the whole mosaic is then convolved with the band's PSF once.  Stars,
satellite trails and cosmic rays are drawn after the convolution.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError
from ._bands import _band_grids, _default_fwhm, make_bands
from ._recipes import _MAGZERO, _STAR_FRACTION, background_galaxy, catalogued_object, field_object

__all__ = ["MockSurvey", "make_mock_survey", "make_lens_survey", "ANOMALY_KINDS"]

log = logging.getLogger(__name__)

#: The anomaly kinds `make_mock_survey` can inject.
ANOMALY_KINDS = ("lens", "merger", "trail", "colour")


@dataclass
class MockSurvey:
    """A synthetic survey written by `make_mock_survey`: FITS mosaics and a truth catalogue.

    Attributes
    ----------
    images : dict
        ``{band: path}`` of the FITS mosaics, one per band, in band order.
    catalog_path : `pathlib.Path`
        The ECSV truth catalogue.
    catalog : `~astropy.table.Table`
        The truth catalogue: ``id``, ``ra``, ``dec`` (deg), ``kind``, ``is_anomaly``,
        ``mag_<band>``, ``sersic_n``, ``r_eff_arcsec``, ``axis_ratio``, ``pa_deg``, ``detail``.
    bands : tuple of str
        Band names, blue to red.
    reference_band : str
        The band whose pixel grid is the survey's reference grid (the first band).
    pixel_scale : `~astropy.units.Quantity`
        Pixel scale of the reference band.
    directory : `pathlib.Path`
        Where the files are.
    """

    images: dict
    catalog_path: Path
    catalog: Table
    bands: tuple
    reference_band: str
    pixel_scale: u.Quantity
    directory: Path
    meta: dict = field(default_factory=dict)

    @property
    def coords(self):
        """`~astropy.coordinates.SkyCoord` of the catalogued objects."""
        return SkyCoord(self.catalog["ra"], self.catalog["dec"], unit="deg", frame="icrs")

    @property
    def is_anomaly(self):
        """Boolean truth array, one per catalogued object."""
        return np.asarray(self.catalog["is_anomaly"], dtype=bool)

    def wcs(self, band):
        """The celestial `~astropy.wcs.WCS` of ``band``'s mosaic."""
        return WCS(fits.getheader(self.images[band]))


# ----------------------------------------------------------------------------- helpers
def _check_args(n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale):
    if isinstance(bands, str):
        bands = (bands,)
    bands = tuple(str(b) for b in bands)
    if not bands or len(set(bands)) != len(bands):
        msg = f"bands must be a non-empty sequence of unique names, got {bands!r}"
        raise InvalidInputError(msg)
    if int(n_objects) != n_objects or n_objects < 1:
        msg = f"n_objects must be a positive integer, got {n_objects!r}"
        raise InvalidInputError(msg)
    if not 0.0 <= float(anomaly_fraction) < 1.0:
        msg = f"anomaly_fraction must be in [0, 1), got {anomaly_fraction!r}"
        raise InvalidInputError(msg)
    if isinstance(anomaly_kinds, str):
        anomaly_kinds = (anomaly_kinds,)
    anomaly_kinds = tuple(anomaly_kinds)
    unknown = [k for k in anomaly_kinds if k not in ANOMALY_KINDS]
    if unknown or (anomaly_fraction > 0 and not anomaly_kinds):
        msg = f"anomaly_kinds must be chosen from {ANOMALY_KINDS}; got {anomaly_kinds!r}"
        raise InvalidInputError(msg)
    if "colour" in anomaly_kinds and len(bands) < 2:
        msg = "'colour' anomalies need at least two bands; pass more bands or drop 'colour' from anomaly_kinds"
        raise InvalidInputError(msg)
    try:
        pixel_scale = u.Quantity(pixel_scale, u.arcsec)
    except (TypeError, u.UnitsError) as exc:
        msg = f"pixel_scale must be an angle (e.g. 0.2 * u.arcsec), got {pixel_scale!r}"
        raise InvalidInputError(msg) from exc
    if not pixel_scale.isscalar or pixel_scale <= 0:
        msg = f"pixel_scale must be a positive scalar angle, got {pixel_scale!r}"
        raise InvalidInputError(msg)
    return int(n_objects), bands, float(anomaly_fraction), anomaly_kinds, pixel_scale


def _check_options(population, psf, psf_fwhm, n_bands, seed):
    """Check the drawing options; return the PSF FWHM per band (arcsec) and the seed (drawn when None)."""
    if population not in ("mixed", "ellipticals"):
        msg = f"population must be 'mixed' or 'ellipticals', got {population!r}"
        raise InvalidInputError(msg)
    if psf not in ("moffat", "gaussian"):
        msg = f"psf must be 'moffat' or 'gaussian', got {psf!r}"
        raise InvalidInputError(msg)
    if psf_fwhm is None:
        fwhm = _default_fwhm(n_bands)
    else:
        fwhm = np.atleast_1d(u.Quantity(psf_fwhm, u.arcsec).value).astype(float)
        if fwhm.shape != (n_bands,) or np.any(fwhm <= 0):
            msg = f"psf_fwhm must give one positive FWHM per band ({n_bands}), got {psf_fwhm!r}"
            raise InvalidInputError(msg)
    if seed is None:  # draw one, and record it in the catalogue's meta so the survey can be rebuilt
        seed = int(np.random.SeedSequence().entropy % 2**32)
    if int(seed) != seed or seed < 0:
        msg = f"seed must be a non-negative integer or None, got {seed!r}"
        raise InvalidInputError(msg)
    return fwhm, int(seed)


def _layout(rng, n_objects, anomaly_fraction, anomaly_kinds, population, spacing):
    """Who is where: kinds assigned at random on a jittered grid; (kinds, x_ref, y_ref, reference shape)."""
    n_anom = int(round(anomaly_fraction * n_objects))
    n_normal = n_objects - n_anom
    n_star = int(round(_STAR_FRACTION * n_normal)) if population == "mixed" else 0
    kinds = ["star"] * n_star + ["galaxy"] * (n_normal - n_star)
    kinds += [anomaly_kinds[i % len(anomaly_kinds)] for i in range(n_anom)]
    kinds = np.array(kinds, dtype=object)[rng.permutation(n_objects)]
    nx = int(np.ceil(np.sqrt(n_objects)))
    ny = int(np.ceil(n_objects / nx))
    pad = 48 + spacing // 4
    cells = rng.permutation(nx * ny)[:n_objects]
    jitter = rng.uniform(-spacing / 8, spacing / 8, (n_objects, 2))
    x_ref = pad + spacing * (cells % nx) + jitter[:, 0]
    y_ref = pad + spacing * (cells // nx) + jitter[:, 1]
    ref_shape = (2 * pad + spacing * (ny - 1) + 1, 2 * pad + spacing * (nx - 1) + 1)
    return kinds, x_ref, y_ref, ref_shape


def _scattered(rng, n, ref_shape, band_objs):
    """Pixel positions in every band of ``n`` points scattered uniformly over the reference grid."""
    xy = rng.uniform([0, 0], [ref_shape[1] - 1, ref_shape[0] - 1], (n, 2))
    sky = band_objs[0].wcs.pixel_to_world(xy[:, 0], xy[:, 1])
    return [b.wcs.world_to_pixel(sky) for b in band_objs]


def _draw_band(b, k, scene):
    """Draw the whole scene (background, field, catalogued objects) on band ``k``'s arrays."""
    px, py = scene["pix"][k]
    bg_pix, fld_pix = scene["bg_pix"][k], scene["fld_pix"][k]
    for j, comps in enumerate(scene["bg_draws"]):
        b.draw_components(bg_pix[0][j], bg_pix[1][j], comps, k, 2.0)
    for j, (what, thing, extent) in enumerate(scene["fld_draws"]):
        if what == "star":
            b.draw_star(fld_pix[0][j], fld_pix[1][j], thing[k])
        else:
            b.draw_components(fld_pix[0][j], fld_pix[1][j], thing, k, extent)
    for i, (comps, extent, star_flux, artefact) in enumerate(scene["draws"]):
        if comps:
            b.draw_components(px[i], py[i], comps, k, extent)
        if star_flux is not None:
            b.draw_star(px[i], py[i], star_flux[k])
        if artefact is not None and artefact[1] == k:
            if artefact[0] == "trail":
                p = dict(artefact[2])
                p["amplitude"] *= b.sky_sigma
                b.draw_trail(px[i], py[i], **p)
            else:
                b.draw_cosmic_ray(px[i], py[i], np.random.default_rng(artefact[2]))


def _write_band(b, image, path, *, fwhm, psf, seed):
    """Write band image ``image`` with its WCS and provenance to ``path``."""
    hdr = b.header.copy()
    hdr["PSF_FWHM"] = (float(fwhm), "[arcsec] PSF FWHM")
    hdr["PSF_TYPE"] = psf
    hdr["SKYSIG"] = (float(b.sky_sigma), "sky noise per pixel")
    hdr["PIXSCALE"] = (b.scale, "[arcsec/pix]")
    hdr["OBJECT"] = "anomalymatch_astro mock survey"
    hdr["SEED"] = int(seed)
    fits.PrimaryHDU(image, header=hdr).writeto(path, overwrite=True)
    log.info("wrote %s (%d x %d, %.3f arcsec/pix)", path, b.shape[1], b.shape[0], b.scale)


def _catalogue(sky, kinds, rows, bands):
    """The truth catalogue (without its meta)."""
    cat = Table()
    cat["id"] = [f"MS{i + 1:06d}" for i in range(len(kinds))]
    cat["ra"] = sky.ra.deg
    cat["ra"].unit = u.deg
    cat["dec"] = sky.dec.deg
    cat["dec"].unit = u.deg
    cat["kind"] = np.array(kinds, dtype=str)
    cat["is_anomaly"] = np.isin(cat["kind"], ANOMALY_KINDS)
    for k, band in enumerate(bands):
        cat[f"mag_{band}"] = np.array([r["mags"][k] for r in rows])
    cat["sersic_n"] = np.array([r["sersic_n"] for r in rows], dtype=float)
    cat["r_eff_arcsec"] = np.array([r["r_eff"] for r in rows], dtype=float)
    cat["r_eff_arcsec"].unit = u.arcsec
    cat["axis_ratio"] = np.array([r["q"] for r in rows], dtype=float)
    cat["pa_deg"] = np.rad2deg(np.array([r["pa"] for r in rows], dtype=float)) % 180.0
    cat["pa_deg"].unit = u.deg
    cat["detail"] = np.array([r["detail"] for r in rows], dtype=str)
    for col in ("sersic_n", "axis_ratio", "pa_deg", "r_eff_arcsec", *(f"mag_{b}" for b in bands)):
        cat[col] = np.round(cat[col], 4)
    return cat


# ----------------------------------------------------------------------------- public API
def make_mock_survey(
    directory,
    *,
    n_objects=1500,
    bands=("g", "r", "i"),
    anomaly_fraction=0.03,
    anomaly_kinds=ANOMALY_KINDS,
    seed=0,
    pixel_scale=0.2 * u.arcsec,
    center=None,
    psf_fwhm=None,
    psf="moffat",
    sky_sigma=5.0,
    spacing=72,
    rotation=25 * u.deg,
    scale_factor=1.5,
    n_background=None,
    population="mixed",
    n_field=None,
    hard_lens=False,
    prefix="mock",
    progress=True,
):
    """Write a deterministic synthetic multi-band survey with injected anomalies.

    The survey is one FITS mosaic per band plus an ECSV truth catalogue.  The bands
    lie on different pixel grids: the first (reference) band at ``pixel_scale``
    with north up, the second rotated by ``rotation`` through its CD matrix, the
    third at ``scale_factor`` times the pixel scale (later bands alternate), each
    with a small pointing offset -- so that cutting matched multi-band cutouts
    needs reprojection.  Every image has a celestial TAN WCS centred near
    ``center``.

    The sky holds stars (Moffat or Gaussian PSF, colours from blue to red),
    ellipticals (Sersic n = 2.5-5, red), bulge + disk galaxies (some with spiral
    arms, bluer disks), faint uncatalogued background galaxies, PSF blur with a
    band-dependent FWHM and Gaussian sky noise.  Catalogued objects sit on a
    jittered grid ``spacing`` reference pixels apart, so 64-pixel cutouts rarely
    overlap.  A fraction ``anomaly_fraction`` of them are anomalies, shared
    evenly among ``anomaly_kinds``:

    ``"lens"``
        a red elliptical with blue lensed arcs or an Einstein ring (a Sersic source
        behind a singular isothermal sphere, Einstein radius 1.2-2.0").
    ``"merger"``
        two overlapping disk galaxies 1-2.4" apart with a curved tidal tail.
    ``"trail"``
        an image artefact over a normal object in ONE band only: a satellite trail
        (a PSF-wide streak about 12" long through the object) or a cosmic-ray hit
        (a few sharp hot pixels).
    ``"colour"``
        a galaxy with an unusual spectral energy distribution: bright in one band
        only, or far bluer or redder than any normal galaxy.

    Parameters
    ----------
    directory : str or path-like
        Output directory (created if needed); files there with the same names are overwritten.
    n_objects : int, optional
        Number of catalogued objects.
    bands : sequence of str, optional
        Band names, blue to red; the first is the reference band.
    anomaly_fraction : float, optional
        Fraction of catalogued objects that are anomalies (rounded to a whole number).
    anomaly_kinds : sequence of str, optional
        Which kinds to inject, from ``ANOMALY_KINDS``.
    seed : int or None, optional
        Random seed; the same seed gives identical files (None: a fresh seed, recorded
        in the catalogue's ``meta["seed"]``).
    pixel_scale : `~astropy.units.Quantity`, optional
        Pixel scale of the reference band.
    center : `~astropy.coordinates.SkyCoord`, optional
        Field centre (default RA 150.1, Dec 2.2 deg, in the COSMOS field).
    psf_fwhm : sequence of float or `~astropy.units.Quantity`, optional
        PSF FWHM per band (arcsec); default from 0.95" (bluest) to 0.75" (reddest).
    psf : {"moffat", "gaussian"}, optional
        PSF shape (Moffat beta = 3.5).
    sky_sigma : float, optional
        Sky noise per reference-band pixel (counts at zero point 30); coarser
        grids get proportionally more per pixel (same depth per arcsec^2).
    spacing : int, optional
        Grid spacing of the catalogued objects in reference pixels.
    rotation : `~astropy.units.Quantity`, optional
        Rotation of the second band's grid.
    scale_factor : float, optional
        Pixel-scale ratio of the third band to the reference band.
    n_background : int, optional
        Number of faint uncatalogued background galaxies (default ``2 * n_objects``).
    population : {"mixed", "ellipticals"}, optional
        What the catalogued normal objects are: ``"mixed"`` (20% stars, ellipticals,
        disk and spiral galaxies) or ``"ellipticals"`` (a lens-search target list:
        every normal object is a bright round red elliptical drawn exactly like the
        lens galaxies, so only the arcs tell lenses apart; stars and disk galaxies
        then appear as uncatalogued field objects).
    n_field : int, optional
        Number of uncatalogued field stars and galaxies scattered at random
        (default ``n_objects // 2`` for ``population="ellipticals"``, else 0).
    hard_lens : bool, optional
        Draw lenses as faint thin arcs (see `make_lens_survey`) instead of bright ones.
    prefix : str, optional
        File name prefix: ``<prefix>_<band>.fits`` and ``<prefix>_catalog.ecsv``.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    MockSurvey

    Examples
    --------
    >>> import tempfile
    >>> from anomalymatch_astro.datasets import make_mock_survey
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     survey = make_mock_survey(tmp, n_objects=20, anomaly_fraction=0.2, seed=1)
    ...     print(survey.bands, len(survey.catalog), int(survey.catalog["is_anomaly"].sum()))
    ('g', 'r', 'i') 20 4
    """
    n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale = _check_args(
        n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale
    )
    n_bands = len(bands)
    fwhm, seed = _check_options(population, psf, psf_fwhm, n_bands, seed)
    center = SkyCoord(150.1, 2.2, unit="deg") if center is None else center
    center = center.icrs
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scale_arcsec = float(pixel_scale.to_value(u.arcsec))

    kinds, x_ref, y_ref, ref_shape = _layout(rng, n_objects, anomaly_fraction, anomaly_kinds, population, spacing)
    grids = _band_grids(
        bands,
        ref_shape,
        (center.ra.deg, center.dec.deg),
        scale_arcsec / 3600.0,
        float(u.Quantity(rotation, u.deg).value),
        float(scale_factor),
        pad=2.0,
    )
    band_objs = make_bands(grids, fwhm, psf, sky_sigma, scale_arcsec)
    sky = band_objs[0].wcs.pixel_to_world(x_ref, y_ref)
    scene = dict(pix=[b.wcs.world_to_pixel(sky) for b in band_objs], draws=[])

    # --- catalogued objects
    rows = []
    for i in progress_bar(range(n_objects), total=n_objects, desc="mock survey: objects", progress=progress):
        draw, info = catalogued_object(kinds[i], rng, bands, population=population, hard_lens=hard_lens)
        scene["draws"].append(draw)
        rows.append(info)

    # --- faint uncatalogued background galaxies
    n_bg = 2 * n_objects if n_background is None else int(n_background)
    scene["bg_pix"] = _scattered(rng, n_bg, ref_shape, band_objs)
    scene["bg_draws"] = [background_galaxy(rng, n_bands) for _ in range(n_bg)]

    # --- uncatalogued field stars and galaxies (when the catalogue is a target list)
    n_fld = (n_objects // 2 if population == "ellipticals" else 0) if n_field is None else int(n_field)
    scene["fld_pix"] = _scattered(rng, n_fld, ref_shape, band_objs)
    scene["fld_draws"] = [field_object(rng, n_bands) for _ in range(n_fld)]

    # --- draw and write every band
    files = {}
    for k, band in enumerate(bands):
        b = band_objs[k]
        _draw_band(b, k, scene)
        image = b.finish(np.random.default_rng([seed, 7919, k]))
        files[band] = directory / f"{prefix}_{band}.fits"
        _write_band(b, image, files[band], fwhm=fwhm[k], psf=psf, seed=seed)
        b.smooth = b.sharp = None

    # --- catalogue
    cat = _catalogue(sky, kinds, rows, bands)
    meta = dict(
        generator="anomalymatch_astro.datasets.make_mock_survey",
        seed=int(seed),
        bands=list(bands),
        population=population,
        reference_band=bands[0],
        pixel_scale_arcsec=scale_arcsec,
        magzero=_MAGZERO,
        anomaly_fraction=anomaly_fraction,
        anomaly_kinds=list(anomaly_kinds),
        hard_lens=bool(hard_lens),
        psf=psf,
        psf_fwhm_arcsec=[float(f) for f in fwhm],
        images={b: os.fspath(p.name) for b, p in files.items()},
    )
    cat.meta.update(meta)
    cat_path = directory / f"{prefix}_catalog.ecsv"
    cat.write(cat_path, format="ascii.ecsv", overwrite=True)
    return MockSurvey(
        images=files,
        catalog_path=cat_path,
        catalog=cat,
        bands=bands,
        reference_band=bands[0],
        pixel_scale=pixel_scale,
        directory=directory,
        meta=meta,
    )


def make_lens_survey(directory, *, n_objects=1500, lens_fraction=0.01, seed=0, **kwargs):
    """Write the hard benchmark survey: faint, thin lensing arcs at 1% on a realistic sky.

    The same sky as `make_mock_survey` (stars, galaxies, faint background, PSF,
    noise, bands on different grids), but catalogued like a lens search: the
    catalogue is a target list of bright, round, red ellipticals (as a real search
    pre-selects massive early-type galaxies), and the anomalies are the 1% of
    targets that are strong lenses.  Lens galaxies are drawn exactly like the
    other targets, so only the arcs tell them apart, and the arcs are faint and
    thin: Einstein radius 0.8-1.5", source half-light radius 0.05-0.1", source
    3.2-4.2 magnitudes fainter than the lens galaxy and offset so that it forms
    arcs rather than full rings.  The arcs are a few times the sky noise per pixel
    and sit inside the lens galaxy's light -- the open problem of the benchmarks.
    Stars and disk galaxies are present as uncatalogued field objects.

    Parameters
    ----------
    directory : str or path-like
        Output directory.
    n_objects : int, optional
        Number of catalogued targets.
    lens_fraction : float, optional
        Fraction of them that are lenses.
    seed : int, optional
        Random seed.
    **kwargs
        Any other `make_mock_survey` argument (bands, pixel_scale, prefix,
        ``population="mixed"`` for a catalogue of every kind of object ...).

    Returns
    -------
    MockSurvey
    """
    kwargs.setdefault("prefix", "lens")
    kwargs.setdefault("population", "ellipticals")
    return make_mock_survey(
        directory,
        n_objects=n_objects,
        anomaly_fraction=lens_fraction,
        anomaly_kinds=("lens",),
        seed=seed,
        hard_lens=True,
        **kwargs,
    )
