"""The package's import graph: arrows only downstream, no circles, no private reach-ins.

Every import of the package's own modules is counted, at module level and inside functions
alike (a lazy import is still a dependency).  The layers are those of
``docs/development/architecture.rst``; a subpackage may import from its own layer and the
layers below it, never above.
"""

import ast
import pathlib

import pytest

PACKAGE = "anomalymatch_astro"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE

#: Bottom to top.  Each entry may import from the entries before it.
LAYERS = [
    "utils",
    "normalization",
    "cutouts",
    "datasets",
    "evaluation",
    "visualization",
    "classifier",
    "embeddings",
    "scoring",
    "archives",
    "catalogs",
    "active_learning",
    "ui",
    "benchmarking",
    "_demo",
    "cli",
    "__main__",
]
RANK = {name: i for i, name in enumerate(LAYERS)}


def _modules():
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if "data" in parts[1:-1]:  # package data (scripts shipped for other programs), not modules
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _target(module, node, is_package):
    if node.level == 0:
        return node.module
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module):
    """``(imported module, imported name or None, line)`` for every import of the package's own code."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _target(module, node, path.name == "__init__.py")
            if not target or not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.append((alias.name, None, node.lineno))
    return found


def _subpackage(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_subpackage_has_a_layer():
    top = {_subpackage(m) for m in MODULES} - {None}
    assert top <= set(RANK), f"add {sorted(top - set(RANK))} to LAYERS and to docs/development/architecture.rst"


def test_no_upward_imports():
    upward = []
    for module in MODULES:
        here = _subpackage(module)
        if here is None:  # the root __init__: lazy names only
            continue
        for target, _, line in _imports(module):
            there = _subpackage(target)
            if there is None:
                upward.append(f"{module}:{line} imports the root package (import the subpackage that defines it)")
            elif RANK[there] > RANK[here]:
                upward.append(f"{module}:{line} imports {target} ({there} sits above {here})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_private_reach_ins_across_subpackages():
    reach_ins = []
    for module in MODULES:
        here = _subpackage(module)
        for target, name, line in _imports(module):
            there = _subpackage(target)
            if there is None or there == here:
                continue
            private_module = any(p.startswith("_") for p in target.split(".")[2:])
            private_name = name is not None and name.startswith("_") and name != "__version__"
            if there == "utils" and target.split(".")[2:] == ["_version"]:
                continue  # the version, read by every layer that writes provenance
            if private_module or private_name:
                what = f"{target}.{name}" if name else target
                reach_ins.append(f"{module}:{line} imports private {what} of {there}")
    assert not reach_ins, "private reach-ins:\n" + "\n".join(reach_ins)


def _module_graph():
    """Module -> modules it imports; a name taken from a package resolves to the module that defines it."""
    graph = {}
    for module in MODULES:
        edges = set()
        for target, name, _ in _imports(module):
            if target not in MODULES:
                continue
            if name is not None and MODULES[target].name == "__init__.py":
                target = _defining_module(target, name)
            edges.add(target)
        graph[module] = edges - {module}
    return graph


def _defining_module(package, name):
    """The module of ``package`` whose ``from .x import name`` re-exports ``name`` (else the package itself)."""
    for target, imported, _ in _imports(package):
        if imported == name and target in MODULES and target != package:
            if MODULES[target].name == "__init__.py":
                return _defining_module(target, name)
            return target
    return package


def _cycles(graph):
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules():
    graph = _module_graph()
    # a package's __init__ re-exporting its own modules is not a circle: leave the __init__ edges out
    graph = {m: {t for t in e if MODULES[t].name != "__init__.py"} for m, e in graph.items()}
    cycles = _cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_function_level_and_upward_imports(tmp_path):
    """The graph test must be able to fail: a synthetic module with a lazy upward import is caught."""
    source = "def f():\n    from ..cli import main\n    return main\n"
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _target(f"{PACKAGE}.utils._x", node, False) == f"{PACKAGE}.cli"
    assert RANK["cli"] > RANK["utils"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.count(".") >= 1))
def test_module_size(module):
    """No module over 500 lines unless listed here as one cohesive concept (with the reason)."""
    cohesive = {
        # one class each, already split along their seams (workdir, training, strategies; server, widget)
        "anomalymatch_astro.active_learning._session": 710,
        "anomalymatch_astro.ui._gallery": 560,
    }
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    limit = cohesive.get(module, 500)
    assert lines <= limit, f"{module} has {lines} lines: split it along its seams"
