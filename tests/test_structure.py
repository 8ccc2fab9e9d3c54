"""The package structure: no import cycles inside any package, no private names across modules.

The import graph is grimp's, which reads every ``import`` statement of every module — those at
module level, inside functions (lazy imports) and under ``TYPE_CHECKING`` — so a cycle cannot
hide behind a deferred import. The layer contract between packages is import-linter's
(``lint-imports``, pyproject.toml); these tests check what it does not: the inside of each
package, at every level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx as nx
import pytest

import rotalumis

SRC = Path(rotalumis.__file__).parent
GENERATED = "rotalumis.remote.ppx_generated"  # flatc's output (make ppx-schema)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("rotalumis", cache_dir=None)


def package_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Import cycles among the children of ``package``, each child standing for itself and
    everything below it (so ``a.x -> a.y.z -> a.x`` is the cycle ``a.x -> a.y``)."""
    children = graph.find_children(package)
    deps = nx.DiGraph()
    deps.add_nodes_from(children)
    for child in children:
        for module in {child} | graph.find_descendants(child):
            for imported in graph.find_modules_directly_imported_by(module):
                target = next(
                    (c for c in children if imported == c or imported.startswith(c + ".")), None
                )
                if target is not None and target != child:
                    deps.add_edge(child, target)
    return [sorted(c) for c in nx.simple_cycles(deps)]


def test_the_cycle_finder_finds_cycles(graph: grimp.ImportGraph) -> None:
    # A two-module package whose modules import each other, one of them lazily.
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.b.inner"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b.inner")
    g.add_import(importer="p.b.inner", imported="p.a")
    assert package_cycles(g, "p") == [["p.a", "p.b"]]


def test_no_import_cycles_inside_any_package(graph: grimp.ImportGraph) -> None:
    packages = sorted(m for m in graph.modules if graph.find_children(m))
    assert {"rotalumis.core.handlers", "rotalumis.data"} <= set(packages)  # it sees subpackages
    found = {p: cycles for p in packages if (cycles := package_cycles(graph, p))}
    assert not found, f"import cycles (lazy imports included): {found}"


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package it belongs to) of a source file."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def private_imports(source: str, module: str, package: str) -> list[str]:
    """The imports in ``source`` (of ``module`` in ``package``) that reach into another
    module's privates: a private module outside the package that owns it (``a._m`` may be
    imported from ``a`` and below), or a private name defined in another module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*above, *([node.module] if node.module else [])])
            targets = [(base, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        else:
            continue
        for target, name in targets:
            if not target.startswith("rotalumis") or target.startswith(GENERATED):
                continue
            if name is not None and _is_private(name):
                as_module = SRC.parent / target.replace(".", "/") / name
                if as_module.with_suffix(".py").exists() or as_module.is_dir():
                    target, name = f"{target}.{name}", None
                else:
                    found.append(f"{module}:{node.lineno}: private name {name} of {target}")
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if _is_private(part) and not (package == owner or package.startswith(owner + ".")):
                    found.append(f"{module}:{node.lineno}: private module {target}")
                    break
    return found


def test_the_private_import_scan_finds_them() -> None:
    src = (
        "from rotalumis.data.dataset._x import y\n"  # private module from outside its package
        "from ...core.runtime import _STACK\n"  # private name of another module
        "from ._columns import freeze\n"  # a private sibling: fine
        "from rotalumis.data.empirical import _columns\n"  # a private submodule, from inside
    )
    found = private_imports(src, "rotalumis.data.empirical.m", "rotalumis.data.empirical")
    assert found == [
        "rotalumis.data.empirical.m:1: private module rotalumis.data.dataset._x",
        "rotalumis.data.empirical.m:2: private name _STACK of rotalumis.core.runtime",
    ]
    assert private_imports(src, "rotalumis.nn.m", "rotalumis.nn")[-1] == (
        "rotalumis.nn.m:4: private module rotalumis.data.empirical._columns"
    )


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module, package = _module_name(path)
        if not module.startswith(GENERATED):
            found += private_imports(path.read_text(encoding="utf-8"), module, package)
    assert not found, "\n".join(found)


def test_data_keeps_its_public_names() -> None:
    from rotalumis import data
    from rotalumis.data import dataset, empirical, encoding

    assert data.Empirical is empirical.Empirical
    assert data.EmpiricalBuilder is empirical.EmpiricalBuilder
    assert data.TraceDataset is dataset.TraceDataset
    assert data.generate_dataset is dataset.generate_dataset
    assert data.flat_value is encoding.flat_value
    assert data.flat_params is encoding.flat_params
    for name in data.__all__:
        assert getattr(data, name) is not None
