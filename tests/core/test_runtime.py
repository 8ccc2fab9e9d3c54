"""The handler stack, addresses, traces and primitives."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from rotalumis.core import (
    RNG,
    BlockHandler,
    ConditionHandler,
    FunctionModel,
    Handler,
    Model,
    Normal,
    ObservationError,
    ReplayHandler,
    TraceHandler,
    Uniform,
    current_execution,
    factor,
    model,
    observe,
    sample,
    tag,
)
from rotalumis.core.runtime import get_stack as get_stack_for_tests
from rotalumis.models import HiddenMarkovModel


def helper(name: str) -> float:
    return sample(Normal(0.0, 1.0), name=name)  # names are unique within a trace


class Nested(Model):
    def forward(self) -> float:
        a = sample(Normal(0.0, 1.0), name="a")
        b = helper("h1")
        c = helper("h2")
        observe(Normal(a + b + c, 1.0), name="y")
        tag(a * 2, "twice_a")
        return a


def test_addresses_follow_the_call_stack() -> None:
    trace = Nested().get_trace(seed=0)
    addresses = [v.address for v in trace]
    assert addresses[0].startswith("forward:") and addresses[0].endswith("__Normal__1")
    # the helper is called from two different lines: two different call paths
    assert addresses[1].split("/")[1].startswith("helper:")
    assert addresses[1] != addresses[2]
    assert addresses[1].endswith("__Normal__1") and addresses[2].endswith("__Normal__1")
    assert addresses[3].endswith("__Normal__1")  # the observation
    assert trace.trace_type == tuple(addresses[:3])


def test_repeated_visits_get_instance_counters() -> None:
    @model
    def loop() -> None:
        for _ in range(3):
            sample(Uniform(0.0, 1.0))

    addrs = [v.address for v in loop.get_trace(seed=1)]
    base = addrs[0].rsplit("__", 1)[0]
    assert addrs == [f"{base}__{i}" for i in (1, 2, 3)]
    assert base.startswith("loop:")


def test_address_override() -> None:
    @model
    def m() -> None:
        sample(Normal(0.0, 1.0), address="my_site")
        sample(Normal(0.0, 1.0), address="my_site")

    assert [v.address for v in m.get_trace(seed=0)] == [
        "my_site__Normal__1",
        "my_site__Normal__2",
    ]


def test_addresses_stable_across_processes() -> None:
    code = (
        "from rotalumis.models import HiddenMarkovModel as M\n"
        "print('|'.join(v.address for v in M().get_trace(seed=3)))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(runs) == 1
    here = "|".join(v.address for v in HiddenMarkovModel().get_trace(seed=3))
    assert runs == {here}


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    m = Nested()
    a = [v.value for v in m.get_trace(seed=7)]
    b = [v.value for v in m.get_trace(seed=7)]
    c = [v.value for v in m.get_trace(seed=8)]
    assert a == b
    assert a != c


def test_trace_log_probabilities() -> None:
    trace = Nested().get_trace(seed=0, observe={"y": 0.5})
    a, b, c = (v.value for v in trace.samples)
    prior = sum(Normal(0.0, 1.0).log_prob(x) for x in (a, b, c))
    like = Normal(a + b + c, 1.0).log_prob(0.5)
    assert trace.log_prior == pytest.approx(prior)
    assert trace.log_likelihood == pytest.approx(like)
    assert trace.log_prob == pytest.approx(prior + like)
    assert trace.log_importance_weight == pytest.approx(like)
    assert trace["twice_a"].value == pytest.approx(2 * a)
    assert trace.named_latents.keys() == {"a", "h1", "h2"}


def test_stack_unwinds_when_the_model_raises() -> None:
    class Boom(Model):
        def forward(self) -> None:
            sample(Normal(0.0, 1.0))
            raise RuntimeError("simulator crashed")

    before = get_stack_for_tests()
    with pytest.raises(RuntimeError, match="crashed"), TraceHandler(), ConditionHandler({}):
        Boom().execute(RNG(0))
    assert get_stack_for_tests() == before


def test_handler_as_decorator_and_wrapper() -> None:
    seen: list[str] = []

    class Recorder(Handler):
        def postprocess(self, msg) -> None:  # type: ignore[no-untyped-def]
            seen.append(msg.kind)

    @Recorder()
    def run() -> None:
        Nested().execute(RNG(0))

    run()
    assert seen == ["sample", "sample", "sample", "observe", "tag"]


def test_block_hides_messages_from_outer_handlers() -> None:
    with TraceHandler() as tracer, BlockHandler(names=["h1", "h2"]):
        Nested().execute(RNG(0))
    assert [v.name for v in tracer.trace] == ["a", "y", "twice_a"]


def test_replay_reuses_values() -> None:
    first = Nested().get_trace(seed=1)
    with TraceHandler() as tracer, ReplayHandler(first):
        Nested().execute(RNG(99))
    assert [v.value for v in tracer.trace.samples] == [v.value for v in first.samples]


def test_condition_on_sample_site_clamps_it() -> None:
    trace = Nested().get_trace(seed=0, observe={"a": 0.25})
    assert trace["a"].value == 0.25 and trace["a"].observed
    assert len(trace.trace_type) == 2


def test_factor_adds_to_the_likelihood() -> None:
    @model
    def m() -> None:
        factor(-1.5)

    assert m.get_trace(seed=0).log_likelihood == pytest.approx(-1.5)
    with pytest.raises(ObservationError):
        model(lambda: factor(float("nan"))).get_trace(seed=0)


def test_non_finite_observation_is_rejected() -> None:
    with pytest.raises(ObservationError, match="y"):
        Nested().get_trace(seed=0, observe={"y": float("inf")})
    with pytest.raises(ObservationError, match="'z'"):
        ConditionHandler({"z": [1.0, float("nan")]})


def test_stacks_are_per_thread() -> None:
    results: list[int] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with TraceHandler() as tracer:
            barrier.wait()
            Nested().execute(RNG(0))
        results.append(len(tracer.trace))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [5, 5]


def test_sample_outside_a_model_draws_from_the_distribution() -> None:
    x = sample(Normal(0.0, 1.0))
    assert isinstance(x, float)
    with pytest.raises(TypeError, match="Distribution"):
        sample(0.5)  # type: ignore[arg-type]


def test_holds_are_released_when_the_block_of_executions_ends() -> None:
    """What code above the core keeps in ``Execution.holds`` lives as long as the engine's
    block of executions (or the one execution of ``execute``), and is released once, also
    when a release raises."""
    log: list[str] = []

    class Held:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def release(self) -> None:
            log.append(f"released {self.name}")
            if self.fail:
                raise RuntimeError(self.name)

    def forward() -> int:
        ex = current_execution()
        assert ex is not None
        if "a" not in ex.holds:  # the first execution of the block
            log.append("held")
            ex.holds["a"] = Held("a").release
        log.append("ran")
        return 0

    m = FunctionModel(forward, "holds")
    m.prior(3, seed=0, progress=False)
    assert log == ["held", "ran", "ran", "ran", "released a"]
    log.clear()
    m.execute(RNG(0))
    assert log == ["held", "ran", "released a"]

    def failing() -> int:
        ex = current_execution()
        assert ex is not None
        ex.holds["x"] = Held("x", fail=True).release
        ex.holds["y"] = Held("y").release
        return 0

    log.clear()
    m.fn = failing
    with pytest.raises(RuntimeError, match="x"):
        m.execute(RNG(0))
    assert sorted(log) == ["released x", "released y"]
