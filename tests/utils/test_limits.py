"""The one JSON reader with byte and nesting limits, and the label-file limits."""

import json
import time

import pytest

from anomalymatch_astro.utils import MAX_JSON_DEPTH, loads_json, parse_labels, read_json
from anomalymatch_astro.utils._labels import MAX_LABEL_COLUMNS
from anomalymatch_astro.utils.exceptions import CheckpointError, LabelError, ReadError


@pytest.mark.parametrize(
    "doc",
    [{"a": [1, 2.5, None, True]}, [], "x", {"s": 'quote " and [ { in strings', "t": "\\\\[[["}, {"ü": "漢字"}],
)
def test_loads_json_round_trips(doc):
    assert loads_json(json.dumps(doc)) == doc
    assert loads_json(json.dumps(doc).encode()) == doc


def test_nesting_limit_counts_brackets_outside_strings_only():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(at_limit) is not None
    with pytest.raises(ReadError, match=f"nested {MAX_JSON_DEPTH + 1} deep"):
        loads_json("[" + at_limit + "]")
    assert loads_json(json.dumps({"k": "[" * 10_000})) == {"k": "[" * 10_000}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 200_000 + "]" * 200_000, "nested 200000 deep"),
        ("{" * 200_000, "nested"),
        ("9" * 100_000, "not valid JSON"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_hostile_json_is_refused_quickly(text, match):
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match=match):
        loads_json(text)
    assert time.perf_counter() - t0 < 2


def test_read_json_limits_and_error_class(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}')
    assert read_json(path)["a"] == "x" * 2000
    with pytest.raises(CheckpointError, match="over the limit of 1000 bytes"):
        read_json(path, error=CheckpointError, max_bytes=1000)
    with open(tmp_path / "sparse.json", "wb") as f:
        f.truncate(20 * 1024**3)  # declares 20 GiB; only the limit plus one byte is read
    with pytest.raises(ReadError, match="over the limit"):
        read_json(tmp_path / "sparse.json")
    with pytest.raises(ReadError, match="cannot read"):
        read_json(tmp_path / "missing.json")


def test_label_files_with_too_many_columns_or_rows_are_refused(tmp_path):
    names = ["id", "label"] + [f"c{i}" for i in range(MAX_LABEL_COLUMNS - 2)]
    ok = tmp_path / "ok.csv"
    ok.write_text(",".join(names) + "\n" + ",".join(["a", "anomaly"] + ["1"] * (len(names) - 2)) + "\n")
    assert parse_labels(ok) == {"a": 1}
    wide = tmp_path / "wide.csv"
    wide.write_text(
        ",".join(names + ["one_more"]) + "\n" + ",".join(["a", "anomaly"] + ["1"] * (len(names) - 1)) + "\n"
    )
    with pytest.raises(LabelError, match=f"{MAX_LABEL_COLUMNS + 1} columns"):
        parse_labels(wide)
    huge = tmp_path / "million.csv"  # the case: 10^6 columns, 12 MB, took 42 s and 2.2 GB
    huge.write_text(",".join(f"c{i}" for i in range(10**6)) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(LabelError, match="columns"):
        parse_labels(huge)
    assert time.perf_counter() - t0 < 2
    tsv = tmp_path / "wide.tsv"
    tsv.write_text("\t".join(names + ["x"]) + "\n")
    with pytest.raises(LabelError, match="columns"):
        parse_labels(tsv)


def test_ecsv_header_nested_too_deep_is_refused_before_yaml_parses_it(tmp_path):
    header = "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: id, datatype: string}\n# - {name: label, datatype: string}\n"
    ok = tmp_path / "ok.ecsv"
    ok.write_text(header + "# meta: {a: [[1, 2], {b: c}]}\n# schema: astropy-2.0\nid label\nx anomaly\n")
    assert parse_labels(ok) == {"x": 1}
    deep = tmp_path / "deep.ecsv"
    deep.write_text(header + "# meta: " + "[" * 20_000 + "]" * 20_000 + "\nid label\nx anomaly\n")
    t0 = time.perf_counter()
    with pytest.raises(LabelError, match="nested 20000 deep"):
        parse_labels(deep)
    assert time.perf_counter() - t0 < 0.5
