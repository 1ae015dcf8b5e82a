import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import TABLE_FORMATS, crossmatch, read_table, scores_to_table, write_table
from anomalymatch_astro.utils.exceptions import FITSReadError, InvalidInputError, OutputExistsError

EXTENSIONS = {"fits": ".fits", "votable": ".xml", "ecsv": ".ecsv", "parquet": ".parquet", "hdf5": ".h5"}


def assert_tables_identical(a, b):
    assert a.colnames == b.colnames
    assert a.meta == b.meta
    assert len(a) == len(b)
    for name in a.colnames:
        x, y = a[name], b[name]
        if isinstance(x, SkyCoord):
            assert isinstance(y, SkyCoord), name
            assert x.frame.name == y.frame.name
            np.testing.assert_array_equal(x.ra.deg, y.ra.deg)
            np.testing.assert_array_equal(x.dec.deg, y.dec.deg)
            continue
        assert type(x) is type(y), (name, type(x), type(y))
        assert getattr(x, "unit", None) == getattr(y, "unit", None), name
        assert x.dtype.kind == y.dtype.kind, (name, x.dtype, y.dtype)
        mx = np.ma.getmaskarray(getattr(x, "mask", np.zeros(len(x), bool)))
        my = np.ma.getmaskarray(getattr(y, "mask", np.zeros(len(y), bool)))
        np.testing.assert_array_equal(mx, my, err_msg=name)
        vx = np.asarray(getattr(x, "unmasked", x))[~mx]
        vy = np.asarray(getattr(y, "unmasked", y))[~my]
        np.testing.assert_array_equal(vx, vy, err_msg=name)


@pytest.fixture
def catalogue(cutouts, scores):
    records = Table(
        {"id": ["x1"], "label": ["normal"], "source": ["ui"], "time": ["2026-01-01T10:00:00"], "cycle": [1]}
    )
    table = scores_to_table(
        cutouts,
        scores,
        labels={"007": "anomaly"},
        label_records=records,
        provenance={
            "model": {"hash": "abc", "config": {"lr": 0.001, "layers": [1, 2]}},
            "normalizer": {"stretch": "asinh", "percentile": 99.5},
            "long_note": "x" * 300,
        },
    )
    table["flag"] = np.array([True, False, True, True, False])
    table["n_good"] = np.array([1, 2, 3, 4, 2**40], dtype=np.int64)
    table["flux"] = np.array([1.5, 2.5, np.nan, 4.0, 5.0]) * u.mJy
    return table


@pytest.mark.parametrize("fmt", sorted(TABLE_FORMATS))
def test_round_trip_every_format(tmp_path, catalogue, fmt):
    path = tmp_path / f"cat{EXTENSIONS[fmt]}"
    write_table(catalogue, path)
    back = read_table(path)
    assert isinstance(back, QTable)
    assert_tables_identical(catalogue, back)
    assert back["label"].tolist() == ["anomaly", "normal", "", "", ""]


@pytest.mark.parametrize("fmt", sorted(TABLE_FORMATS))
def test_round_trip_explicit_format_and_no_coords(tmp_path, fmt):
    cs = CutoutSet.from_arrays(np.zeros((3, 1, 8, 8)), ids=["a", "b", "c"], bands=["r"])
    t = scores_to_table(cs, [0.1, 0.2, 0.3])
    path = tmp_path / "cat.dat"
    write_table(t, path, format=fmt)
    assert_tables_identical(t, read_table(path, format=fmt))


@pytest.mark.parametrize("fmt", sorted(TABLE_FORMATS))
def test_round_trip_crossmatch_result_with_masks(tmp_path, fmt):
    cands = QTable({"id": ["a", "b"], "coord": SkyCoord([10, 20], [0, 0], unit="deg")})
    cat = QTable({"name": ["S1"], "ra": [10.0001], "dec": [0.0], "mag": [18.0] * u.mag})
    m = crossmatch(cands, cat, radius=1 * u.arcsec)
    path = tmp_path / f"m{EXTENSIONS[fmt]}"
    write_table(m, path)
    back = read_table(path)
    assert back["cat_name"].mask.tolist() == [False, True]
    assert back["sep"].mask.tolist() == [False, True]
    assert back["cat_name"][0] == "S1"
    np.testing.assert_allclose(back["sep"].unmasked[0].to_value(u.arcsec), 0.36, atol=1e-6)
    assert back.meta["crossmatch"]["n_matched"] == 1


def test_overwrite(tmp_path, catalogue):
    path = tmp_path / "cat.ecsv"
    write_table(catalogue, path)
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_table(catalogue, path)
    write_table(catalogue[:2], path, overwrite=True)
    assert len(read_table(path)) == 2


def test_unknown_format(tmp_path, catalogue):
    with pytest.raises(InvalidInputError, match="extension"):
        write_table(catalogue, tmp_path / "cat.txt")
    with pytest.raises(InvalidInputError, match="unknown table format"):
        write_table(catalogue, tmp_path / "cat.ecsv", format="excel")


def test_read_missing_and_corrupt(tmp_path):
    with pytest.raises(FITSReadError):
        read_table(tmp_path / "nope.fits")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file at all")
    with pytest.raises(FITSReadError):
        read_table(bad)


def test_reads_foreign_tables(tmp_path):
    t = Table({"ra": [1.0, 2.0], "dec": [3.0, 4.0], "name": ["p", "q"]})
    t.write(tmp_path / "plain.fits")
    back = read_table(tmp_path / "plain.fits")
    assert back["name"].tolist() == ["p", "q"]
    assert not isinstance(back["name"], MaskedColumn)


def test_fits_meta_keeps_runs_of_spaces(tmp_path):
    """A WCS header string in meta (long runs of spaces) survives FITS' CONTINUE cards."""
    from astropy.table import QTable

    from anomalymatch_astro.catalogs import read_table, write_table

    header = "WCSAXES =                    2 / Number of coordinate axes" + " " * 300 + "END"
    table = QTable({"id": ["a", "b"], "score": [0.1, 0.9]}, meta={"grid_wcs": header, "nested": {"x": [1, 2]}})
    write_table(table, tmp_path / "t.fits")
    back = read_table(tmp_path / "t.fits")
    assert back.meta["grid_wcs"] == header and back.meta["nested"] == {"x": [1, 2]}


@pytest.mark.parametrize("fmt", ["fits", "ecsv"])
def test_failed_write_keeps_the_old_file(tmp_path, catalogue, fmt, monkeypatch):
    import anomalymatch_astro.catalogs._io as io_module

    path = tmp_path / f"cat{EXTENSIONS[fmt]}"
    write_table(catalogue, path)
    before = path.read_bytes()

    def torn_write(out, target, fmt):
        with open(target, "wb") as f:
            f.write(b"half a table")
        raise OSError("disk full")

    monkeypatch.setattr(io_module, "_write_format", torn_write)
    with pytest.raises(OSError, match="disk full"):
        write_table(catalogue[:1], path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def _ecsv_header(path):
    import yaml

    lines = path.read_text(encoding="utf-8").splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")][1:]  # after "# %ECSV 1.0" and "# ---"
    return yaml.safe_load("\n".join(line for line in header if line != "---"))


def test_ecsv_header_is_plain_yaml(tmp_path, catalogue):
    """TOPCAT/STILTS read the ECSV header with a safe YAML loader: no astropy tags (SerializedColumn ...)."""
    catalogue.meta["a_tuple"] = (1, 2)
    catalogue.meta["a_numpy_value"] = np.float64(0.5)
    catalogue.meta["a_quantity"] = 3 * u.arcsec
    path = tmp_path / "cat.ecsv"
    write_table(catalogue, path)
    text = path.read_text(encoding="utf-8")
    assert "!astropy" not in text and "!!python" not in text and "!numpy" not in text
    header = _ecsv_header(path)  # a safe loader refuses every non-standard tag
    columns = {c["name"]: c for c in header["datatype"]}
    assert "coord" not in columns and columns["coord_lon"]["unit"] == "deg"
    assert dict(columns["coord_lon"]["meta"]) == {"ucd": "pos.eq.ra"}
    assert dict(columns["coord_lat"]["meta"]) == {"ucd": "pos.eq.dec"}
    assert columns["flux"]["unit"] == "mJy" and columns["ra"]["unit"] == "deg"
    back = read_table(path)  # the SkyCoord and Quantity columns come back
    assert isinstance(back["coord"], SkyCoord) and back.colnames == catalogue.colnames
    assert back["flux"].unit == u.mJy and isinstance(back["flux"], u.Quantity)
    assert back.meta["a_tuple"] == [1, 2] and back.meta["a_numpy_value"] == 0.5
    assert back.meta["a_quantity"] == "3.0 arcsec"  # as in FITS and VOTable: the JSON form


def test_ecsv_written_by_older_versions_still_reads(tmp_path, catalogue):
    """Before, ECSV kept SkyCoord columns as astropy's serialized mixins; such files still open."""
    out = QTable(catalogue, copy=True)
    out.meta["__anomalymatch_io__"] = {"masked": [], "columns": list(out.colnames)}
    out.write(tmp_path / "old.ecsv", format="ascii.ecsv")
    assert "!astropy.table.SerializedColumn" in (tmp_path / "old.ecsv").read_text()
    assert_tables_identical(catalogue, read_table(tmp_path / "old.ecsv"))
