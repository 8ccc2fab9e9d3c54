"""The floor of an intercepted ``random.random()``: what a wrapper written in C costs when it
does only part of what recording an addressed site needs, next to the plain call and to the
real intercepted call, side by side in one process (CPU us per call, medians).

``benchmarks/floor/_floor.c`` is built into a temporary folder (setuptools, no installation)
and wraps the engine's own ``random.random`` at 5 levels: only the call (a C callable that
calls the original), + a context-variable read (is a model running?), + a dict lookup of the
calling frame (the call site's address), + appending ``(address, value)`` to a list (the
recorded entry), + counting the visit in a dict (the instance number). The last level still
lacks what a site needs (its distribution, the instance's address string, the handler and
limit checks, setting the re-entrancy guard), so it is a lower bound for any design that
records one addressed trace entry per draw; docs/interception.md compares it with the 3x
target (3 times the plain call). Two more levels measure "lazy addressing" (the instance
number counted later, from the order of the draws): the context variable and the frame
lookup (to a call-site id), then ``(id, value)`` appended to C arrays with a running total
checked; and that plus two more context variables and the re-entrancy flag set and reset
around the draw.

    .venv/bin/python benchmarks/bench_intercept_floor.py [--draws 2000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from setuptools import Distribution, Extension

from rotalumis.core import FunctionModel
from rotalumis.intercept import intercept
from rotalumis.intercept._accelerator import DESCRIPTION

LEVELS = [
    "C wrapper: the call only",
    "+ context variable read",
    "+ frame -> address dict lookup",
    "+ append (address, value)",
    "+ visit counter in a dict",
    "lazy: 1, 2, (id, value) to C arrays",
    "lazy + 2 context vars, busy flag",
]


def _build(folder: Path) -> object:
    source = Path(__file__).resolve().parent / "floor" / "_floor.c"
    dist = Distribution({"ext_modules": [Extension("_floor", [str(source)])]})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib, cmd.build_temp = str(folder), str(folder / "tmp")  # type: ignore[attr-defined]
    cmd.ensure_finalized()
    cmd.run()
    path = next(folder.glob("_floor*"))
    spec = importlib.util.spec_from_file_location("_floor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _per_call_us(loop: Callable[[int], object], draws: int) -> float:
    start = time.process_time()
    loop(draws)
    return (time.process_time() - start) / draws * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor = _build(Path(tmp))
    draw = random.Random(0).random  # the engine draws from its own random.Random
    var: contextvars.ContextVar[object] = contextvars.ContextVar("model", default=None)
    out: list[object] = []
    wrappers = [floor.Floor(draw, level, var, {}, out) for level in range(len(LEVELS))]  # type: ignore[attr-defined]

    def plain(n: int) -> object:
        return [draw() for _ in range(n)]

    loops: list[tuple[str, Callable[[int], object]]] = [("plain random.random()", plain)]
    for label, w in zip(LEVELS, wrappers, strict=True):
        loops.append((label, lambda n, w=w: [w() for _ in range(n)]))

    def forward() -> object:
        with intercept(check_escapes=False):
            return plain_random(args.draws)

    def plain_random(n: int) -> object:
        r = random.random
        return [r() for _ in range(n)]

    model = FunctionModel(forward, "floor")
    model.prior(1, seed=0, progress=False)

    def intercepted(n: int) -> object:
        return model.prior(1, seed=1, progress=False)

    loops.append(("rotalumis, intercepted", intercepted))
    gc.collect()
    gc.freeze()
    times: dict[str, list[float]] = {label: [] for label, _ in loops}
    for _ in range(args.repeats):  # alternating, so that load hits every row alike
        for label, loop in loops:
            times[label].append(_per_call_us(loop, args.draws))
            out.clear()
            for w in wrappers:
                w.reset()
    print(f"# interception: {DESCRIPTION}; python {sys.version.split()[0]}")
    base = statistics.median(times["plain random.random()"])
    print(f"{'call':34} {'us':>6} {'x plain':>8}")
    for label, values in times.items():
        us = statistics.median(values)
        print(f"{label:34} {us:6.3f} {us / base:7.1f}x")


if __name__ == "__main__":
    main()
