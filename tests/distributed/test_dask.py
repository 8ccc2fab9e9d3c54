"""Engines and the dataset writer on a real Dask ``LocalCluster``: identical results.

Every work unit draws from streams derived from its index only (importance-sampling chunk
``k`` from ``derive_seed(seed, "chunk", k)``, chain ``c`` from ``spawn(c)``, shard ``k``
from ``derive_seed(seed, "shard", k)``), so results must be identical, not merely close,
for the fork pool and for Dask with any number of workers, and when a worker dies mid-run
and its units are run again elsewhere.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from faults import killed_when_busy

from rotalumis.core import Model, ModelError, Normal, observe, sample
from rotalumis.data import generate_dataset
from rotalumis.distributed import DaskExecutor, open_executor
from rotalumis.infer.importance import CHUNK
from rotalumis.models import GaussianMixture, UnknownMean

distributed = pytest.importorskip("dask.distributed")

torch.set_num_threads(1)
# each cluster takes seconds to start (minutes on a loaded machine)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
OBS = {"obs0": 8.0, "obs1": 9.0}


def same(a, b) -> None:
    """Identical results: the same weights and values, sample by sample."""
    for x, y in ((a.log_weights, b.log_weights), (a.to_numpy(), b.to_numpy())):
        np.testing.assert_array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


@pytest.fixture(scope="module")
def clusters():
    """Dask executors with one and two single-threaded worker processes."""
    with DaskExecutor("local:1") as one, DaskExecutor("local:2") as two:
        yield {1: one, 2: two}


def test_importance_sampling_and_mcmc_are_identical_on_any_executor(clusters) -> None:
    n = 3 * CHUNK + 50
    model = GaussianMixture()
    kw = {"observe": {"obs": 1.0}, "seed": 4, "progress": False}
    serial = model.posterior(n, engine="is", **kw)
    prior = model.prior(n, seed=4, progress=False)
    chains = {"observe": OBS, "seed": 2, "progress": False, "num_chains": 3, "burn_in": 20}
    mcmc = UnknownMean().posterior(150, engine="rmh", **chains)
    runs = {"fork 2": {"workers": 2}} | {f"dask {k}": {"cluster": ex} for k, ex in clusters.items()}
    for where in runs.values():
        same(serial, model.posterior(n, engine="is", **kw, **where))
        same(prior, model.prior(n, seed=4, progress=False, **where))
        parallel = UnknownMean().posterior(150, engine="rmh", **chains, **where)
        same(mcmc, parallel)
        assert parallel.info.chains == mcmc.info.chains


def test_a_client_or_its_address_is_accepted(clusters) -> None:
    client = clusters[2].client
    kw = {"observe": OBS, "seed": 1, "progress": False}
    serial = UnknownMean().posterior(2 * CHUNK, **kw)
    same(serial, UnknownMean().posterior(2 * CHUNK, cluster=client, **kw))
    same(serial, UnknownMean().posterior(2 * CHUNK, cluster=client.scheduler.address, **kw))
    assert client.status == "running"  # a caller's client is not closed


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.parquet"))}


def test_dataset_on_a_cluster_is_identical_and_resumable(clusters, tmp_path: Path) -> None:
    model = GaussianMixture()
    kw = {"seed": 7, "traces_per_shard": 40}
    generate_dataset(model, tmp_path / "here", 200, **kw)
    generate_dataset(model, tmp_path / "fork", 200, workers=2, **kw)
    generate_dataset(model, tmp_path / "dask", 200, cluster=clusters[2], **kw)
    expected = _files(tmp_path / "here")
    assert len(expected) == 5
    assert _files(tmp_path / "fork") == expected
    assert _files(tmp_path / "dask") == expected
    # an interrupted generation (two shards missing, one truncated) resumed on the cluster
    (tmp_path / "dask" / "shard-000001.parquet").unlink()
    (tmp_path / "dask" / "shard-000004.parquet").unlink()
    truncated = tmp_path / "dask" / "shard-000002.parquet"
    truncated.write_bytes(truncated.read_bytes()[:100])
    generate_dataset(model, tmp_path / "dask", 200, cluster=clusters[1], **kw)
    assert _files(tmp_path / "dask") == expected
    assert not [p for p in (tmp_path / "dask").iterdir() if p.name.startswith(".")]


class Slow(Model):
    """Unknown mean with a simulator that takes 2 ms per execution."""

    def forward(self) -> None:
        mu = sample(Normal(0.0, 1.0), name="mu")
        time.sleep(0.002)
        observe(Normal(mu, 1.0), name="y")


def test_a_worker_killed_mid_run_changes_nothing(clusters) -> None:
    executor = clusters[2]
    client = executor.client
    n = 24 * CHUNK  # 1536 traces, ~3 s of simulation: 8 units
    kw = {"observe": {"y": 0.5}, "seed": 9, "progress": False}
    serial = Slow().posterior(n, **kw)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    with killed_when_busy(client, victim, after=0.5) as state:
        parallel = Slow().posterior(n, cluster=executor, **kw)
    assert state["killed"], "the worker was not killed during the run"
    same(serial, parallel)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert victim not in client.run(os.getpid).values()


class Crashes(Model):
    def forward(self) -> None:
        x = sample(Normal(0.0, 1.0), name="x")
        if x > 3.0:
            raise RuntimeError(f"simulator crashed at x={x:.2f}")
        observe(Normal(x, 1.0), name="y")


def test_a_raising_simulator_names_the_unit_and_its_seed(clusters) -> None:
    with pytest.raises(ModelError, match="simulator crashed at x=") as info:
        Crashes().posterior(20_000, observe={"y": 0.0}, seed=0, cluster=clusters[2])
    message = str(info.value)
    assert "work unit" in message and "drawing from the stream with seed" in message
    # the same trace as in one process: the failing unit with the lowest index is reported
    with pytest.raises(ModelError) as here:
        Crashes().posterior(20_000, observe={"y": 0.0}, seed=0)
    assert str(here.value).split(";")[0] in message


def test_bad_cluster_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="not both"), open_executor(None, 2, "local:2"):
        pass
    with pytest.raises(ValueError, match="at least one worker"), open_executor(None, 0, "local:0"):
        pass
    with pytest.raises(ValueError, match="neither 'local'"), open_executor(None, 0, "nowhere"):
        pass
    with pytest.raises(ValueError, match="cluster must be"), open_executor(None, 0, 42):
        pass


class Spins(Model):
    """A loop without random choices: only max_seconds can stop it."""

    def forward(self) -> None:
        x = sample(Normal(0.0, 1.0), name="x")
        while True:
            x += 1.0


def test_max_seconds_stops_a_runaway_unit_on_a_worker_thread(clusters) -> None:
    from rotalumis.core import TraceLimitError

    with pytest.raises(TraceLimitError, match=r"longer than 0\.5 s") as info:
        Spins().prior(4, seed=0, max_seconds=0.5, cluster=clusters[1])
    assert "work unit 0" in str(info.value)
