"""One ``rotalumis serve`` simulator per Dask worker (``SimulatorPerWorker``), on a real
``LocalCluster``: the results of a single server, also when a worker's simulator is killed
mid-run (its unit runs again on a fresh simulator), and no simulator left behind.

Every value of an execution is chosen by the engine (the simulator only asks) and each
work unit draws from the stream of its index, so the results must be identical, not close.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from faults import killed_when_busy

from rotalumis.core import ModelError
from rotalumis.infer.importance import CHUNK

distributed = pytest.importorskip("dask.distributed")

from rotalumis.distributed import DaskExecutor  # noqa: E402
from rotalumis.remote import SimulatorPool  # noqa: E402
from rotalumis.remote.worker_plugin import SimulatorPerWorker  # noqa: E402

torch.set_num_threads(1)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODELS = Path(__file__).resolve().parents[1] / "remote" / "sim_models.py"
SERVE = [sys.executable, "-m", "rotalumis.cli.serve", f"{MODELS}:PauseAtObserve"]
PAUSE = {"ROTALUMIS_TEST_PAUSE": "0.003"}  # each execution takes ~3 ms in the simulator
OBS = {"obs0": 8.0, "obs1": 9.0}


def same(a, b) -> None:
    """Identical results: the same weights and values, sample by sample."""
    for x, y in ((a.log_weights, b.log_weights), (a.to_numpy(), b.to_numpy())):
        np.testing.assert_array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def _simulator_pid(dask_worker) -> int | None:  # run on each worker by client.run
    plugin = dask_worker.plugins["rotalumis-simulator"]
    return plugin.process.pid if plugin.process is not None else None


def _restarts(dask_worker) -> int:
    return dask_worker.plugins["rotalumis-simulator"].restarts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (not yet reaped) is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def test_one_simulator_per_worker_gives_the_single_server_result_after_a_kill() -> None:
    n = 24 * CHUNK
    kw = {"observe": OBS, "seed": 3, "progress": False}
    with SimulatorPool([*SERVE, "--address", "{address}"], n=1, env=PAUSE) as one:
        single = one.model(timeout=60)
        want = single.posterior(n, **kw)
        single.close()
    plugin = SimulatorPerWorker([*SERVE, "--address", "{address}"], timeout=3, env=PAUSE)
    with DaskExecutor("local:2", worker_plugins=[plugin]) as cluster:
        client = cluster.client
        model = plugin.model()
        same(want, model.posterior(n, cluster=cluster, **kw))
        pids = [p for p in client.run(_simulator_pid).values() if p is not None]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        victim = pids[0]
        with killed_when_busy(client, victim, after=0.3) as state:
            got = model.posterior(n, cluster=cluster, **kw)
        assert state["killed"], "the run ended before the simulator was killed"
        same(want, got)
        assert sum(client.run(_restarts).values()) == 1  # the dead one was replaced
        after = [p for p in client.run(_simulator_pid).values() if p is not None]
        assert victim not in after and all(_alive(p) for p in after)
    deadline = time.monotonic() + 30  # closing the cluster stopped every simulator
    while any(_alive(p) for p in after) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in after)


def test_the_model_says_where_it_runs_and_bad_commands_are_named() -> None:
    model = SimulatorPerWorker(["sim", "{address}"]).model()
    with pytest.raises(ModelError, match="SimulatorPerWorker plugin"):
        model.prior(10, seed=0, progress=False)
    with pytest.raises(ValueError, match="placeholder"):
        SimulatorPerWorker(["sim", "--serve"])
    with pytest.raises(ValueError, match="timeout must be"):
        SimulatorPerWorker(["sim", "{address}"], timeout=0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotalumis.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_cli_runs_on_one_simulator_per_worker() -> None:
    serve = shlex.join([*SERVE[:-1], f"{MODELS}:UnknownMean", "--address", "{address}"])
    run = ["-n", str(3 * CHUNK), "-o", "obs0=8", "-o", "obs1=9", "--seed", "2", "-q"]
    here = _cli("run", f"{MODELS}:UnknownMean", *run)
    assert here.returncode == 0, here.stderr
    there = _cli(
        "run", "UnknownMean", *run, "--cluster", "local:2", "--simulator-per-worker", serve
    )
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout  # the same summary, to the last digit printed
    bad = _cli("run", "UnknownMean", *run, "--simulator-per-worker", serve)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --simulator-per-worker needs")
    assert len(bad.stderr.strip().splitlines()) == 1
