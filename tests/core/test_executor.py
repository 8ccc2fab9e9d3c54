"""The executor contract (serial, threads, fork pool) and the one simulation loop."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

from rotalumis.core import RNG, ConditionHandler, Model, ModelError, Normal, observe, sample
from rotalumis.core.errors import SimulatorLostError
from rotalumis.core.executor import SerialExecutor, ThreadExecutor
from rotalumis.core.forkpool import ForkPoolExecutor
from rotalumis.core.runtime import current_execution
from rotalumis.core.simulate import simulate

EXECUTORS = {
    "serial": SerialExecutor,
    "threads": lambda: ThreadExecutor(3),
    "fork": lambda: ForkPoolExecutor(2),
}


def slow_square(i: int) -> int:
    time.sleep(0.05 if i == 0 else 0.0)  # unit 0 finishes last where units run at once
    return i * i


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_results_by_index_and_as_they_complete(kind: str) -> None:
    with EXECUTORS[kind]() as executor:
        arrived: list[int] = []
        assert executor.map(slow_square, 6, on_result=lambda i, _: arrived.append(i)) == [
            i * i for i in range(6)
        ]
        assert sorted(arrived) == list(range(6))
        if kind != "serial":
            assert arrived[-1] == 0, "results stream in completion order"
        assert dict(executor.stream(slow_square, 3)) == {0: 0, 1: 1, 2: 4}


def warns(i: int) -> int:
    warnings.warn(f"unit {i % 2} is odd", UserWarning, stacklevel=1)
    return i


@pytest.mark.parametrize("kind", ["threads", "fork"])
def test_warnings_reach_the_caller_once_per_message(kind: str) -> None:
    with warnings.catch_warnings(record=True) as caught, EXECUTORS[kind]() as executor:
        warnings.simplefilter("always")
        executor.map(warns, 6)
    messages = sorted(str(w.message) for w in caught)
    if kind == "threads":  # the caller's own warnings machinery: once per unit
        assert set(messages) == {"unit 0 is odd", "unit 1 is odd"}
    else:
        assert messages == ["unit 0 is odd", "unit 1 is odd"]


def fails(i: int) -> int:
    if i == 3:
        raise ModelError("the simulator broke")
    return i


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_an_error_names_the_unit(kind: str) -> None:
    with (
        pytest.raises(ModelError, match=r"the simulator broke \[unit 3, seed 42\]"),
        EXECUTORS[kind]() as executor,
    ):
        executor.map(fails, 5, lambda i: f"unit {i}, seed {40 + i - 1}")


def test_a_unit_whose_pooled_simulator_died_runs_again() -> None:
    tries: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(i: int) -> int:
        with lock:
            tries[i] = tries.get(i, 0) + 1
            first = tries[i] == 1
        if i == 2 and first:
            raise SimulatorLostError("simulator at ipc://@x died", "ipc://@x", retryable=True)
        return i

    with ThreadExecutor(2) as executor:
        assert executor.map(flaky, 4) == [0, 1, 2, 3]
    assert tries[2] == 2
    with pytest.raises(SimulatorLostError, match="died"):
        SerialExecutor().map(
            lambda i: (_ for _ in ()).throw(SimulatorLostError("died", "a", retryable=False)),
            1,
        )


def test_bad_worker_counts_are_named() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match=r"at least 1|non-negative integer"):
            ForkPoolExecutor(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"at least 1|non-negative integer"):
            ThreadExecutor(bad)  # type: ignore[arg-type]


class Gauss(Model):
    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")
        return float(mu)


def test_the_simulation_loop_is_seeded_and_conditions() -> None:
    a = [float(t["mu"].value) for t in Gauss().traces(5, seed=3)]
    b = [t.result for t in simulate(Gauss(), 5, RNG(3))]
    assert a == b and len(set(a)) == 5
    conditioned = list(Gauss().traces(2, seed=3, handlers=(ConditionHandler({"y": 2.0}),)))
    assert all(float(t["y"].value) == 2.0 for t in conditioned)
    assert float(Gauss().get_trace(seed=3)["mu"].value) == a[0]
    # a loop closed half-way leaves no handler or execution behind
    loop = Gauss().traces(5, seed=3)
    next(loop)
    assert current_execution() is not None
    loop.close()
    assert current_execution() is None
