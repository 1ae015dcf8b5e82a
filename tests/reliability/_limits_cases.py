"""Files whose headers declare sizes, counts, nesting or lengths far beyond what they hold.

`make_cases` writes them into a folder and returns one dict per case: the kind of file,
a name, the reader that `_limits_worker` applies to it, its path and what must happen
(``"refused"`` with a package error, or ``"accepted"`` for the valid controls).
"""

import hashlib
import json
import os
import re
import shutil
import struct

import h5py
import numpy as np
from astropy.io import fits
from astropy.table import QTable

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import write_table

#: The kinds of file covered, as named in the cases.
KINDS = (
    "FITS image",
    "HDF5 CutoutSet",
    "session.json",
    "score store",
    "embedding cache",
    "labels file",
    "Astronomaly bundle",
    "catalogue",
    "VOTable (archive answers)",
    "checkpoint",
)
DEEP = 200_000  # nesting of the hostile JSON, YAML and XML documents
BIG = 10**9  # declared rows
HUGE_FILE = 20 * 1024**3  # a sparse file: declares 20 GiB, stores nothing


def _case(cases, kind, name, reader, path, expect="refused", **args):
    cases.append({"kind": kind, "name": name, "reader": reader, "path": os.fspath(path), "expect": expect, **args})


def _sparse(path, size=HUGE_FILE):
    with open(path, "wb") as f:
        f.truncate(size)


def _replace(raw, old, new):
    assert old in raw, old
    assert len(old) == len(new), (old, new)
    return raw.replace(old, new, 1)


def _card(key, value):
    return f"{key:<8}= {value:>20}".encode()


# ------------------------------------------------------------------ FITS images
def _image_header(naxis1, naxis2, bitpix=-32, **extra):
    h = fits.Header()
    h["SIMPLE"] = True
    h["BITPIX"] = bitpix
    h["NAXIS"] = 2
    h["NAXIS1"] = naxis1
    h["NAXIS2"] = naxis2
    wcs = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CRVAL2": 10.0, "CRPIX1": 1.0}
    wcs.update({"CRPIX2": 1.0, "CDELT1": -1e-4, "CDELT2": 1e-4})
    h.update(wcs)
    h.update(extra)
    return h


def _fits_cases(folder, cases):
    def header_only(name, header, blocks=4):
        path = folder / f"{name}.fits"
        with open(path, "wb") as f:
            f.write(header.tostring().encode() + b"\0" * 2880 * blocks)
        return path

    k = "FITS image"
    for reader in ("fits_path", "fits_hdulist"):
        _case(
            cases,
            k,
            f"float32 10^6 x 10^6 in 14 KB ({reader})",
            reader,
            header_only("big", _image_header(10**6, 10**6)),
        )
        p = header_only("bzero", _image_header(10**6, 10**6, 16, BZERO=32768, BSCALE=1))
        _case(cases, k, f"scaled int16 10^6 x 10^6 in 14 KB ({reader})", reader, p)
    _case(
        cases,
        k,
        "float64 46341 x 46341 (16 GiB) in 14 KB",
        "fits_path",
        header_only("mid", _image_header(46341, 46341, -64)),
    )
    _case(cases, k, "NAXIS1 = 2^62", "fits_path", header_only("overflow", _image_header(2**62, 4)))
    h = _image_header(64, 64)
    h["NAXIS"] = 3
    h["NAXIS3"] = 10**9
    _case(cases, k, "a third axis of 10^9 planes", "fits_path", header_only("cube", h))
    h = _image_header(8, 8, 16, BSCALE=2.0)
    h["PCOUNT"] = 10**12
    h["GCOUNT"] = 10**6
    _case(cases, k, "PCOUNT 10^12, GCOUNT 10^6", "fits_path", header_only("pcount", h))
    # valid controls: a small plain, scaled (BZERO) and tile-compressed image
    data = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    fits.PrimaryHDU(data, header=_image_header(64, 64)).writeto(folder / "ok.fits")
    _case(cases, k, "valid float32 64 x 64", "fits_path", folder / "ok.fits", expect="accepted")
    scaled = fits.PrimaryHDU(data.astype(np.uint16), header=_image_header(64, 64, 16))
    scaled.writeto(folder / "ok_uint16.fits")  # stored as int16 with BZERO = 32768
    _case(cases, k, "valid scaled uint16 (BZERO)", "fits_path", folder / "ok_uint16.fits", expect="accepted")
    wcs_cards = fits.Header([c for c in _image_header(64, 64).cards if c.keyword.startswith("C")])
    comp = fits.CompImageHDU(data, header=wcs_cards, tile_shape=(16, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(folder / "ok_rice.fits")
    _case(cases, k, "valid tile-compressed 64 x 64", "fits_path", folder / "ok_rice.fits", expect="accepted")
    raw = (folder / "ok_rice.fits").read_bytes()
    big_axes = _replace(
        _replace(raw, _card("ZNAXIS1", 64), _card("ZNAXIS1", 10**6)), _card("ZNAXIS2", 64), _card("ZNAXIS2", 10**6)
    )
    (folder / "rice_axes.fits").write_bytes(big_axes)
    _case(cases, k, "tile-compressed, ZNAXISn = 10^6 over 16 tiles", "fits_path", folder / "rice_axes.fits")
    big_tile = _replace(
        _replace(big_axes, _card("ZTILE1", 16), _card("ZTILE1", 10**6)), _card("ZTILE2", 16), _card("ZTILE2", 10**6)
    )
    (folder / "rice_tile.fits").write_bytes(big_tile)
    _case(cases, k, "tile-compressed, one 10^6 x 10^6 tile", "fits_path", folder / "rice_tile.fits")
    ext = raw.index(b"XTENSION")
    pcount = re.search(rb"PCOUNT  = +(\d+)", raw[ext:])
    heap = raw[:ext] + _replace(raw[ext:], pcount.group(0), _card("PCOUNT", 10**12))
    (folder / "rice_heap.fits").write_bytes(heap)
    _case(cases, k, "tile-compressed, heap of 10^12 bytes", "fits_path", folder / "rice_heap.fits")


# ------------------------------------------------------------------ HDF5 CutoutSets and shards
def _cutout_set(n=3, size=8):
    data = np.random.default_rng(0).normal(size=(n, 1, size, size)).astype(np.float32)
    return CutoutSet.from_arrays(data, ids=[f"obj{i}" for i in range(n)], bands=["g"])


def _hdf5_cases(folder, cases):
    k = "HDF5 CutoutSet"
    good = folder / "ok.h5"
    _cutout_set().to_hdf5(good, shard_size=2)
    _case(cases, k, "valid, 2 shards", "cutouts_h5", good, expect="accepted")

    def edited(name, edit):
        path = folder / f"{name}.h5"
        shutil.copy(good, path)
        with h5py.File(path, "a") as f:
            edit(f, f["shards/000000"])
        return path

    def rows(declared, chunked=True):
        def edit(f, grp):
            old = grp["data"][()]
            del grp["data"]
            if chunked:
                d = grp.create_dataset(
                    "data",
                    shape=(declared, *old.shape[1:]),
                    chunks=(1, *old.shape[1:]),
                    compression="lzf",
                    fletcher32=True,
                    dtype="f4",
                )
            else:
                d = grp.create_dataset("data", shape=(declared, *old.shape[1:]), dtype="f4")
            if chunked:  # (writing into a contiguous one would allocate all of it: a sparse 256 GB file)
                d[: len(old)] = old

        return edit

    _case(cases, k, "shard data declares 10^9 rows over 2 chunks (20 KB)", "cutouts_h5", edited("rows", rows(BIG)))
    _case(cases, k, "shard data declares 5,000 rows over 2 chunks", "cutouts_h5", edited("rows5k", rows(5000)))
    _case(cases, k, "contiguous shard data declares 10^9 rows", "cutouts_h5", edited("contig", rows(BIG, False)))

    def table(f, grp):
        del grp["table"]
        grp.create_dataset("table", shape=(BIG,), dtype=[("id", "S8")])

    _case(cases, k, "metadata table declares 10^9 rows", "cutouts_h5", edited("table", table))

    def column_meta(f, grp):
        del grp["table.__table_column_meta__"]
        grp.create_dataset("table.__table_column_meta__", shape=(BIG,), dtype="S64")

    _case(cases, k, "table column description declares 10^9 lines", "cutouts_h5", edited("colmeta", column_meta))

    def image_shape(f, grp):
        f.attrs["image_shape"] = np.array([10**6, 10**6])
        for name in f["shards"]:
            g = f["shards"][name]
            del g["data"]
            g.create_dataset("data", shape=(2, 1, 10**6, 10**6), chunks=(1, 1, 1000, 1000), dtype="f4")

    _case(cases, k, "image_shape 10^6 x 10^6 over empty chunks", "cutouts_h5", edited("imshape", image_shape))

    def deep(attr):
        def edit(f, grp):
            f.attrs[attr] = "[" * DEEP + "]" * DEEP

        return edit

    _case(cases, k, "bands attribute nested 200,000 deep", "cutouts_h5", edited("bands", deep("bands")))
    _case(cases, k, "meta attribute nested 200,000 deep", "cutouts_h5", edited("meta", deep("meta")))

    def many_shards(f, grp):
        for i in range(2, 2000):
            g = f["shards"].create_group(f"{i:06d}")
            g.attrs["complete"] = True

    p = edited("shards", many_shards)
    _case(cases, k, "2,000 shards marked complete without data (skipped)", "cutouts_h5", p, expect="accepted")


# ------------------------------------------------------------------ JSON documents: sessions, stores, caches
def _json_cases(folder, cases, big_h5):
    k = "session.json"
    deep = "[" * DEEP + "]" * DEEP
    for name, write in (
        ("nested 200,000 deep", lambda p: p.write_text(deep)),
        ("a sparse 20 GiB file", _sparse),
        ("a string of 70 MB", lambda p: p.write_text('"' + "x" * (70 * 1024 * 1024) + '"')),
        ("an integer of 100,000 digits", lambda p: p.write_text('{"format": ' + "9" * 100_000 + "}")),
    ):
        workdir = folder / f"session_{len(cases)}"
        workdir.mkdir()
        write(workdir / "session.json")
        _case(cases, k, name, "session", workdir)
    workdir = folder / "session_big_h5"
    workdir.mkdir()
    (workdir / "session.json").write_text(
        json.dumps({"format": "anomalymatch_astro.ActiveLearningSession", "cutouts_path": os.fspath(big_h5)})
    )
    _case(cases, k, "pointing at a CutoutSet declaring 10^9 rows", "session", workdir)

    k = "score store"
    info = {"n": 10, "batch_size": 5, "key": "k"}
    for name, write, expect in (
        # an unreadable info.json means nothing can be resumed: the store starts afresh (accepted)
        ("info.json nested 200,000 deep (starts afresh)", lambda d: (d / "info.json").write_text(deep), "accepted"),
        ("info.json a sparse 20 GiB file (starts afresh)", lambda d: _sparse(d / "info.json"), "accepted"),
        ("scores.npy declares 10^12 scores", lambda d: _npy_header(d, info, (10**12,)), "refused"),
    ):
        store = folder / f"store_{len(cases)}"
        store.mkdir()
        write(store)
        _case(cases, k, name, "score_store", store, expect=expect, **info)

    k = "embedding cache"
    path = folder / "cache.h5"
    with h5py.File(path, "w") as f:
        grp = f.create_group("entries/x")
        grp.attrs["key"] = deep
        grp.attrs["complete"] = True
    _case(cases, k, "entry key nested 200,000 deep", "embedding_cache", path)


def _npy_header(store, info, shape):
    (store / "info.json").write_text(json.dumps(info))
    for name, n in (("scores.npy", shape), ("done.npy", (2,))):
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        header["shape"] = n
        with open(store / name, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 16)


# ------------------------------------------------------------------ labels and Astronomaly bundles
def _label_cases(folder, cases):
    k = "labels file"
    wide = folder / "wide.csv"
    with open(wide, "w") as f:
        f.write(",".join(f"c{i}" for i in range(10**6)) + "\n" + ",".join("1" for _ in range(10**6)) + "\n")
    _case(cases, k, "10^6 columns (12 MB)", "labels", wide)
    p = folder / "wide100.csv"
    p.write_text(
        ",".join(["id", "label"] + [f"c{i}" for i in range(100)])
        + "\n"
        + ",".join(["a", "anomaly"] + ["1"] * 100)
        + "\n"
    )
    _case(cases, k, "102 columns", "labels", p)
    p = folder / "rows.csv"
    with open(p, "wb") as f:
        f.write(b"id,label\n" + b"a,1\n" * 10_000_001)
    _case(cases, k, "10^7 rows (40 MB)", "labels", p)
    p = folder / "huge.csv"
    _sparse(p)
    _case(cases, k, "a sparse 20 GiB file", "labels", p)
    p = folder / "wide.ecsv"
    cols = "".join(f"# - {{name: c{i}, datatype: int64}}\n" for i in range(100_000))
    p.write_text("# %ECSV 1.0\n# ---\n# datatype:\n" + cols + "# schema: astropy-2.0\nid label\na 1\n")
    _case(cases, k, "ECSV header declaring 100,000 columns", "labels", p)
    p = folder / "deep.ecsv"
    p.write_text(
        "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: id, datatype: string}\n"
        "# - {name: label, datatype: string}\n# meta: " + "[" * 20_000 + "]" * 20_000 + "\nid label\na 1\n"
    )
    _case(cases, k, "ECSV meta nested 20,000 deep", "labels", p)
    p = folder / "ok_labels.csv"
    p.write_text("id,label\na,anomaly\nb,normal\n")
    _case(cases, k, "valid, 2 rows", "labels", p, expect="accepted")

    k = "Astronomaly bundle"
    for name, text in (
        ("ml_scores.csv with 10^6 columns", ",".join(f"c{i}" for i in range(10**6)) + "\n"),
        ("ml_scores.csv with a 10 MB field", "id,human_label\n" + "x" * (10 * 1024 * 1024) + ",5\n"),
        ("ml_scores.csv with a 10 MB quoted field", 'id,human_label\n"' + "x" * (10 * 1024 * 1024) + '",5\n'),
    ):
        bundle = folder / f"bundle_{len(cases)}"
        (bundle / "astronomaly_output").mkdir(parents=True)
        (bundle / "astronomaly_output" / "ml_scores.csv").write_text(text)
        (bundle / "metadata.csv").write_text("id,orig_id\nx,x\n")
        _case(cases, k, name, "astronomaly", bundle)
    bundle = folder / "bundle_meta"
    (bundle / "astronomaly_output").mkdir(parents=True)
    (bundle / "astronomaly_output" / "ml_scores.csv").write_text("id,human_label\na,5\n")
    (bundle / "metadata.csv").write_text(",".join(["id", "orig_id"] + [f"c{i}" for i in range(10**6)]) + "\n")
    _case(cases, k, "metadata.csv with 10^6 columns", "astronomaly", bundle)


# ------------------------------------------------------------------ catalogues and VOTables
def _catalog_cases(folder, cases):
    k = "catalogue"
    table = QTable({"id": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0]})
    for fmt in ("ecsv", "fits", "votable", "hdf5", "parquet"):
        write_table(table, folder / f"cat.{fmt if fmt != 'votable' else 'xml'}", format=fmt)
    _case(cases, k, "valid ECSV", "catalog", folder / "cat.ecsv", expect="accepted")
    raw = (folder / "cat.fits").read_bytes()
    p = folder / "cat_rows.fits"
    p.write_bytes(_replace(raw, _card("NAXIS2", 2), _card("NAXIS2", BIG)))
    _case(cases, k, "FITS table declaring 10^9 rows", "catalog", p)
    p = folder / "cat_repeat.fits"
    tform = next(c for c in fits.getheader(folder / "cat.fits", 1).cards if c.keyword == "TFORM2")
    old = f"TFORM2  = '{tform.value:<8}'".encode()
    new = f"TFORM2  = '{'999999999D':<8}'".encode()
    p.write_bytes(raw.replace(old, new[: len(old)] if len(new) > len(old) else new + b" " * (len(old) - len(new)), 1))
    _case(cases, k, "FITS column repeat 999,999,999", "catalog", p)
    xml = (folder / "cat.xml").read_text()
    p = folder / "cat_deep.xml"
    p.write_text(
        xml.replace('value="{', 'value="' + "[" * 20_000 + "]" * 20_000 + " {", 1) if 'value="{' in xml else xml
    )
    info = xml.find("anomalymatch_astro_meta")
    _case(cases, k, "VOTable metadata INFO nested 20,000 deep", "catalog", p, note=str(info))
    p = folder / "cat_nrows.xml"
    p.write_text(xml.replace("<TABLE", '<TABLE nrows="1000000000"', 1))
    _case(cases, k, "VOTable TABLE nrows=10^9", "catalog", p)
    p = folder / "cat_rows.hdf5"
    with h5py.File(p, "w") as f:
        f.create_dataset("catalog", shape=(BIG,), dtype=[("id", "S8"), ("ra", "f8"), ("dec", "f8")])
    _case(cases, k, "HDF5 table declaring 10^9 rows", "catalog", p)
    raw = (folder / "cat.parquet").read_bytes()
    p = folder / "cat_footer.parquet"
    p.write_bytes(raw[:-8] + struct.pack("<i", 2**31 - 1) + b"PAR1")
    _case(cases, k, "Parquet footer declaring 2 GiB of metadata", "catalog", p)

    k = "VOTable (archive answers)"
    doc = (
        '<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>'
        '<TABLE{attrs}><FIELD name="a" datatype="char" arraysize="{size}"/><DATA><TABLEDATA><TR><TD>x</TD></TR>'
        "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    )
    for name, text in (
        ("nrows=10^9 over one row", doc.format(attrs=' nrows="1000000000"', size="*")),
        ("char arraysize=10^9", doc.format(attrs="", size="1000000000")),
        (
            "elements nested 200,000 deep",
            doc.format(attrs="", size="*").replace("<RESOURCE>", "<RESOURCE>" + "<GROUP>" * DEEP + "</GROUP>" * DEEP),
        ),
        (
            "entity expansion (billion laughs)",
            '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
            + ']><VOTABLE version="1.4"><RESOURCE><INFO name="x" value="&i;"/></RESOURCE></VOTABLE>',
        ),
    ):
        p = folder / f"vot_{len(cases)}.xml"
        p.write_text(text)
        _case(cases, k, name, "votable", p)


# ------------------------------------------------------------------ checkpoints
def _checkpoint_cases(folder, cases, saved):
    k = "checkpoint"

    def copy(name):
        dst = folder / f"ckpt_{name}"
        shutil.copytree(saved, dst)
        return dst

    def reseal(path):
        info = json.loads((path / "config.json").read_text())
        info["weights_sha256"] = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
        (path / "config.json").write_text(json.dumps(info))

    _case(cases, k, "valid", "checkpoint", copy("ok"), expect="accepted")
    p = copy("deep")
    (p / "config.json").write_text("[" * DEEP + "]" * DEEP)
    _case(cases, k, "config.json nested 200,000 deep", "checkpoint", p)
    p = copy("sparse")
    _sparse(p / "config.json")
    _case(cases, k, "config.json a sparse 20 GiB file", "checkpoint", p)
    p = copy("hlen")
    raw = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + raw[8:])
    reseal(p)
    _case(cases, k, "safetensors header length 2^62 (sha256 resealed)", "checkpoint", p)
    p = copy("tensor")
    header = json.dumps({"w": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 40_000_000_000]}})
    (p / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 64)
    reseal(p)
    _case(cases, k, "safetensors tensor of 40 GB in 100 bytes (resealed)", "checkpoint", p)
    p = copy("image_size")
    info = json.loads((p / "config.json").read_text())
    info["image_size"] = 10**9
    (p / "config.json").write_text(json.dumps(info))
    _case(cases, k, "image_size 10^9", "checkpoint", p)


def make_cases(folder, saved_checkpoint):
    """Write every case into ``folder`` (a `pathlib.Path`); return the list of case dicts."""
    cases = []
    _fits_cases(folder, cases)
    _hdf5_cases(folder, cases)
    big_h5 = next(c["path"] for c in cases if c["name"].startswith("shard data declares 10^9"))
    _json_cases(folder, cases, big_h5)
    _label_cases(folder, cases)
    _catalog_cases(folder, cases)
    _checkpoint_cases(folder, cases, saved_checkpoint)
    return cases
