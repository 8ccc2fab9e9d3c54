"""Engines in worker processes (``workers=N``): the same results as in one process.

Importance sampling draws execution ``i`` from the stream of its chunk (``i // CHUNK``) and
MCMC chain ``c`` from ``spawn(c)`` wherever they run, so results must be identical, not
merely close, for any number of workers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rotalumis.core import Model, Normal, ObservationError, observe, sample
from rotalumis.infer.importance import CHUNK
from rotalumis.models import Branching, GaussianMixture, UnknownMean
from rotalumis.nn import TrainingConfig, UnseenAddressWarning, train_network

torch.set_num_threads(1)
OBS = {"obs0": 8.0, "obs1": 9.0}


def same(a, b) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(np.asarray(a.log_weights), np.asarray(b.log_weights))
    np.testing.assert_array_equal(
        np.asarray(a.to_numpy(), dtype=float), np.asarray(b.to_numpy(), dtype=float)
    )


@pytest.mark.parametrize("engine", ["prior", "is"])
def test_importance_sampling_in_workers_equals_one_process(engine: str) -> None:
    n = 2 * CHUNK + 300  # three chunks, the last one partial
    model = GaussianMixture()
    kw = {"observe": {"obs": 1.0}, "seed": 4, "progress": False}
    serial = model.posterior(n, engine=engine, **kw)
    for workers in (1, 2, 3):
        parallel = model.posterior(n, engine=engine, workers=workers, **kw)
        same(serial, parallel)
        same(serial.get("k"), parallel.get("k"))
        assert parallel.info.engine == engine


def test_chunks_are_independent_streams() -> None:
    post = UnknownMean().posterior(2 * CHUNK, engine="is", observe=OBS, seed=1, progress=False)
    values = np.asarray(post.to_numpy(), dtype=float)
    assert not np.array_equal(values[:CHUNK], values[CHUNK:])


def test_mcmc_chains_in_workers_equal_one_process() -> None:
    kw = {"observe": OBS, "seed": 2, "progress": False, "num_chains": 3, "burn_in": 50}
    serial = UnknownMean().posterior(400, engine="rmh", **kw)
    parallel = UnknownMean().posterior(400, engine="rmh", workers=2, **kw)
    same(serial, parallel)
    assert parallel.info.chains == serial.info.chains
    assert parallel.info.log_prob == serial.info.log_prob


def test_pseudo_marginal_chains_in_workers_equal_one_process() -> None:
    kw = {"observe": {"obs": 1.0}, "seed": 3, "progress": False, "num_chains": 3}
    kw |= {"params": ["k"], "num_particles": 3, "burn_in": 20}
    serial = GaussianMixture().posterior(300, engine="pmmh", **kw)
    parallel = GaussianMixture().posterior(300, engine="pmmh", workers=2, **kw)
    same(serial, parallel)
    same(serial.get("k"), parallel.get("k"))
    assert parallel.chains == serial.chains == (300, 300, 300)
    assert parallel.info.chains == serial.info.chains


def test_inference_compilation_in_workers() -> None:
    model = Branching(rate=1.0)
    config = TrainingConfig(num_traces=256, batch_size=32, valid_size=0, seed=0)
    net = train_network(model=model, config=config, network_sizes={"lstm_dim": 16}).network
    kw = {"observe": {"obs": 3.0}, "seed": 5, "network": net, "progress": False}
    with warnings.catch_warnings(record=True) as serial_warnings:
        warnings.simplefilter("always", UnseenAddressWarning)
        serial = model.posterior(CHUNK + 200, engine="ic", **kw)
    with warnings.catch_warnings(record=True) as parallel_warnings:
        warnings.simplefilter("always", UnseenAddressWarning)
        parallel = model.posterior(CHUNK + 200, engine="ic", workers=2, **kw)
    same(serial, parallel)
    assert parallel.info.proposal == serial.info.proposal
    assert serial.info.unseen_addresses, "expected addresses the short training missed"
    # warnings raised in the workers reach the caller, once per message
    assert {str(w.message) for w in parallel_warnings} == {str(w.message) for w in serial_warnings}


class Crashes(Model):
    def forward(self) -> None:
        x = sample(Normal(0.0, 1.0), name="x")
        if x > 3.0:
            raise RuntimeError(f"simulator crashed at x={x:.2f}")
        observe(Normal(x, 1.0), name="y")


class OneConnection(UnknownMean):
    supports_worker_processes = False


def test_errors_in_workers_reach_the_caller() -> None:
    with pytest.raises(RuntimeError, match="simulator crashed at x="):
        Crashes().posterior(20_000, engine="is", observe={"y": 0.0}, seed=0, workers=2)
    with pytest.raises(ObservationError, match="never observes nope"):
        UnknownMean().posterior(10, engine="is", observe={"nope": 1.0}, seed=0, workers=2)
    with pytest.raises(ValueError, match="cannot run in worker processes"):
        OneConnection().posterior(10, engine="is", observe=OBS, workers=2)
    with pytest.raises(ValueError, match="cannot run in worker processes"):
        OneConnection().posterior(10, engine="lmh", observe=OBS, num_chains=2, workers=2)
    with pytest.raises(ValueError, match="non-negative integer"):
        UnknownMean().posterior(10, engine="is", observe=OBS, workers=-1)


# -- online training: simulation in worker processes ----------------------------------------
SMALL = {"lstm_dim": 16, "observation_dim": 16, "address_dim": 8, "value_dim": 4}


def test_training_with_simulation_workers_gives_the_same_network() -> None:
    cfg = TrainingConfig(num_traces=384, batch_size=32, valid_size=0, seed=7)
    serial = train_network(model=Branching(), config=cfg, network_sizes=SMALL)
    parallel = train_network(model=Branching(), config=cfg, network_sizes=SMALL, workers=2)
    assert [t for t, _ in parallel.loss] == [t for t, _ in serial.loss]
    a, b = serial.network.state_dict(), parallel.network.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_simulation_worker_errors_reach_the_trainer() -> None:
    cfg = TrainingConfig(num_traces=20_000, batch_size=32, valid_size=0, on_invalid="raise")
    with pytest.raises(RuntimeError, match="simulator crashed at x="):
        train_network(model=Crashes(), config=cfg, network_sizes=SMALL, workers=1)
    with pytest.raises(ValueError, match="cannot run in worker processes"):
        train_network(model=OneConnection(), config=cfg, workers=1)
    with pytest.raises(ValueError, match="workers must be a non-negative integer"):
        train_network(model=UnknownMean(), config=cfg, workers=-1)


def test_dataset_shards_written_by_workers_are_the_same(tmp_path) -> None:
    import pyarrow.parquet as pq

    from rotalumis.data import TraceDataset

    a = TraceDataset.generate(Branching(), tmp_path / "a", 700, seed=3, traces_per_shard=100)
    progress: list[tuple[int, int]] = []
    b = TraceDataset.generate(
        Branching(),
        tmp_path / "b",
        700,
        seed=3,
        traces_per_shard=100,
        workers=2,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert len(a) == len(b) == 700 and b.complete
    for k in range(7):
        name = f"shard-{k:06d}.parquet"
        assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(tmp_path / "b" / name))
    assert a.stats().trace_types == b.stats().trace_types
    assert progress[0] == (0, 700) and progress[-1] == (700, 700)
    # resume after a lost shard, in workers: only that shard is written again
    (tmp_path / "b" / "shard-000003.parquet").unlink()
    TraceDataset.generate(Branching(), tmp_path / "b", 700, seed=3, traces_per_shard=100, workers=2)
    name = "shard-000003.parquet"
    assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(tmp_path / "b" / name))
