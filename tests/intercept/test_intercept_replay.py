"""Engine-supplied values reach the unmodified simulator exactly."""

from __future__ import annotations

import random

import numpy as np
import torch

from rotalumis.core import FunctionModel, ReplayHandler
from rotalumis.intercept import intercept


def simulator() -> dict:
    rng = np.random.default_rng(0)
    rs = np.random.RandomState(0)
    return {
        "gauss": random.gauss(0.0, 1.0),
        "expo": random.Random(4).expovariate(2.0),
        "choice": random.choice("abc"),
        "bits": random.getrandbits(8),
        "normal3": np.random.normal(size=3),
        "poisson": rng.poisson(2.0),
        "integers": rng.integers(10),
        "randint": rs.randint(3, 8, size=2),
        "choice_p": rng.choice(["x", "y"], p=[0.5, 0.5]),
        "vonmises": rng.vonmises(0.0, 1.0),
    }


def forward() -> dict:
    with intercept():
        return simulator()


MODEL = FunctionModel(forward, "replay")

REPLAY = {  # label of the intercepted call -> value the engine supplies
    "random.gauss": 0.123456789,
    "Random.expovariate": 0.75,
    "random.randbelow": 2,
    "random.getrandbits": torch.tensor([1, 0, 1, 0, 0, 0, 0, 1], dtype=torch.float64),
    "np.random.normal": torch.tensor([1.5, -2.25, 3.125], dtype=torch.float64),
    "Generator.poisson": 7,
    "Generator.integers": 9,
    "RandomState.randint": torch.tensor([4, 0]),  # indices into range(3, 8)
    "Generator.choice": 1,
    "Generator.vonmises": 0.25,
}


def test_replayed_values_reach_the_simulator_exactly() -> None:
    first = MODEL.get_trace(seed=1)
    values = {}
    for site in first.controlled:
        label = site.address.rsplit("/", 1)[1].split("__")[0].split("[")[0]
        values[site.address] = REPLAY[label]
    assert len(values) == len(REPLAY)
    with ReplayHandler(values) as replay:
        trace = MODEL.get_trace(seed=2)
    assert replay.replayed == set(values)
    out = trace.result
    assert out["gauss"] == 0.123456789
    assert out["expo"] == 0.75
    assert out["choice"] == "c"
    assert out["bits"] == 0b10000101
    np.testing.assert_array_equal(out["normal3"], [1.5, -2.25, 3.125])
    assert out["normal3"].dtype == np.float64
    assert out["poisson"] == 7 and type(out["poisson"]) is int
    assert out["integers"] == 9 and isinstance(out["integers"], np.int64)
    np.testing.assert_array_equal(out["randint"], [7, 3])
    assert out["choice_p"] == "y"
    # an unmapped call replays through its recorded seed: NumPy's own code on that stream
    expected = np.random.Generator(np.random.PCG64(int(0.25 * 2**53))).vonmises(0.0, 1.0)
    assert out["vonmises"] == expected
    # and the trace holds exactly the replayed values
    for site in trace.controlled:
        v = site.value
        assert bool(torch.equal(torch.as_tensor(v), torch.as_tensor(values[site.address])))


def test_same_seed_same_trace_and_result() -> None:
    a, b = MODEL.get_trace(seed=5), MODEL.get_trace(seed=5)
    assert [s.address for s in a.controlled] == [s.address for s in b.controlled]
    assert a.result["gauss"] == b.result["gauss"]
    assert a.result["vonmises"] == b.result["vonmises"]
