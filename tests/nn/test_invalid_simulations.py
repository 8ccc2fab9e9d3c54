"""Invalid simulations (runs that raise or produce NaN/inf): dropped and counted, or fatal.

The flaky simulator below fails in known shares: it raises when ``u < 0.1`` and returns
NaN when ``0.1 <= u < 0.25``, so 25% of its runs are invalid. Counts are checked against
that share with a 5-sigma binomial tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rotalumis.core.validity as validity
from rotalumis.core import (
    InvalidPolicy,
    LogNormal,
    Model,
    ModelError,
    Normal,
    SimulationCounter,
    Uniform,
    observe,
    sample,
)
from rotalumis.data import TraceDataset, generate_dataset
from rotalumis.nn import TrainingConfig, simulate_batch, train_network

torch.set_num_threads(1)
SMALL = {"lstm_dim": 16, "observation_dim": 16, "address_dim": 4, "value_dim": 4}


class Flaky(Model):
    """``u ~ U(0, 1)``: raises below 0.1, gives a NaN observation below 0.25, else fine."""

    def forward(self) -> float:
        u = sample(Uniform(0.0, 1.0), name="u")
        if u < 0.1:
            raise ZeroDivisionError("the solver divided by zero")
        x = sample(Normal(u, 1.0), name="x")
        observe(Normal(x, 1.0), name="y")
        return float("nan") if u < 0.25 else x


def _check_share(counter: SimulationCounter, valid: int) -> None:
    assert counter.runs == valid + counter.invalid
    for reason, p in (("raised ZeroDivisionError", 0.1), ("NaN/inf result", 0.15)):
        n = counter.reasons[reason]
        tol = 5 * math.sqrt(counter.runs * p * (1 - p))
        assert abs(n - p * counter.runs) < tol, (reason, n, counter.runs)
    assert set(counter.reasons) == {"raised ZeroDivisionError", "NaN/inf result"}
    assert counter.first_error is not None


def test_a_simulated_batch_drops_and_counts_invalid_runs() -> None:
    batch = simulate_batch(Flaky(), 400, seed=0)
    assert batch.size == 400  # the batch is full: the stream is drawn on
    assert batch.simulations is not None
    _check_share(batch.simulations, 400)
    u = next(g for g in batch.groups if g.address.endswith("Uniform__1")).values
    assert (u >= 0.25).all()  # only valid runs kept
    again = simulate_batch(Flaky(), 400, seed=0)  # reproducible from the seed
    assert np.array_equal(u, next(g for g in again.groups if g is again.groups[0]).values)


def test_raise_policy_stops_at_the_first_invalid_run() -> None:
    with pytest.raises(ModelError, match=r"ZeroDivisionError|NaN/inf") as info:
        simulate_batch(Flaky(), 100, seed=0, policy=InvalidPolicy("raise"))
    assert "on_invalid='drop'" in str(info.value)


def test_too_many_invalid_runs_is_an_error_naming_the_share() -> None:
    with pytest.raises(ModelError, match=r"of 100 simulations invalid \(\d+%\).*tolerated 10%"):
        simulate_batch(Flaky(), 200, seed=0, policy=InvalidPolicy(max_fraction=0.1))


def test_bad_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="on_invalid"):
        InvalidPolicy("ignore")
    with pytest.raises(ValueError, match="max_fraction"):
        InvalidPolicy(max_fraction=1.0)
    with pytest.raises(ValueError, match="on_invalid"):
        TrainingConfig(num_traces=10, on_invalid="keep")


def test_online_training_reports_the_invalid_share() -> None:
    config = TrainingConfig(num_traces=512, batch_size=64, valid_size=64, seed=0)
    result = train_network(model=Flaky(), config=config, network_sizes=SMALL)
    _check_share(result.simulations, 512)
    assert result.skipped_steps == 0
    assert all(bool(torch.isfinite(p).all()) for p in result.network.parameters())


def test_generated_dataset_holds_only_valid_traces_and_counts_the_rest(tmp_path) -> None:
    generate_dataset(Flaky(), tmp_path / "ds", 600, seed=1, traces_per_shard=200, workers=2)
    ds = TraceDataset(tmp_path / "ds")
    assert len(ds) == 600
    _check_share(ds.stats().simulations, 600)
    us = [v[0][0] for v in ds.read(["value"]).column("value").to_pylist()]
    assert min(us) >= 0.25
    # the same dataset without workers: counts come from the shards, not the process
    generate_dataset(Flaky(), tmp_path / "ds1", 600, seed=1, traces_per_shard=200)
    assert ds.stats().simulations == TraceDataset(tmp_path / "ds1").stats().simulations


class Overflow(Model):
    """A log-normal draw that overflows to ``inf`` in about a third of the runs."""

    def forward(self) -> None:
        x = sample(LogNormal(0.0, 2000.0), name="x")
        observe(Normal(0.0, 1.0), name="y")
        return x


def test_nan_loss_steps_are_skipped_not_trained_on(tmp_path, monkeypatch) -> None:
    # a dataset written without the validity check (as before it existed) holds inf values
    monkeypatch.setattr(validity, "invalid_reason", lambda trace: None)
    generate_dataset(Overflow(), tmp_path / "ds", 256, seed=0, traces_per_shard=256)
    monkeypatch.undo()
    config = TrainingConfig(num_traces=256, batch_size=32, valid_size=0, seed=0)
    result = train_network(dataset=TraceDataset(tmp_path / "ds"), config=config)
    assert result.skipped_steps > 0
    assert all(bool(torch.isfinite(p).all()) for p in result.network.parameters())


def test_invalid_reasons_name_the_site() -> None:
    trace = next(t for s in range(50) if (t := _trace(s)) is not None)
    assert validity.invalid_reason(trace) is None
    trace["x"].value = float("inf")
    assert validity.invalid_reason(trace) == "NaN/inf value at 'x'"


def _trace(seed: int):
    try:
        trace = Flaky().get_trace(seed=seed)
    except ZeroDivisionError:
        return None
    return trace if math.isfinite(trace.result) else None
