"""The recording hot path: memoised call-site addresses and the direct prior-recording path
must give exactly what the generic path gives (addresses, values, log-probabilities)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from rotalumis.core import FunctionModel, Normal, Uniform, observe, sample
from rotalumis.core.handlers import TraceHandler
from rotalumis.core.rng import RNG
from rotalumis.core.runtime import Message


def _helper() -> float:
    return float(sample(Normal(0.0, 1.0)))


def _two_callers() -> list[float]:
    out = []
    for _ in range(3):
        out.append(_helper())  # the helper's parent frame is the same, its instruction differs
        out.append(_helper())
    return out


def _gen() -> Iterator[float]:
    while True:
        yield float(sample(Uniform(0.0, 1.0)))


def _resumed_from_two_places() -> list[float]:
    g = _gen()
    out = []
    for _ in range(2):
        out.append(_first(g))
        out.append(_second(g))
    return out


def _first(g: Iterator[float]) -> float:
    return next(g)


def _second(g: Iterator[float]) -> float:
    return next(g)


def _addresses(fn: Any) -> list[str]:
    trace = FunctionModel(fn, "m").get_trace(seed=0)
    return [v.address for v in trace.variables]


def test_memoised_address_follows_the_caller() -> None:
    addrs = _addresses(_two_callers)
    lines = {a.split("/")[0] for a in addrs}
    assert len(lines) == 2, addrs  # two call sites of the helper, not one remembered
    assert addrs[0].endswith("__Normal__1") and addrs[2].endswith("__Normal__2")
    assert addrs[0] != addrs[1]


def test_generator_resumed_elsewhere_gets_the_resumers_address() -> None:
    addrs = _addresses(_resumed_from_two_places)
    assert "_first:" in addrs[0] and "_second:" in addrs[1]
    assert "_first:" in addrs[2] and "_second:" in addrs[3]
    assert addrs[2].endswith("__Uniform__2")


def test_many_visits_of_one_site() -> None:
    def loop() -> list[Any]:
        return [sample(Normal(0.0, 1.0)) for _ in range(1500)]

    model = FunctionModel(loop, "m")
    for _ in range(2):  # the second execution reads the addresses built by the first
        addrs = [v.address for v in model.get_trace(seed=1).variables]
        assert [a.rsplit("__", 1)[1] for a in addrs] == [str(i) for i in range(1, 1501)]
        assert len(set(addrs)) == 1500


class _CopyingTracer(TraceHandler):
    """Records like a trace handler but through its own postprocess: the generic path."""

    def postprocess(self, msg: Message) -> None:
        self.trace.add(msg)


def _run(handler: TraceHandler, fn: Any) -> list[tuple[Any, ...]]:
    model = FunctionModel(fn, "m")
    with model.executions(RNG(7)) as execute, handler:
        handler.trace.result = execute()
    return [(v.address, v.value, v.log_prob, v.name) for v in handler.trace.variables]


def test_direct_recording_equals_the_generic_path() -> None:
    def fn() -> float:
        x = sample(Normal(0.0, 1.0), name="x")
        ys = [sample(Uniform(0.0, 2.0)) for _ in range(20)]
        return float(x + sum(ys) + _helper())

    fast, slow = _run(TraceHandler(), fn), _run(_CopyingTracer(), fn)
    assert fast == slow
    assert len(fast) == 22


def _mixed() -> float:
    """Deferred sites (unnamed, scalar) between sites recorded at once."""
    total = 0.0
    for i in range(4):
        total += sample(Normal(0.0, 1.0))  # deferred
        total += sample(Uniform(-1.0, 1.0), control=i % 2 == 0)  # deferred, either control
    total += sample(Normal(1.0, 2.0), name="named")  # at once: settles the pending ones
    total += float(sample(Normal(torch.zeros(2), 1.0)).sum())  # tensor value: at once
    total += sample(Normal(total, 1.0))  # deferred again
    observe(Normal(total, 1.0), 0.5, name="y")  # at once
    return total + sample(Normal(0.0, 3.0))


def _sites(trace: Any) -> list[tuple[Any, ...]]:
    return [
        (v.kind, v.address, v.base_address, v.name, v.control, v.observed, v.log_prob)
        + (tuple(v.value.tolist()) if isinstance(v.value, torch.Tensor) else (v.value,))
        for v in trace.variables
    ]


def test_deferred_sites_settle_exactly_as_recorded_at_once() -> None:
    model = FunctionModel(_mixed, "m")
    fast, slow = TraceHandler(), _CopyingTracer()
    for handler in (fast, slow):
        with model.executions(RNG(11)) as execute, handler:
            handler.trace.result = execute()
    assert fast.trace.pending and not slow.trace.pending  # the direct path deferred some
    assert fast.trace.log_prior == slow.trace.log_prior  # summed in the same order
    assert fast.trace.log_likelihood == slow.trace.log_likelihood
    assert not fast.trace.pending
    assert _sites(fast.trace) == _sites(slow.trace)
    assert [v.kind for v in fast.trace.variables].count("sample") == 12


def test_a_trace_read_during_the_execution_is_complete() -> None:
    tracer = TraceHandler()
    seen: list[int] = []

    def fn() -> None:
        for _ in range(3):
            sample(Normal(0.0, 1.0))
            seen.append(len(tracer.trace.variables))
        seen.append(len(tracer.trace))

    model = FunctionModel(fn, "m")
    with model.executions(RNG(0)) as execute, tracer:
        execute()
    assert seen == [1, 2, 3, 3]
