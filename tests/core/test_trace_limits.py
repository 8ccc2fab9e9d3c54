"""Limits per trace (issue 12, defect 6): a runaway model stops with a clear error in every
engine, instead of hanging or filling the memory; legitimate models never notice."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rotalumis.core import (
    Model,
    ModelError,
    Normal,
    TraceLimitError,
    Uniform,
    observe,
    sample,
)
from rotalumis.core.limits import (
    DEFAULT_MAX_CHOICES,
    DEFAULT_MAX_SECONDS,
    TraceLimits,
    limit_traces,
    limits_for,
)


class EndlessDraws(Model):
    """A rejection loop that never accepts (memory grows with every draw)."""

    def forward(self) -> None:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")
        while sample(Uniform(0.0, 1.0)) < 2.0:
            pass


class EndlessLoop(Model):
    """``while True`` without a random choice: only a timer can stop it."""

    def forward(self) -> None:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")
        while mu == mu:
            pass


class Limited(EndlessDraws):
    trace_limits = TraceLimits(max_choices=3000)


ENGINES = ["prior", "is", "lmh", "rmh"]


@pytest.mark.parametrize("engine", ENGINES)
def test_endless_draws_stop_at_max_choices(engine: str) -> None:
    model = EndlessDraws()
    with pytest.raises(TraceLimitError) as info:
        model.posterior(10, engine=engine, observe={"y": 0.5}, seed=5, max_choices=2000)
    text = str(info.value)
    assert "model 'EndlessDraws' made more than 2,000 random choices" in text
    assert "seed 5" in text  # the trace can be reproduced


@pytest.mark.parametrize("engine", ["is", "rmh"])
def test_while_true_without_draws_stops_after_max_seconds(engine: str) -> None:
    start = time.monotonic()
    with pytest.raises(
        TraceLimitError, match=r"'EndlessLoop': one execution ran longer than 0.4 s"
    ):
        EndlessLoop().posterior(10, engine=engine, observe={"y": 0.5}, seed=1, max_seconds=0.4)
    # the timer ticks every limit / 4: stopped between 1 and 1.5 limits (plus start-up)
    assert 0.4 <= time.monotonic() - start < 5.0


def test_time_limit_stops_a_model_in_worker_processes() -> None:
    with pytest.raises(TraceLimitError, match=r"ran longer than 0\.4 s"):
        EndlessLoop().posterior(200, observe={"y": 0.5}, seed=1, max_seconds=0.4, workers=2)


def test_dataset_generation_and_training_stop_too(tmp_path: Path) -> None:
    from rotalumis.data import generate_dataset
    from rotalumis.nn import TrainingConfig, train_network

    with pytest.raises(TraceLimitError, match="trace 0 of the dataset with seed 3"):
        generate_dataset(Limited(), tmp_path / "d", 10, seed=3)
    with pytest.raises(TraceLimitError, match="trace 0 of training batch 0 of the run with seed 0"):
        train_network(model=Limited(), config=TrainingConfig(num_traces=32, batch_size=8))


def test_limits_precedence_defaults_model_block_and_options() -> None:
    assert limits_for(EndlessDraws()) == TraceLimits(DEFAULT_MAX_CHOICES, DEFAULT_MAX_SECONDS)
    assert limits_for(Limited()).max_choices == 3000
    with limit_traces(max_choices=100):
        assert limits_for(Limited()) == TraceLimits(100, DEFAULT_MAX_SECONDS)
        with limit_traces(max_seconds=None):
            assert limits_for(Limited()) == TraceLimits(100, None)
    assert limits_for(Limited()).max_choices == 3000
    with pytest.raises(TraceLimitError, match="more than 3,000"):
        Limited().posterior(5, observe={"y": 0.5}, seed=0)
    with pytest.raises(TraceLimitError, match="more than 500"):  # the option wins
        Limited().posterior(5, observe={"y": 0.5}, seed=0, max_choices=500)


def test_disabled_and_generous_limits_let_long_traces_run() -> None:
    class Long(Model):
        def forward(self) -> float:
            return sum(sample(Normal(0.0, 1.0)) for _ in range(5000))

    assert len(Long().prior(2, seed=0, max_choices=5000)) == 2  # exactly at the limit
    assert len(Long().prior(2, seed=0, max_choices=None, max_seconds=None)) == 2
    with pytest.raises(TraceLimitError):
        Long().prior(2, seed=0, max_choices=4999)


def test_a_bad_model_attribute_is_named() -> None:
    class Wrong(EndlessDraws):
        trace_limits = 1000  # type: ignore[assignment]

    with pytest.raises(TypeError, match="trace_limits must be a TraceLimits"):
        Wrong().posterior(5, seed=0)


def test_off_the_main_thread_both_limits_apply() -> None:
    class Spins(Model):  # a loop without random choices: only max_seconds can stop it
        def forward(self) -> float:
            x = sample(Normal(0.0, 1.0))
            while True:
                x += 1.0

    class Quick(Model):
        def forward(self) -> float:
            time.sleep(0.01)
            return sample(Normal(0.0, 1.0))

    out: dict[str, Any] = {}

    def work() -> None:
        for key, run in (
            ("spins", lambda: Spins().prior(2, seed=0, max_seconds=0.4)),
            ("draws", lambda: EndlessDraws().prior(2, seed=0, max_choices=1000)),
        ):
            started = time.monotonic()
            try:
                run()
            except TraceLimitError as exc:
                out[key] = (exc, time.monotonic() - started)
        # many short executions under a limit each respects: none is stopped
        out["quick"] = len(Quick().prior(60, seed=0, max_seconds=0.1))

    thread = threading.Thread(target=work, daemon=True)  # daemon: it spins on a failure
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "max_seconds did not stop the loop off the main thread"
    error, took = out["spins"]
    assert "longer than 0.4 s" in str(error) and "Spins" in str(error)
    assert took < 10  # stopped within 1-1.5 times the limit, plus a loaded machine's delays
    assert isinstance(out["draws"][0], TraceLimitError)
    assert out["quick"] == 60


def test_the_programs_own_alarm_timer_still_fires_and_is_restored() -> None:
    fired: list[float] = []

    def own(signum: int, frame: object) -> None:
        fired.append(time.monotonic())

    class Sleepy(Model):
        def forward(self) -> float:
            time.sleep(0.05)
            return sample(Normal(0.0, 1.0))

    previous = signal.signal(signal.SIGALRM, own)
    try:
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        Sleepy().prior(12, seed=0, max_seconds=100.0)  # ~0.6 s
        assert len(fired) == 1 and 0.15 < fired[0] - start < 0.5  # called while it ran
        assert signal.getsignal(signal.SIGALRM) is own
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        Sleepy().prior(2, seed=0, max_seconds=100.0)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 4.0 < left < 5.0  # not yet due: the rest of its delay
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def test_errors_inside_the_model_are_not_limits() -> None:
    class Fails(Model):
        def forward(self) -> None:
            raise KeyError("x")

    with pytest.raises(ModelError) as info:
        Fails().prior(3, seed=0)
    assert not isinstance(info.value, TraceLimitError)


def test_executors_carry_the_callers_limits_into_their_units() -> None:
    from rotalumis.core.executor import ThreadExecutor

    # limit_traces (and engine options such as max_choices=) is a context variable, which
    # the executor's threads do not inherit by themselves
    with limit_traces(max_choices=123, max_seconds=7.0):
        got = ThreadExecutor(2).map(lambda i: limits_for(EndlessDraws()), 2)
    assert got == [TraceLimits(123, 7.0)] * 2
