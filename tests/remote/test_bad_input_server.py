"""Hostile and broken PPX peers (issue 12, defect 1), against real processes and sockets.

A PPX message is one ZeroMQ frame. A request of several frames used to stop
``rotalumis serve`` (it read one frame, then replying raised ZeroMQ's state error); now the
server drains it, answers ``Reset`` and keeps serving, idle or in the middle of an execution.
The engine side gets a ``ProtocolError`` for a multi-frame or garbage reply and stays usable.
The table sends each bad request to one ``rotalumis serve`` process, in both states.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq
from ppx_helpers import MODELS, ipc_address, served

from rotalumis.core import Normal
from rotalumis.core.errors import ProtocolError
from rotalumis.models import UnknownMean
from rotalumis.remote._codec import OBSERVE_RESULT, RUN, decode, encode
from rotalumis.remote.client import RemoteModel
from rotalumis.remote.messages import (
    Handshake,
    HandshakeResult,
    Observe,
    Reset,
    RunResult,
    Sample,
    SampleResult,
)

pytestmark = pytest.mark.timeout(120)
OBS = {"obs0": 8.0, "obs1": 9.0}
HANDSHAKE = encode(Handshake("raw"))

BAD_REQUESTS: dict[str, list[bytes]] = {
    "two frames (handshake + junk)": [HANDSHAKE, b"junk"],
    "two frames (Run + Run)": [RUN, RUN],
    "empty frame, then a message": [b"", RUN],
    "1000 frames": [b"x"] * 1000,
    "one garbage frame": [b"\xff" * 7],
    "one empty frame": [b""],
    "truncated handshake": [HANDSHAKE[: len(HANDSHAKE) // 2]],
    "a 1 MB frame of zeros": [bytes(1 << 20)],
    "an out-of-sequence ObserveResult": [OBSERVE_RESULT],
}


def _req(address: str) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(address)
    return sock


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with served("UnknownMean", ipc_address()) as s:
        yield s
    assert "Traceback" not in s.stderr


@pytest.mark.parametrize("state", ["idle", "mid-execution"])
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_reset_and_the_server_keeps_serving(
    server: Any, case: str, state: str
) -> None:
    sock = _req(server.address)
    try:
        if state == "mid-execution":
            sock.send(RUN)
            assert isinstance(decode(sock.recv()), Sample)
        sock.send_multipart(BAD_REQUESTS[case])
        assert sock.recv_multipart() == [encode(Reset())]
        sock.send(RUN)  # in step again: a new execution starts
        assert isinstance(decode(sock.recv()), Sample)
        sock.send(HANDSHAKE)  # abandons it, as a new engine would
        assert isinstance(decode(sock.recv()), HandshakeResult)
    finally:
        sock.close(0)
    assert server.proc.poll() is None


def test_multipart_request_does_not_stop_serve_and_a_session_still_works() -> None:
    """The issue's reproduction: a two-frame request to a real ``rotalumis serve``."""
    with served("UnknownMean", ipc_address()) as server:
        sock = _req(server.address)
        try:
            sock.send_multipart([HANDSHAKE, b"junk"])  # idle
            assert decode(sock.recv()) == Reset()
            sock.send(RUN)
            assert isinstance(decode(sock.recv()), Sample)
            sock.send_multipart([encode(SampleResult(1.0)), b"junk"])  # mid-execution
            assert decode(sock.recv()) == Reset()
        finally:
            sock.close(0)
        assert server.proc.poll() is None
        remote = RemoteModel(server.address, timeout=20)
        got = remote.posterior(300, engine="is", observe=OBS, seed=3, progress=False)
        remote.close()
    want = UnknownMean().posterior(300, engine="is", observe=OBS, seed=3, progress=False)
    np.testing.assert_allclose(got.get("mu").to_numpy(), want.get("mu").to_numpy())
    np.testing.assert_allclose(got.log_weights, want.log_weights)
    assert "ZeroMQ frames" in server.stderr and "Traceback" not in server.stderr


def test_dealer_peer_with_several_frames_gets_reset(server: Any) -> None:
    sock: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(server.address)
    try:
        sock.send_multipart([b"", HANDSHAKE, b"more", b"and more"])
        assert sock.recv_multipart() == [b"", encode(Reset())]
        sock.send_multipart([b"", HANDSHAKE])
        assert isinstance(decode(sock.recv_multipart()[1]), HandshakeResult)
    finally:
        sock.close(0)
    assert server.proc.poll() is None


# -- the engine side against a peer that misbehaves --------------------------------------------
def _execution() -> list[bytes]:
    """A real unknown-mean execution, as the simulator's replies."""
    sd = 5**0.5
    return [
        encode(Sample("UnknownMean.forward:39", "mu", Normal(1.0, sd))),
        encode(Observe("UnknownMean.forward:42", "obs0", Normal(7.1, 2**0.5))),
        encode(Observe("UnknownMean.forward:42", "obs1", Normal(7.1, 2**0.5))),
        encode(RunResult(7.1)),
    ]


class ScriptedPeer(threading.Thread):
    """A REP socket answering the k-th request with ``script[k]`` (one or several frames)."""

    def __init__(self, address: str, script: list[list[bytes]]) -> None:
        super().__init__(daemon=True)
        self.sock: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 20_000)
        self.sock.bind(address)
        self.script = script
        self.requests: list[list[bytes]] = []

    def run(self) -> None:
        try:
            for reply in self.script:
                self.requests.append(self.sock.recv_multipart())
                self.sock.send_multipart(reply)
        finally:
            self.sock.close(0)


HS = [encode(HandshakeResult("peer", "UnknownMean"))]
BAD_REPLIES: dict[str, list[bytes]] = {
    "two frames": [HS[0], b"junk"],
    "1000 frames": [b"x"] * 1000,
    "garbage": [b"\x01\x02\x03"],
    "empty": [b""],
    "a Run (a request, not a reply)": [RUN],
}


@pytest.mark.parametrize("case", sorted(BAD_REPLIES))
def test_engine_gets_protocol_error_for_a_bad_reply_and_stays_usable(case: str) -> None:
    address = ipc_address()
    replies = [[r] for r in _execution()]
    # handshake: bad; handshake: good; Run: bad; Run: a whole execution
    script = [BAD_REPLIES[case], HS, BAD_REPLIES[case], *replies]
    peer = ScriptedPeer(address, script)
    peer.start()
    with pytest.raises(ProtocolError):
        RemoteModel(address, timeout=10)
    model = RemoteModel(address, timeout=10)  # the next connection handshakes normally
    assert model.name == "UnknownMean"
    with pytest.raises(ProtocolError):
        model.get_trace(seed=0)
    trace = model.get_trace(seed=1)  # the same RemoteModel, its socket in step
    assert trace.result == pytest.approx(7.1)
    peer.join(10)
    assert not peer.is_alive() and len(peer.requests) == len(script)


# -- the command line -------------------------------------------------------------------------
SERVE_ERRORS = {
    "not an address": ["--address", "localhost:5555"],
    "--private and --address": ["--private", "--address", "ipc://@x"],
    "a directory that does not exist": ["--address", "ipc:///nonexistent/dir/s.sock"],
}


@pytest.mark.parametrize("case", sorted(SERVE_ERRORS))
def test_serve_bad_input_is_one_error_line(case: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "rotalumis.cli.serve", f"{MODELS}:UnknownMean",
         *SERVE_ERRORS[case]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
