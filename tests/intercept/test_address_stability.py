"""Addresses are the same in every process and every run, whatever ran before (issue 11,
defect 4): code generated at run time (networkx's lazily compiled ``argmap`` wrappers,
wrappers built by ``exec`` and named with a process-wide counter) must not leak its counters
or its first-call trampolines into addresses."""

from __future__ import annotations

from pathlib import Path

import pytest
from intercept_support import run_json_script

# Run as a file (not ``-c``), so that its functions are ordinary code, not generated code.
SCRIPT = '''
import itertools
import json
import random
import sys

import networkx as nx

from rotalumis.core import Normal, model, sample
from intercept_support import run_intercepted

_COUNTER = itertools.count(1)


def generated(fn):
    """Wrap ``fn`` in a wrapper compiled from source, numbered by a process-wide counter."""
    n = next(_COUNTER)
    source = f"def {fn.__name__}_wrapper_{n}(*args, **kwargs):\\n    return fn(*args, **kwargs)\\n"
    namespace = {"fn": fn, "__name__": __name__}
    exec(compile(source, f"<generated wrapper {n}>", "exec"), namespace)
    return namespace[f"{fn.__name__}_wrapper_{n}"]


def noisy_sum(k):
    return sum(random.gauss(0.0, 1.0) for _ in range(k))


def native_draw():
    return sample(Normal(0.0, 1.0))


GENERATORS = {
    "gnp": lambda: nx.erdos_renyi_graph(8, 0.3),
    "ws": lambda: nx.watts_strogatz_graph(8, 4, 0.3),
    "ba": lambda: nx.barabasi_albert_graph(8, 2),
    "gnm": lambda: nx.gnm_random_graph(8, 10),
}

order = sys.argv[1].split(",")
warm = sys.argv[2] == "warm"
wrapped = {}
for name in order:  # the counter numbers the wrappers in this process's order
    if name in GENERATORS:
        if warm:  # first use outside any model: compiles networkx's wrappers now
            GENERATORS[name]()
    else:
        wrapped[name] = generated(noisy_sum if name == "noisy" else native_draw)

out = {}
for name in order:
    if name in GENERATORS:
        fn = GENERATORS[name]
    elif name == "noisy":
        fn = lambda: wrapped["noisy"](3)
    else:
        fn = None
    runs = []
    for _ in range(2):  # the first and a later run in this process
        if fn is None:
            trace = model(lambda: wrapped["native"]()).get_trace(seed=0)
        else:
            _, trace = run_intercepted(fn, seed=0)
        runs.append([site.address for site in trace.controlled])
    out[name] = runs
print(json.dumps(out))
'''


def _addresses(script: Path, order: list[str], warm: bool) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = run_json_script(
        script, ",".join(order), "warm" if warm else "cold"
    )
    return out


@pytest.mark.slow
def test_addresses_identical_across_fresh_processes_and_orders(tmp_path: Path) -> None:
    script = tmp_path / "stability_script.py"
    script.write_text(SCRIPT)
    names = ["gnp", "ws", "ba", "gnm", "noisy", "native"]
    runs = [
        _addresses(script, names, warm=False),
        _addresses(script, names[::-1], warm=True),
        _addresses(script, ["ba", "native", "gnp", "noisy", "gnm", "ws"], warm=False),
    ]
    for name in names:
        reference = runs[0][name][0]
        assert reference, name
        assert len(set(reference)) == len(reference), name  # distinct sites stay distinct
        for process, out in enumerate(runs):
            for run, addresses in enumerate(out[name]):
                assert addresses == reference, (name, process, run)
    gnp = runs[0]["gnp"][0][0]
    assert "argmap_gnp_random_graph_#" in gnp  # the counter of the generated wrapper
    assert "argmap.__call__" not in gnp  # the first-call trampoline is left out
    assert "noisy_sum_wrapper_#" in runs[0]["noisy"][0][0]
    assert runs[0]["native"][0][0].startswith("<lambda>:")
