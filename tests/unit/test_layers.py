"""The package's shape (tools/modelzoo): no import loop between modules, and no import from a lower
layer to a higher one. Every import statement counts, wherever it stands: at the top, inside a
function, or under TYPE_CHECKING (an import hidden in a function still ties the two modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "modelzoo"

# Bottom to top. A module may import its own layer and the layers below it, never one above.
# "" is the ground: the modules directly in modelzoo/ (errors, events, fsio, descriptor, ...).
LAYERS = ["", "transport", "store", "download", "mirror", "accuracy", "convert", "sync", "reference",
          "devtools", "trust", "cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every modelzoo module that `name` imports, resolved to a module (not a package's name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import fsio` imports the module modelzoo.fsio
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name and known[m].name != "__init__.py"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    parts = name.split(".")
    sub = parts[1] if len(parts) > 2 else ""
    assert sub in LAYERS, f"{name}: a package that LAYERS does not place (add it where it belongs)"
    return LAYERS.index(sub)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    g = graph()
    assert "modelzoo.transport.fetch" in g["modelzoo.transport.segments"] or \
        "modelzoo.transport.segments" in g["modelzoo.transport.fetch"]
    assert "modelzoo.errors" in g["modelzoo.store.cache"]
    assert "modelzoo.fsio" in g["modelzoo.store.cache"]  # `from .. import fsio` is the module


def test_no_import_loop():
    assert cycles(graph()) == []


def test_a_loop_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in sorted(targets) if layer(b) > layer(a)]
    assert upward == []


@pytest.mark.parametrize("package", [p for p in LAYERS if p])
def test_each_package_says_what_it_owns_and_may_import(package):
    init = PACKAGE / package / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert len(doc) > 80, f"{init}: no docstring saying what the package owns"
    if package not in ("cli", "devtools", "reference"):
        assert "May import" in doc or "may import" in doc, init


def network_calls(tree: ast.AST) -> list[tuple[str, str]]:
    """(enclosing function, call) for every requests.get/head/post/put/request/Session, boto3's
    or a session's .client and urlopen in a module."""
    out = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            f = child.func if isinstance(child, ast.Call) else None
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (
                    (f.value.id == "requests" and f.attr in ("get", "head", "post", "put", "request", "Session"))
                    or (f.value.id in ("boto3", "session") and f.attr == "client")
                    or f.attr == "urlopen"):
                out.append((func, f"{f.value.id}.{f.attr}"))
            visit(child, inner)

    visit(tree, "<module>")
    return out


def test_every_http_request_goes_through_the_one_session_factory():
    """requests.get/head/post/request/Session and urllib's urlopen appear nowhere in the pipeline
    but in transport/fetch.py's make_session, where offline mode refuses every request, so a new
    caller cannot leak past --offline; boto3 clients only in transport/s3.py's make_client, which
    refuses offline. (devtools, the tests' own servers, are not the pipeline.)"""
    allowed = {("modelzoo.transport.fetch", "make_session"), ("modelzoo.transport.s3", "make_client")}
    found = [f"{name}:{func}: {call}" for name, path in modules().items() if not name.startswith("modelzoo.devtools")
             for func, call in network_calls(ast.parse(path.read_text())) if (name, func) not in allowed]
    assert found == []


def test_a_stray_request_is_found():
    tree = ast.parse("import requests\ndef f():\n    return requests.get('http://x')\n")
    assert network_calls(tree) == [("f", "requests.get")]


def test_the_accuracy_task_tables_agree():
    """A task is a module plus table entries: every adapter, metric and data-set kind the yml
    reader accepts has its function, and every function is reachable from the yml."""
    from modelzoo.accuracy import adapter, config, dataset, metric

    assert set(config.ADAPTERS) == set(adapter.ADAPTERS)
    assert set(config.METRICS) == set(metric.SCORERS)
    assert {kind for kind, _ in config.DATASETS.values()} == set(dataset.LOADERS)
