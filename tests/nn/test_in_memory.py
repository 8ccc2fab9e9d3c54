"""Offline training from memory (``in_memory=True``): the dataset decoded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from rotalumis.core import CheckpointError
from rotalumis.data import TraceBatch, TraceDataset
from rotalumis.models import Branching, UnknownMean
from rotalumis.nn import BudgetConfig, TrainingConfig, train_network, train_on_dataset
from rotalumis.nn.training._memory import memory_steps, select
from rotalumis.nn.training._progress import Progress

torch.set_num_threads(1)
SIZES = {"lstm_dim": 16, "observation_dim": 16}


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def branching(tmp_path_factory) -> TraceDataset:
    directory = tmp_path_factory.mktemp("branching")
    return TraceDataset.generate(Branching(), directory, 120, seed=1, traces_per_shard=40)


def assert_same_batch(a: TraceBatch, b: TraceBatch) -> None:
    assert a.size == b.size and a.trace_types == b.trace_types
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert a.observations.keys() == b.observations.keys()
    for name in a.observations:
        np.testing.assert_array_equal(a.observations[name], b.observations[name])
    by_address = {g.address: g for g in b.groups}
    assert sorted(by_address) == sorted(g.address for g in a.groups)
    for g in a.groups:
        h = by_address[g.address]
        assert (g.distribution, g.value_shape, g.name) == (h.distribution, h.value_shape, h.name)
        for field in ("rows", "steps", "values", "params", "log_prior"):
            np.testing.assert_array_equal(getattr(g, field), getattr(h, field), err_msg=field)


def test_selected_traces_are_those_traces_decoded(branching: TraceDataset) -> None:
    table = pa.concat_tables(branching.iter_tables(1000, shuffle=False, group_by_type=False))
    every = TraceBatch.from_arrow(table)
    assert len({*every.trace_types}) > 1  # traces of several structures
    idx = np.random.default_rng(0).permutation(every.size)[:37]
    assert_same_batch(select(every, idx), TraceBatch.from_arrow(table.take(pa.array(idx))))


def test_each_epoch_trains_on_every_trace_once(branching: TraceDataset) -> None:
    progress = Progress()
    steps = memory_steps(branching, 16, 0, progress)
    every = pa.concat_tables(branching.iter_tables(1000, shuffle=False))
    expected = sorted(TraceBatch.from_arrow(every).observations["obs"].ravel().tolist())
    for epoch in range(2):
        seen: list[float] = []
        for _ in range(-(-len(branching) // 16)):  # the epoch's steps
            batch, size = next(steps)
            assert size == batch.size <= 16 and progress.epoch == epoch
            seen.extend(batch.observations["obs"].ravel().tolist())
        assert sorted(seen) == expected


def test_in_memory_training_resumes_after_a_kill_as_if_uninterrupted(
    branching: TraceDataset, tmp_path: Path
) -> None:
    cfg = TrainingConfig(num_traces=480, batch_size=32, valid_size=0, checkpoint_every=64,
                         seed=3)  # fmt: skip
    full = train_network(dataset=branching, config=cfg, network_sizes=SIZES, in_memory=True)

    def kill(traces: int, total: int, loss: float) -> None:
        if traces > 200:  # mid-epoch (120 traces an epoch): resumes inside the epoch
            raise Killed

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        train_network(dataset=branching, config=cfg, network_sizes=SIZES, in_memory=True,
                      checkpoint=ckpt, on_step=kill)  # fmt: skip
    resumed = train_network(dataset=branching, config=cfg, network_sizes=SIZES, in_memory=True,
                            checkpoint=ckpt)  # fmt: skip
    assert resumed.steps == full.steps
    a, b = full.network.state_dict(), resumed.network.state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    # a streamed run is another run: its checkpoint is not resumed from memory
    with pytest.raises(CheckpointError, match="it trained from memory"):
        train_network(dataset=branching, config=cfg, network_sizes=SIZES, checkpoint=ckpt)


def test_in_memory_budget_training_learns_like_streaming(tmp_path: Path) -> None:
    from rotalumis.nn import simulate_dataset

    sims = simulate_dataset(UnknownMean(num_obs=4), tmp_path / "s", 300, valid_fraction=0.2,
                            seed=2)  # fmt: skip
    config = BudgetConfig(max_epochs=300, patience=3, batch_size=16, learning_rate=1e-2, seed=4,
                          in_memory=True)  # fmt: skip
    result = train_on_dataset(sims, config=config, network_sizes=SIZES)
    assert result.stopped_early
    losses = [v for _, v in result.valid_loss]
    assert result.best_valid_loss[1] == min(losses) < losses[0]


def test_in_memory_needs_a_dataset() -> None:
    with pytest.raises(ValueError, match="in_memory=True is for offline training"):
        train_network(model=UnknownMean(), config=TrainingConfig(num_traces=8), in_memory=True)
