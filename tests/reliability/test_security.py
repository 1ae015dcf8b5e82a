"""Static security checks of the package source: no shell, no pickle, no unsafe loaders."""

import ast
import os

import pytest

import anomalymatch_astro
from anomalymatch_astro.archives._votable import parse_votable, soda_request
from anomalymatch_astro.utils.exceptions import ServiceError

ROOT = os.path.dirname(anomalymatch_astro.__file__)


def _calls():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    yield os.path.relpath(path, ROOT), node


def _name(func):
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def test_no_shell_and_no_unsafe_loaders():
    subprocess_calls = []
    for path, call in _calls():
        name = _name(call.func)
        if isinstance(call.func, ast.Name):  # the builtins, not model.eval()
            assert name not in ("eval", "exec", "compile", "__import__"), f"{path}: {name}"
        assert name not in (
            "os.system",
            "os.popen",
            "pickle.load",
            "pickle.loads",
            "yaml.load",
            "marshal.loads",
            "shelve.open",
        ), f"{path}: {name}"
        for kw in call.keywords:
            if kw.arg == "shell":
                assert isinstance(kw.value, ast.Constant) and kw.value.value is False, f"{path}: shell=True"
            if kw.arg == "allow_pickle":
                assert isinstance(kw.value, ast.Constant) and kw.value.value is False, f"{path}: allow_pickle"
        if name.startswith("subprocess."):
            subprocess_calls.append((path, call))
        if name in ("np.load", "numpy.load"):
            assert any(kw.arg == "allow_pickle" for kw in call.keywords), f"{path}: np.load without allow_pickle"
    # the one subprocess: the throughput benchmark runs this Python on a fixed script, argument list, no shell
    assert [p for p, _ in subprocess_calls] == [os.path.join("benchmarking", "_throughput.py")]
    ((_, call),) = subprocess_calls
    assert isinstance(call.args[0], ast.List) and _name(call.args[0].elts[0]) == "sys.executable"


def test_votable_without_table_is_a_service_error():
    doc = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        b'<RESOURCE type="results"></RESOURCE></VOTABLE>'
    )
    with pytest.raises(ServiceError, match="without a results table"):
        soda_request(parse_votable(doc, source="svc"), source="svc")
