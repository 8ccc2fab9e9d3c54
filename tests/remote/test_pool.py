"""A pool of ``rotalumis serve`` processes behind one RemoteModel: identical results, faults.

Every value of an execution is chosen by the engine (the simulator only asks), and each
work unit draws from the stream of its index, so a pool gives exactly the results of one
server, also when a server dies mid-run and its unit is run again on another.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import numpy as np
import pytest
from ppx_helpers import ipc_address, served

from rotalumis.core.errors import RemoteSimulatorError
from rotalumis.data import generate_dataset
from rotalumis.infer.importance import CHUNK
from rotalumis.remote.client import RemoteModel

OBS = {"obs0": 8.0, "obs1": 9.0}
PAUSE = {"ROTALUMIS_TEST_PAUSE": "0.003"}  # each execution takes ~3 ms in the simulator


def same(a, b) -> None:
    """Identical results: the same weights and values, sample by sample."""
    for x, y in ((a.log_weights, b.log_weights), (a.to_numpy(), b.to_numpy())):
        np.testing.assert_array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


@contextlib.contextmanager
def servers(n: int):
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(served("PauseAtObserve", ipc_address(), PAUSE)) for _ in range(n)
        ]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_pool_with_a_server_killed_mid_run_gives_the_single_server_result(tmp_path) -> None:
    n = 16 * CHUNK
    kw = {"observe": OBS, "seed": 5, "progress": False}
    with servers(3) as procs:
        single = RemoteModel(procs[0].address, timeout=10)
        want = single.posterior(n, **kw)
        single.close()
        pool = RemoteModel([p.address for p in procs], timeout=2)
        assert pool.simulator_slots == 3
        same(want, pool.posterior(n, **kw))  # all three alive
        victim = procs[1]
        state = {"finished": False, "killed_at": None}

        def kill_soon() -> None:
            time.sleep(0.6)
            if not state["finished"]:
                victim.proc.send_signal(signal.SIGKILL)
                state["killed_at"] = time.monotonic()

        killer = threading.Thread(target=kill_soon)
        killer.start()
        try:
            got = pool.posterior(n, **kw)
        finally:
            state["finished"] = True
            killer.join()
        assert state["killed_at"] is not None, "the run ended before the server was killed"
        same(want, got)
        assert pool.failed_addresses == [victim.address]
        assert pool.simulator_slots == 2
        # a dataset over the two survivors: the shards of one server, byte for byte
        generate_dataset(pool, tmp_path / "pool", 90, seed=1, traces_per_shard=30)
        single = RemoteModel(procs[0].address, timeout=10)
        generate_dataset(single, tmp_path / "one", 90, seed=1, traces_per_shard=30)
        for shard in sorted((tmp_path / "one").glob("*.parquet")):
            assert (tmp_path / "pool" / shard.name).read_bytes() == shard.read_bytes()
        pool.close()
        single.close()


@pytest.mark.timeout(120)
def test_a_pool_whose_servers_all_died_says_so() -> None:
    with servers(2) as procs:
        pool = RemoteModel([p.address for p in procs], timeout=1)
        for p in procs:
            p.stop(signal.SIGKILL)
        with pytest.raises(RemoteSimulatorError, match="of the pool failed") as info:
            pool.posterior(2 * CHUNK, observe=OBS, seed=0, progress=False)
        assert {p.address for p in procs} <= set(pool.failed_addresses) | {str(info.value)}
        assert set(pool.failed_addresses) == {p.address for p in procs}


def test_bad_pool_addresses_are_named() -> None:
    with pytest.raises(ValueError, match="list of them"):
        RemoteModel([])
    with pytest.raises(ValueError, match="list of them"):
        RemoteModel(["ipc://@a", 3])  # type: ignore[list-item]


@pytest.mark.timeout(180)
def test_rotalumis_pool_starts_servers_that_one_model_uses() -> None:
    import subprocess
    import sys

    from ppx_helpers import MODELS

    from rotalumis.models import UnknownMean

    serve = [sys.executable, "-m", "rotalumis.cli.serve", f"{MODELS}:UnknownMean"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rotalumis.cli", "pool", "--n", "3", "--", *serve,
         "--address", "{address}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("pool: 3 simulators")
        addresses = [proc.stdout.readline().strip() for _ in range(3)]
        assert all(a.startswith("ipc://@rotalumis-pool-") for a in addresses)
        pool = RemoteModel(addresses, timeout=60)
        got = pool.posterior(3 * CHUNK, observe=OBS, seed=2, progress=False)
        pool.close()
        same(UnknownMean().posterior(3 * CHUNK, observe=OBS, seed=2, progress=False), got)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_rotalumis_pool_without_a_placeholder_is_one_error_line() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "rotalumis.cli", "pool", "--n", "2", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "{address}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
