"""The object recipes of the mock survey: what each kind of object is made of.

An object is a list of components, each ``(profile_name, params, flux per band,
normalisation)`` with normalisation ``"sum"`` (the stamp is rescaled to the flux) or
``"area"`` (the profile is per arcsec^2, so that flux is conserved through lensing
magnification), plus a truth row (Sersic index, size, axis ratio, position angle,
magnitudes, detail).  Every recipe draws from the generator it is given, in a fixed
order, so that the same seed gives the same survey.
"""

import numpy as np

__all__ = []

#: AB-like zero point of the pixel values.
_MAGZERO = 30.0
#: Fraction of the normal catalogued objects (and of the field objects) that are stars.
_STAR_FRACTION = 0.2


def _mags_from_colour(m0, c, n_bands, scatter, rng):
    """Band magnitudes from a mid-band magnitude and a colour per band step (red if c > 0)."""
    t = np.arange(n_bands) - (n_bands - 1) / 2.0
    return m0 - c * t + scatter * rng.standard_normal(n_bands)


def _flux(mag):
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - _MAGZERO))


def _size_for_mag(m0, base, rng, spread=0.25):
    return base * 10.0 ** (-0.12 * (m0 - 21.0)) * 10.0 ** (spread * rng.uniform(-1, 1))


# ----------------------------------------------------------------------------- object recipes
# A component is (profile_name, params, flux per band, normalisation) with normalisation
# "sum" (the stamp is rescaled to the flux) or "area" (profile is per arcsec^2, flux conserved
# through lensing magnification).
def _normal_galaxy(rng, n_bands, m0, *, kind=None):
    """A normal galaxy: an elliptical or a bulge+disk (some with spiral arms)."""
    if kind is None:
        kind = "elliptical" if rng.random() < 0.35 else ("spiral" if rng.random() < 0.4 else "disk")
    pa = rng.uniform(0, np.pi)
    if kind == "elliptical":
        n = float(np.round(rng.uniform(2.5, 5.0), 1))
        r_e = _size_for_mag(m0, 0.7, rng)
        q = rng.uniform(0.5, 1.0)
        mags = _mags_from_colour(m0, rng.normal(0.55, 0.06), n_bands, 0.03, rng)
        comps = [("sersic", dict(n=n, r_eff=r_e, q=q, pa=pa), _flux(mags), "sum")]
        return comps, dict(sersic_n=n, r_eff=r_e, q=q, pa=pa, mags=mags, detail=kind)
    r_d = _size_for_mag(m0, 1.1, rng)
    q = rng.uniform(0.25, 1.0)
    bt = rng.uniform(0.1, 0.45)
    mag_tot = _mags_from_colour(m0, rng.normal(0.3, 0.08), n_bands, 0.03, rng)
    # bulge redder than disk at fixed total colour
    t = np.arange(n_bands) - (n_bands - 1) / 2.0
    f_tot = _flux(mag_tot)
    f_bulge = f_tot * bt * 10.0 ** (0.4 * 0.15 * t)
    f_disk = np.clip(f_tot - f_bulge, 0.05 * f_tot, None)
    bulge_params = dict(n=4.0, r_eff=rng.uniform(0.2, 0.4) * r_d, q=min(1.0, q + 0.3), pa=pa)
    bulge = ("sersic", bulge_params, f_bulge, "sum")
    if kind == "spiral":
        disk = (
            "spiral",
            dict(
                r_eff=r_d,
                q=q,
                pa=pa,
                n_arms=int(rng.choice([2, 2, 3])),
                pitch=rng.uniform(0.25, 0.45),
                amplitude=rng.uniform(0.5, 0.9),
                phase=rng.uniform(0, 2 * np.pi),
            ),
            f_disk,
            "sum",
        )
    else:
        disk = ("sersic", dict(n=1.0, r_eff=r_d, q=q, pa=pa), f_disk, "sum")
    mags = _MAGZERO - 2.5 * np.log10(f_bulge + f_disk)
    return [bulge, disk], dict(sersic_n=1.0, r_eff=r_d, q=q, pa=pa, mags=mags, detail=kind)


def _deflector(rng, n_bands):
    """A bright, round, red elliptical: a lens galaxy, or a lens-like normal target."""
    m0 = rng.uniform(19.0, 21.0)
    comps, info = _normal_galaxy(rng, n_bands, m0, kind="elliptical")
    info["q"] = comps[0][1]["q"] = rng.uniform(0.7, 1.0)
    return m0, comps, info


def _lens(rng, n_bands, *, hard):
    m0, comps, info = _deflector(rng, n_bands)
    if hard:
        theta_e = rng.uniform(0.8, 1.5)
        src_r = rng.uniform(0.05, 0.1)
        src_off = rng.uniform(0.3, 0.7) * theta_e
        src_m = m0 + rng.uniform(3.2, 4.2)
    else:
        theta_e = rng.uniform(1.2, 2.0)
        src_r = rng.uniform(0.1, 0.25)
        src_off = rng.uniform(0.0, 0.5) * theta_e
        src_m = m0 + rng.uniform(2.3, 3.0)
    phi = rng.uniform(0, 2 * np.pi)
    src_mags = _mags_from_colour(src_m, rng.normal(-0.35, 0.08), n_bands, 0.03, rng)  # blue source
    src = (
        "lensed",
        dict(
            theta_e=theta_e,
            src_x=src_off * np.cos(phi),
            src_y=src_off * np.sin(phi),
            n=1.0,
            r_eff=src_r,
            q=rng.uniform(0.5, 1.0),
            pa=rng.uniform(0, np.pi),
        ),
        _flux(src_mags),
        "area",
    )
    ring = src_off < 0.15 * theta_e
    info["detail"] = f"{'hard_' if hard else ''}sis_{'ring' if ring else 'arc'}"
    info["extent"] = theta_e + 1.5
    return [*comps, src], info


def _merger(rng, n_bands):
    m0 = rng.uniform(19.5, 21.5)
    sep = rng.uniform(1.0, 2.4)
    phi = rng.uniform(0, 2 * np.pi)
    f2 = rng.uniform(0.3, 1.0)  # flux ratio secondary/primary
    d1 = np.array([np.cos(phi), np.sin(phi)]) * sep * f2 / (1 + f2)  # flux-weighted centre at 0
    d2 = -np.array([np.cos(phi), np.sin(phi)]) * sep / (1 + f2)
    comps = []
    infos = []
    for d, m in ((d1, m0 + 2.5 * np.log10(1 + f2)), (d2, m0 + 2.5 * np.log10(1 + f2) - 2.5 * np.log10(f2))):
        c, info = _normal_galaxy(rng, n_bands, m, kind=rng.choice(["disk", "spiral"]))
        for comp in c:
            comp[1]["_dx"], comp[1]["_dy"] = d
        comps.extend(c)
        infos.append(info)
    # a curved tidal tail leaving the primary on the side away from the secondary
    start = d1
    direction = -np.array([np.cos(phi), np.sin(phi)])
    perp = np.array([-direction[1], direction[0]]) * rng.choice([-1, 1])
    length = rng.uniform(1.5, 3.0)
    s = np.linspace(0.2, 1.0, 12)
    path = s[:, None] * (-direction)[None, :] + 0.8 * s[:, None] ** 2 * perp[None, :]
    pts = start[None, :] + length * path
    tail_mags = _mags_from_colour(m0 + rng.uniform(1.2, 2.0), 0.15, n_bands, 0.03, rng)
    comps.append(
        ("blobs", dict(centres=pts, sigma=rng.uniform(0.2, 0.35), weights=np.exp(-1.5 * s)), _flux(tail_mags), "sum")
    )
    flux = sum(c[2] for c in comps)
    info = dict(infos[0])
    info["mags"] = _MAGZERO - 2.5 * np.log10(flux)
    info["detail"] = "merger"
    info["extent"] = sep + length + 2.0
    return comps, info


def _colour_anomaly(rng, n_bands):
    m0 = rng.uniform(19.5, 22.0)
    comps, info = _normal_galaxy(rng, n_bands, m0)
    choice = rng.integers(3)
    if choice == 0:
        k = int(rng.integers(n_bands))
        mags = np.full(n_bands, m0 + rng.uniform(2.5, 3.5))
        mags[k] = m0
        detail = f"one_band_{k}"
    elif choice == 1:
        mags = _mags_from_colour(m0, rng.uniform(-1.3, -0.9), n_bands, 0.03, rng)
        detail = "extreme_blue"
    else:
        mags = _mags_from_colour(m0, rng.uniform(1.4, 1.9), n_bands, 0.03, rng)
        detail = "extreme_red"
    total = sum(c[2] for c in comps)
    new = _flux(mags)
    comps = [(c[0], c[1], c[2] / total * new, c[3]) for c in comps]
    info["mags"] = mags
    info["detail"] = detail
    return comps, info


def _artefact(rng, bands):
    """An image artefact in one band: ``(("trail" | "cosmic_ray", band index, params | seed), detail)``."""
    kb = int(rng.integers(len(bands)))
    if rng.random() < 0.65:
        params = dict(
            offset=rng.uniform(-1.0, 1.0),
            angle=rng.uniform(0, np.pi),
            half_length=rng.uniform(5.5, 6.5),
            amplitude=rng.uniform(4.0, 12.0),
        )
        return ("trail", kb, params), f"satellite_trail_{bands[kb]}"
    return ("cosmic_ray", kb, int(rng.integers(2**31))), f"cosmic_ray_{bands[kb]}"


def catalogued_object(kind, rng, bands, *, population, hard_lens):
    """Draw one catalogued object of ``kind``.

    Returns
    -------
    draw : tuple
        ``(components, extent in arcsec (at most 10), star flux per band or None, artefact or None)``.
    info : dict
        The object's truth row.
    """
    n_bands = len(bands)
    artefact = None
    star_flux = None
    comps = []
    extent = 4.0
    if kind == "star" or (kind == "trail" and rng.random() < 0.3):
        m0 = rng.uniform(17.0, 23.0)
        c = rng.uniform(-0.3, 0.9)
        mags = _mags_from_colour(m0, c, n_bands, 0.02, rng)
        star_flux = _flux(mags)
        info = dict(sersic_n=np.nan, r_eff=0.0, q=1.0, pa=0.0, mags=mags, detail="star")
    elif kind in ("galaxy", "trail"):
        if population == "ellipticals":
            comps, info = _deflector(rng, n_bands)[1:]
        else:
            comps, info = _normal_galaxy(rng, n_bands, rng.uniform(19.0, 23.0))
        extent = 4.0 * info["r_eff"] + 1.5
    elif kind == "lens":
        comps, info = _lens(rng, n_bands, hard=hard_lens)
        extent = info.pop("extent")
    elif kind == "merger":
        comps, info = _merger(rng, n_bands)
        extent = info.pop("extent")
    elif kind == "colour":
        comps, info = _colour_anomaly(rng, n_bands)
        extent = 4.0 * info["r_eff"] + 1.5
    if kind == "trail":
        artefact, info["detail"] = _artefact(rng, bands)
    if info["detail"].startswith("one_band_"):
        info["detail"] = f"one_band_{bands[int(info['detail'][9:])]}"
    return (comps, min(extent, 10.0), star_flux, artefact), info


def background_galaxy(rng, n_bands):
    """A faint uncatalogued background galaxy: its components."""
    m0 = rng.uniform(23.5, 26.0)
    mags = _mags_from_colour(m0, rng.uniform(0.0, 0.6), n_bands, 0.05, rng)
    r_e = rng.uniform(0.15, 0.5)
    return [
        (
            "sersic",
            dict(
                n=float(rng.choice([1.0, 1.5, 2.5])),
                r_eff=r_e,
                q=rng.uniform(0.3, 1.0),
                pa=rng.uniform(0, np.pi),
            ),
            _flux(mags),
            "sum",
        )
    ]


def field_object(rng, n_bands):
    """An uncatalogued field star or galaxy: ``("star", fluxes, 0.0)`` or ``("galaxy", components, extent)``."""
    if rng.random() < _STAR_FRACTION:
        mags = _mags_from_colour(rng.uniform(17.0, 23.0), rng.uniform(-0.3, 0.9), n_bands, 0.02, rng)
        return ("star", _flux(mags), 0.0)
    comps, info = _normal_galaxy(rng, n_bands, rng.uniform(19.0, 23.0))
    return ("galaxy", comps, min(4.0 * info["r_eff"] + 1.5, 10.0))
