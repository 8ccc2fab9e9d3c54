"""Transports: ZeroMQ over tcp and ipc (abstract namespace), the in-memory pair, time-outs."""

from __future__ import annotations

import threading
import time

import pytest
from ppx_helpers import ipc_address, tcp_address

from rotalumis.core.errors import RemoteSimulatorError
from rotalumis.remote.server import DEFAULT_ADDRESS
from rotalumis.remote.transport import ServerClosed, memory_pair
from rotalumis.remote.zmq_transport import ZMQClientTransport, ZMQServerTransport, check_address

pytestmark = pytest.mark.timeout(60)  # a hard limit for every test here


def echo(server: ZMQServerTransport, count: int) -> threading.Thread:
    """Answer ``count`` requests with their reversed bytes in a thread, then close."""

    def run() -> None:
        try:
            for _ in range(count):
                server.reply(server.receive()[::-1])
        except ServerClosed:
            pass
        finally:
            server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(30)
@pytest.mark.parametrize("make_address", [tcp_address, ipc_address], ids=["tcp", "ipc"])
def test_request_reply(make_address) -> None:  # type: ignore[no-untyped-def]
    address = make_address()
    thread = echo(ZMQServerTransport(address), 3)
    with ZMQClientTransport(address, timeout=5) as client:
        for payload in (b"abc", b"", bytes(range(256)) * 40):
            assert client.request(payload) == payload[::-1]
    thread.join(5)


@pytest.mark.timeout(30)
def test_wildcard_port_is_resolved() -> None:
    server = ZMQServerTransport("tcp://127.0.0.1:*")
    assert server.address.startswith("tcp://127.0.0.1:") and not server.address.endswith("*")
    thread = echo(server, 1)
    with ZMQClientTransport(server.address, timeout=5) as client:
        assert client.request(b"xy") == b"yx"
    thread.join(5)


@pytest.mark.timeout(30)
def test_timeout_then_recovery() -> None:
    address = ipc_address()
    client = ZMQClientTransport(address, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(RemoteSimulatorError, match="did not answer"):
        client.request(b"anyone?")  # nobody listens yet
    assert time.monotonic() - start < 2.0
    thread = echo(ZMQServerTransport(address), 1)
    assert client.request(b"ab") == b"ba"  # the socket was recreated, not stuck in REQ state
    client.close()
    client.close()  # idempotent
    thread.join(5)


@pytest.mark.timeout(30)
def test_address_in_use_is_a_clear_error() -> None:
    address = ipc_address()
    first = ZMQServerTransport(address)
    try:
        with pytest.raises(RemoteSimulatorError, match="cannot listen on"):
            ZMQServerTransport(address)
    finally:
        first.close()


@pytest.mark.timeout(30)
def test_stop_unblocks_a_waiting_server() -> None:
    server = ZMQServerTransport(ipc_address())
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            server.receive()
        except ServerClosed as exc:
            errors.append(exc)
        finally:
            server.close()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.1)
    server.stop()
    thread.join(5)
    assert not thread.is_alive() and errors


@pytest.mark.parametrize("bad", ["", "localhost:5555", "http://x", "tcp://", 5555])
def test_invalid_addresses(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid PPX address"):
        check_address(bad)  # type: ignore[arg-type]


def test_default_address_is_local() -> None:
    assert DEFAULT_ADDRESS.startswith("ipc://@")


@pytest.mark.timeout(30)
def test_memory_pair_discards_late_replies() -> None:
    client, server = memory_pair(timeout=0.2)
    with pytest.raises(RemoteSimulatorError):
        client.request(b"first")  # the server has not answered yet
    assert server.receive() == b"first"
    server.reply(b"late")  # answers the request the client gave up on
    result: list[bytes] = []
    thread = threading.Thread(target=lambda: result.append(client.request(b"second")))
    thread.start()
    assert server.receive() == b"second"
    server.reply(b"fresh")
    thread.join(5)
    assert result == [b"fresh"]
    server.close()
    with pytest.raises(ServerClosed):
        server.receive()
