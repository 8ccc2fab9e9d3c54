"""A real ``rotalumis serve`` process driven by RemoteModel over tcp and ipc; process faults."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import zmq
from ppx_helpers import Z, ipc_address, is_stderr, served, start_server, tcp_address

from rotalumis.core.errors import RemoteSimulatorError
from rotalumis.models import UnknownMean
from rotalumis.remote._codec import RUN, decode, encode
from rotalumis.remote.client import RemoteModel
from rotalumis.remote.messages import Handshake, HandshakeResult, Reset, Sample

OBS = {"obs0": 8.0, "obs1": 9.0}
ADDRESSES = {"tcp": tcp_address, "ipc": ipc_address}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("transport", sorted(ADDRESSES))
def test_remote_posterior_matches_local_and_exact(transport: str) -> None:
    with served("UnknownMean", ADDRESSES[transport]()) as server:
        remote = RemoteModel(server.address, timeout=20)
        got = remote.posterior(4000, engine="is", observe=OBS, seed=7, progress=False)
        remote.close()
    want = UnknownMean().posterior(4000, engine="is", observe=OBS, seed=7, progress=False)
    mu, w = np.asarray(got.get("mu").to_numpy(), float), np.asarray(got.weights, float)
    np.testing.assert_allclose(mu, np.asarray(want.get("mu").to_numpy(), float))
    np.testing.assert_allclose(w, np.asarray(want.weights, float))
    exact_mean, _ = UnknownMean().exact_posterior([8.0, 9.0])  # 7.25
    # Tolerance as in the local engine tests: Z Monte Carlo standard errors (Kish ESS).
    w = w / w.sum()
    assert abs(float(np.sum(w * mu)) - exact_mean) < Z * is_stderr(mu, w)


@pytest.mark.timeout(120)
def test_mcmc_over_a_process_matches_local() -> None:
    with served("UnknownMean", ipc_address()) as server:
        remote = RemoteModel(server.address, timeout=20)
        got = remote.posterior(300, engine="rmh", observe=OBS, seed=2, burn_in=50, progress=False)
    want = UnknownMean().posterior(
        300, engine="rmh", observe=OBS, seed=2, burn_in=50, progress=False
    )
    np.testing.assert_allclose(got.get("mu").to_numpy(), want.get("mu").to_numpy())


@pytest.mark.timeout(120)
def test_killed_server_gives_named_error_and_engine_recovers() -> None:
    address = ipc_address()
    server = start_server("PauseAtObserve", address, env={"ROTALUMIS_TEST_PAUSE": "5"})
    remote = RemoteModel(address, timeout=1.5)
    killer = threading.Timer(0.5, server.proc.kill)  # dies inside the execution, mid-pause
    start = time.monotonic()
    try:
        killer.start()
        with pytest.raises(RemoteSimulatorError, match=r"did not answer within 1\.5 s"):
            remote.get_trace(seed=0)
        assert time.monotonic() - start < 10
        assert server.stop() == -signal.SIGKILL
    finally:
        killer.cancel()
        server.stop()
    with served("UnknownMean", address):  # a new simulator at the same address
        assert len(remote.prior(20, seed=1, progress=False)) == 20


@pytest.mark.timeout(120)
def test_stopped_server_times_out_and_resumes() -> None:
    with served("PauseAtObserve", tcp_address(), env={"ROTALUMIS_TEST_PAUSE": "0.3"}) as server:
        remote = RemoteModel(server.address, timeout=2)
        assert len(remote.prior(2, seed=0, progress=False)) == 2
        server.proc.send_signal(signal.SIGSTOP)  # alive but not answering
        try:
            start = time.monotonic()
            with pytest.raises(RemoteSimulatorError):
                remote.get_trace(seed=1)
            assert time.monotonic() - start < 10
        finally:
            server.proc.send_signal(signal.SIGCONT)
        # The server finishes its abandoned execution, gets our next Run out of sequence,
        # replies Reset and starts afresh; RemoteModel retries the Run once.
        assert len(remote.prior(3, seed=2, progress=False)) == 3


def _raw(address: str) -> zmq.Socket:  # type: ignore[type-arg]
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(address)
    return sock


@pytest.mark.timeout(60)
def test_garbage_and_out_of_order_requests_get_reset() -> None:
    with served("UnknownMean", ipc_address()) as server:
        sock = _raw(server.address)
        try:
            for garbage in (b"", b"\xff" * 7, b"hello, are you a PPX server?" * 10):
                sock.send(garbage)
                assert decode(sock.recv()) == Reset()
            sock.send(RUN)
            assert isinstance(decode(sock.recv()), Sample)
            sock.send(RUN)  # out of order: the Sample wants a SampleResult
            assert decode(sock.recv()) == Reset()
            sock.send(encode(Handshake("raw")))
            assert isinstance(decode(sock.recv()), HandshakeResult)
        finally:
            sock.close(0)
        remote = RemoteModel(server.address, timeout=10)  # and it still serves engines
        assert len(remote.prior(5, seed=0, progress=False)) == 5
        assert server.proc.poll() is None


@pytest.mark.timeout(60)
def test_ctrl_c_stops_the_server_cleanly() -> None:
    address = ipc_address()
    server = start_server("UnknownMean", address)
    assert server.stop(signal.SIGINT) == 130
    assert "Traceback" not in server.stderr and "stopped" in server.stderr
    with served("UnknownMean", address):  # the address was released
        pass


ENGINE_SCRIPT = textwrap.dedent(
    """
    import sys
    from rotalumis.remote.client import RemoteModel
    model = RemoteModel(sys.argv[1], timeout=None)
    print("connected", flush=True)
    try:
        model.prior(10**9, seed=0, progress=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


@pytest.mark.timeout(60)
def test_ctrl_c_interrupts_an_engine_waiting_forever() -> None:
    with served("UnknownMean", ipc_address()) as server:
        engine = subprocess.Popen(
            [sys.executable, "-c", ENGINE_SCRIPT, server.address],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert engine.stdout is not None and engine.stdout.readline().strip() == "connected"
        server.proc.send_signal(signal.SIGSTOP)  # the engine now waits with no time-out
        try:
            time.sleep(0.3)
            engine.send_signal(signal.SIGINT)
            out, _ = engine.communicate(timeout=10)
            assert engine.returncode == 130 and "interrupted" in out
        finally:
            server.proc.send_signal(signal.SIGCONT)
            if engine.poll() is None:
                engine.kill()
                engine.communicate()


@pytest.mark.timeout(60)
def test_remote_model_pickles_and_reconnects() -> None:
    with served("UnknownMean", tcp_address()) as server:
        remote = RemoteModel(server.address, timeout=10)
        copy = pickle.loads(pickle.dumps(remote))
        assert copy.name == "UnknownMean" and copy.address == server.address
        assert len(copy.prior(3, seed=0, progress=False)) == 3


@pytest.mark.timeout(60)
def test_serve_command_errors_are_one_line() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "rotalumis.cli.serve", "nowhere.py:Model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
