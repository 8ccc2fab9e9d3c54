"""Addresses follow the simulator's call stack into library frames and are stable."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from intercept_support import run_intercepted

HERE = Path(__file__).parent

SCRIPT = """
import json, random
import numpy as np
from scipy import stats
from intercept_support import run_intercepted

def simulate():
    out = [random.gauss(0, 1) for _ in range(2)]
    out.append(stats.norm.rvs(size=2, random_state=np.random.RandomState(0)))
    out.append(np.random.default_rng().choice(3))
    return out

_, trace = run_intercepted(simulate, seed=0)
print(json.dumps([s.address for s in trace.controlled]))
"""


def _addresses_in_subprocess() -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=HERE,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _addresses_in_process() -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SCRIPT, "<string>", "exec"), {"__name__": "__main__"})
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_library_frames_in_address_and_stable_across_processes() -> None:
    first, second = _addresses_in_process(), _addresses_in_subprocess()
    assert first == second
    assert len(first) == 4
    assert first[0].endswith("random.gauss__Normal__1")
    assert first[1].endswith("random.gauss__Normal__2")  # same line: instance counter
    scipy_site = first[2]
    assert "/scipy.stats." in scipy_site  # third-party frames: module.qualname:line
    assert scipy_site.endswith("RandomState.standard_normal[2]__Normal__1")  # shape in label
    assert first[3].endswith("Generator.choice__Categorical__1")


def test_same_code_path_same_address_in_process() -> None:
    def simulate():
        return [np.random.normal() for _ in range(3)] + [np.random.poisson(2.0)]

    (_, a), (_, b) = run_intercepted(simulate, seed=1), run_intercepted(simulate, seed=2)
    addresses = [s.address for s in a.controlled]
    assert addresses == [s.address for s in b.controlled]
    assert [x.rsplit("__", 1)[1] for x in addresses] == ["1", "2", "3", "1"]


def _draw() -> float:
    return random.random()


def _resumed_by_first(gen):  # type: ignore[no-untyped-def]
    return next(gen)


def _resumed_by_second(gen):  # type: ignore[no-untyped-def]
    return next(gen)


def test_memoised_addresses_follow_the_call_path() -> None:
    """The per-call-site address memo never serves a stale path: a helper called from two
    lines, and a helper called from a generator that different functions resume."""

    def from_generator():  # type: ignore[no-untyped-def]
        while True:
            yield _draw()

    def simulate() -> None:
        for _ in range(3):
            _draw()
            _draw()
        gen = from_generator()
        for _ in range(3):
            _resumed_by_first(gen)
            _resumed_by_second(gen)

    _, trace = run_intercepted(simulate)
    bases = [site.address.rsplit("__", 2)[0] for site in trace.controlled]
    assert len(set(bases[:6])) == 2 and bases[0:2] * 3 == bases[:6]
    first, second = bases[6], bases[7]
    assert "_resumed_by_first:" in first and "_resumed_by_second:" not in first
    assert "_resumed_by_second:" in second and "_resumed_by_first:" not in second
    assert bases[6:] == [first, second] * 3
