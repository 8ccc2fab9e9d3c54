"""Batched surrogate executions (drafts in lockstep) against one execution at a time.

The batched path must give traces of the same distribution as the one-at-a-time path, with
the same log-densities for the same values. Exact references: on the Branching surrogate
(argmax transitions) the first site, ``n``, is always drawn after the same history, so its
distribution ``q(n)`` is read exactly off one unbatched execution; likewise the first
Bernoulli given ``n`` (replayed). Frequencies of the batched prior traces are compared with
these within Z = 5 Monte Carlo standard errors (tests/infer/mc.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import ConditionHandler, Model, Normal, ReplayHandler, Trace, observe, sample
from rotalumis.models import Branching
from rotalumis.surrogate import SurrogateConfig, SurrogateModel, SurrogateTraining, train_surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from mc import Z, indicator_stderr

_NETWORK: list[SurrogateModel] = []


def surrogate(batch: int) -> SurrogateModel:
    if not _NETWORK:
        torch.manual_seed(0)
        model = Branching()
        result = train_surrogate(
            model, SurrogateConfig(), SurrogateTraining(num_traces=2000, epochs=2, seed=1)
        )
        _NETWORK.append(result.model)
    s = _NETWORK[0]
    return SurrogateModel(s.network, s.simulator, batch=batch)


def _scores(trace: Trace) -> dict[str, float]:
    return {m.address: float(m.log_prob) for m in trace if m.kind in ("sample", "observe")}


def _rescored(trace: Trace) -> Trace:
    """The same values (observations included) run through the one-at-a-time surrogate."""
    values = {m.address: m.value for m in trace.samples}
    observed = {m.name: m.value for m in trace.observations}
    handlers = (ReplayHandler(values), ConditionHandler(observed))
    one = surrogate(1)
    (again,) = list(one.traces(1, seed=99, handlers=handlers))
    return again


def test_batched_traces_score_as_one_at_a_time() -> None:
    batched = list(surrogate(64).traces(150, seed=0))
    for trace in batched:
        again = _rescored(trace)
        assert [m.address for m in again] == [m.address for m in trace]
        want, got = _scores(again), _scores(trace)
        for address, lp in want.items():
            assert math.isclose(got[address], lp, rel_tol=1e-5, abs_tol=1e-5), address


def test_conditioned_traces_use_speculation_and_score_as_one_at_a_time() -> None:
    observe = {"obs": 3.0}
    s = surrogate(16)
    traces = list(s.traces(100, seed=1, handlers=(ConditionHandler(observe),)))
    for trace in traces:
        obs = [m for m in trace.observations if m.name == "obs"]
        assert obs and obs[0].value == 3.0
        want, got = _scores(_rescored(trace)), _scores(trace)
        assert want.keys() == got.keys()
        for address, lp in want.items():
            assert math.isclose(got[address], lp, rel_tol=1e-5, abs_tol=1e-5), address
    (stream,) = s._drafts._queues.values()
    assert stream.guesses, "the observation was never speculated"


def test_batched_prior_matches_the_exact_first_choices() -> None:
    """q(n) and q(first Bernoulli | n) of the network, against batched frequencies."""
    one = surrogate(1)
    first = next(iter(one.traces(1, seed=5)))
    n_site = first.samples[0]
    q_n = [math.exp(float(n_site.distribution.log_prob(k))) for k in range(12)]
    q_b: dict[int, float] = {}
    for k in (2, 3, 4):
        replayed = next(iter(one.traces(1, seed=6, handlers=(ReplayHandler({n_site.address: k}),))))
        b = replayed.samples[1]
        q_b[k] = math.exp(float(b.distribution.log_prob(1)))
    traces = list(surrogate(64).traces(6000, seed=7))
    n = np.asarray([t.samples[0].value for t in traces], dtype=float)
    for k in range(8):
        ind = (n == k).astype(float)
        se = max(indicator_stderr(ind, None, q_n[k]), 1e-3)
        assert abs(ind.mean() - q_n[k]) < Z * se, f"q(n={k}): {ind.mean():.4f} vs {q_n[k]:.4f}"
    for k, p in q_b.items():
        ones = np.asarray(
            [float(t.samples[1].value) for t in traces if t.samples[0].value == k], dtype=float
        )
        se = max(indicator_stderr(ones, None, p), 1e-3)
        assert abs(ones.mean() - p) < Z * se, f"q(b=1 | n={k}): {ones.mean():.4f} vs {p:.4f}"


def test_batched_traces_are_reproducible_and_one_at_a_time_is_unchanged() -> None:
    def values(batch: int, seed: int) -> list[list[float]]:
        return [[float(m.value) for m in t.samples] for t in surrogate(batch).traces(80, seed=seed)]

    assert values(32, 3) == values(32, 3)
    assert values(1, 3) == values(1, 3)
    assert values(32, 3) != values(32, 4)


def test_bad_batch_is_refused() -> None:
    s = surrogate(1)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch"):
            SurrogateModel(s.network, batch=bad)  # type: ignore[arg-type]


class _VectorObservation(Model):
    """A flow-head observation (a 2-vector) after a scalar mixture-head choice."""

    def forward(self) -> float:
        theta = sample(Normal(0.0, 1.0), name="theta")
        observe(Normal(torch.tensor([theta, 2.0 * theta]), 0.5), name="y")
        return theta


def test_flow_heads_drafted_in_a_batch_score_as_one_at_a_time() -> None:
    """Drawn (prior) and speculated (conditioned) flow values: batched densities are those
    of the one-at-a-time surrogate, whose flow is conditioned on one row."""
    trained = train_surrogate(
        _VectorObservation(),
        SurrogateConfig(lstm_dim=16, address_dim=4, value_dim=4, flow_transforms=2),
        SurrogateTraining(num_traces=200, seed=3),
    )
    assert trained.network.specs[-1].site.proposal == "flow"
    one = SurrogateModel(trained.network, batch=1)
    batched = SurrogateModel(trained.network, batch=32)
    y = torch.tensor([0.5, 1.0])
    for handlers in ((), (ConditionHandler({"y": y}),)):
        for trace in list(batched.traces(40, seed=2, handlers=handlers)):
            values = {m.address: m.value for m in trace.samples}
            replay = (ReplayHandler(values), ConditionHandler({"y": trace["y"].value}))
            (again,) = list(one.traces(1, seed=9, handlers=replay))
            want, got = _scores(again), _scores(trace)
            assert want.keys() == got.keys()
            for address, lp in want.items():
                assert math.isclose(got[address], lp, rel_tol=1e-4, abs_tol=1e-4), address
    streams = list(batched._drafts._queues.values())
    assert any(s.guesses for s in streams), "the observation was never speculated"
