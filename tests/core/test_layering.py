"""The core imports nothing above it: not at import time, not lazily inside functions.

``model.posterior(engine=...)`` finds engines through entry points (see
``rotalumis/core/engines.py``), so importing the core loads neither the inference layer
nor the data layer (nor pyarrow), and the import graph has no edge from the core upwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grimp
import pytest

ABOVE_CORE = ("rotalumis.data", "rotalumis.infer", "pyarrow")


def _modules_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import rotalumis.core", "import rotalumis"])
def test_importing_the_core_loads_nothing_above_it(statement: str) -> None:
    loaded = _modules_after(statement)
    above = [m for m in loaded if m.startswith(ABOVE_CORE)]
    assert not above, f"{statement} imports {above[:5]}"


def test_a_posterior_from_the_core_alone_finds_its_engine() -> None:
    # only core names are imported: the engine comes through the entry point
    statement = (
        "from rotalumis.core import Model, Normal, sample, observe\n"
        "class M(Model):\n"
        "    def forward(self):\n"
        "        mu = sample(Normal(0.0, 1.0), name='mu')\n"
        "        observe(Normal(mu, 1.0), name='y')\n"
        "assert len(M().posterior(10, observe={'y': 1.0}, seed=0, progress=False)) == 10"
    )
    assert "rotalumis.infer" in _modules_after(statement)


def test_the_import_graph_has_no_edge_from_the_core_upwards() -> None:
    # grimp sees every import statement, also those inside functions (lazy imports)
    graph = grimp.build_graph("rotalumis", include_external_packages=True)
    core = {m for m in graph.modules if m == "rotalumis.core" or m.startswith("rotalumis.core.")}
    upward = sorted(
        (m, target)
        for m in core
        for target in graph.find_modules_directly_imported_by(m)
        if target.startswith(("rotalumis.", "pyarrow")) and not target.startswith("rotalumis.core")
    )
    assert upward == [], upward


@pytest.mark.parametrize("package", ["rotalumis.core", "rotalumis.infer"])
def test_no_import_cycle_inside_the_package(package: str) -> None:
    # lazy and TYPE_CHECKING imports count: a cycle is a cycle for the reader too
    graph = grimp.build_graph("rotalumis")
    modules = [m for m in graph.modules if m.startswith(package + ".")]
    cycles = [
        (a, b)
        for a in modules
        for b in graph.find_modules_directly_imported_by(a)
        if b.startswith(package + ".") and graph.chain_exists(b, a)
    ]
    assert cycles == [], cycles
