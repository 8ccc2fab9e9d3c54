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


def test_addresses_remembered_by_frame_follow_the_call_path() -> None:
    """The memo by live frame (a loop drawing in one function): two draw sites in one
    frame, two labels at one instruction, and a generator that draws itself and is
    resumed from two places (its frame is the same object, its callers differ)."""
    rng = random.Random(5)

    def direct_generator():  # type: ignore[no-untyped-def]
        while True:
            yield random.random()

    def simulate() -> None:
        for _ in range(3):
            np.random.normal(0.0, 1.0)
            np.random.normal(0.0, 1.0)
        for source in [random, rng] * 3:
            source.random()  # one instruction, the module's and an instance's label
        gen = direct_generator()
        for _ in range(3):
            _resumed_by_first(gen)
            _resumed_by_second(gen)
        for _ in range(2):
            next(gen)  # resumed twice from one live frame at one instruction
        _resumed_by_first(gen)  # then from another

    _, trace = run_intercepted(simulate)
    addresses = [site.address for site in trace.controlled]
    loop, labels, resumed = addresses[:6], addresses[6:12], addresses[12:18]
    here, again, elsewhere = addresses[18:]
    assert here.rsplit("__", 1)[0] == again.rsplit("__", 1)[0] and "_resumed_by" not in here
    assert elsewhere.rsplit("__", 1)[0] != here.rsplit("__", 1)[0]  # another call path
    lines = [a.rsplit("/", 1)[0] for a in loop]
    assert len(set(lines)) == 2 and lines[:2] * 3 == lines
    assert [a.rsplit("__", 1)[1] for a in loop] == ["1", "1", "2", "2", "3", "3"]
    assert [a.rsplit("/", 1)[1].split("__")[0] for a in labels] == [
        "random.random",
        "Random.random",
    ] * 3
    assert [a.rsplit("__", 1)[1] for a in labels] == ["1", "1", "2", "2", "3", "3"]
    assert all("_resumed_by_first:" in a for a in resumed[0::2])
    assert all("_resumed_by_second:" in a for a in resumed[1::2])
    assert [a.rsplit("__", 1)[1] for a in resumed] == ["1", "1", "2", "2", "3", "3"]
