"""PPX over ZeroMQ: the engine is a REQ socket that connects, the simulator a REP that binds.

Addresses are ZeroMQ endpoints: ``tcp://127.0.0.1:5555``, ``ipc:///run/user/1000/sim.sock``
or, on Linux, ``ipc://@name`` (abstract namespace: no file, vanishes with the process, but
any local user can connect to it). A server address ``tcp://127.0.0.1:*`` binds a free port;
:attr:`ZMQServerTransport.address` then tells which. A server on a file path refuses a path
where another server listens, makes its socket ``0600`` and removes it when closed
(:mod:`._ipc`).

A PPX message is one ZeroMQ frame. The server reads the first frame only (no per-message
check on the hot path); replying to a request that had more frames fails with ZeroMQ's state
error, upon which the rest is drained and :meth:`ZMQServerTransport.reply` raises
:class:`~.transport.BadRequest` (the server then answers ``Reset``). The client checks each
reply and drains a multi-frame one before raising
:class:`~rotalumis.core.errors.ProtocolError`. Either way both sockets stay in step.

A REQ socket whose peer died waits forever and refuses to send again, so the client gives
each reply ``timeout`` seconds (ZeroMQ's own receive time-out, no polling loop on the hot
path) and, when it expires or the wait is interrupted (Ctrl-C), closes the socket with
``LINGER 0`` and connects a fresh one before raising: the next request starts clean.
"""

from __future__ import annotations

import logging
from typing import Any

import zmq

from rotalumis.core.errors import ProtocolError, RemoteSimulatorError

from ._ipc import SocketFile, ipc_path
from .transport import BadRequest, ClientTransport, ServerClosed, ServerTransport

__all__ = ["ZMQClientTransport", "ZMQServerTransport", "check_address"]

log = logging.getLogger("rotalumis.remote")

_SCHEMES = ("tcp://", "ipc://", "inproc://")
_POLL_MS = 200  # how often a waiting server checks stop(); Ctrl-C interrupts at once
_LINGER_MS = 1000  # a closing server still delivers its last reply for this long


def check_address(address: str) -> str:
    """Validate a ZeroMQ endpoint for PPX and return it.

    Raises:
        ValueError: if ``address`` is not a ``tcp://``, ``ipc://`` or ``inproc://`` endpoint.
    """
    if not isinstance(address, str) or not address.startswith(_SCHEMES) or address[-3:] == "://":
        raise ValueError(
            f"invalid PPX address {address!r}: use tcp://HOST:PORT, ipc://PATH or ipc://@NAME"
        )
    return address


def _ms(timeout: float | None) -> int:
    return -1 if timeout is None else max(1, int(timeout * 1000))


def _drain(sock: zmq.Socket[Any]) -> int:
    """Read the rest of a multi-frame message; return how many frames it had in all."""
    count = 1
    while sock.getsockopt(zmq.RCVMORE):
        sock.recv()
        count += 1
    return count


class ZMQClientTransport(ClientTransport):
    """Engine side: a REQ socket connected to a simulator.

    Args:
        address: The simulator's endpoint.
        timeout: Seconds to wait for each reply (``None``: forever — a dead simulator then
            hangs the engine, so prefer a bound).
        context: ZeroMQ context (default: the process-wide one).

    Raises:
        ValueError: for an invalid address.
    """

    def __init__(
        self, address: str, timeout: float | None = 60.0, context: zmq.Context[Any] | None = None
    ) -> None:
        self.address = check_address(address)
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[Any] | None = None
        self._connect()

    def _connect(self) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, _ms(self.timeout))
        sock.setsockopt(zmq.SNDTIMEO, _ms(self.timeout))
        try:
            sock.connect(self.address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise RemoteSimulatorError(f"cannot connect to {self.address}: {exc}") from exc
        self._socket = sock
        return sock

    def _reset(self) -> None:
        """Drop the socket (it may be waiting for a reply that never comes) and reconnect."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
        self._connect()

    def request(self, data: bytes) -> bytes:
        """Send ``data`` and wait up to ``timeout`` seconds for the reply.

        Raises:
            RemoteSimulatorError: on a time-out or socket error; the socket is recreated.
            KeyboardInterrupt: on Ctrl-C while waiting; the socket is recreated first.
        """
        sock = self._socket
        if sock is None:
            sock = self._connect()
        try:
            sock.send(data)
            reply: bytes = sock.recv()
            if sock.getsockopt(zmq.RCVMORE):
                raise ProtocolError(
                    f"the simulator at {self.address} replied with {_drain(sock)} ZeroMQ "
                    "frames; a PPX message is one frame"
                )
            return reply
        except zmq.Again:
            self._reset()
            raise RemoteSimulatorError(
                f"the simulator at {self.address} did not answer within {self.timeout} s "
                "(it died, hangs, or is not running)"
            ) from None
        except zmq.ZMQError as exc:
            self._reset()
            raise RemoteSimulatorError(f"PPX transport error with {self.address}: {exc}") from exc
        except ProtocolError:
            raise  # drained: the socket is in step
        except BaseException:
            self._reset()
            raise

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def __del__(self) -> None:  # a forgotten RemoteModel must not leak an open socket
        if getattr(self, "_socket", None) is not None:
            self.close()


class ZMQServerTransport(ServerTransport):
    """Simulator side: a REP socket bound to ``address``.

    Args:
        address: Endpoint to bind. Binding every interface (``tcp://*:PORT`` or
            ``tcp://0.0.0.0:PORT``) is allowed when asked for explicitly, with a warning.
            On a file path (``ipc:///dir/name.sock``) the socket is made ``0600`` and
            removed by :meth:`close`.
        context: ZeroMQ context (default: the process-wide one).

    Raises:
        ValueError: for an invalid address.
        RemoteSimulatorError: if the address cannot be bound (e.g. already in use, also for
            a file path where another server listens).
    """

    def __init__(self, address: str, context: zmq.Context[Any] | None = None) -> None:
        check_address(address)
        self._context = context or zmq.Context.instance()
        sock = self._context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, _LINGER_MS)
        sock.setsockopt(zmq.RCVTIMEO, _POLL_MS)
        self._file = SocketFile(address) if ipc_path(address) is not None else None
        try:
            if self._file is not None:
                self._file.bind(lambda: sock.bind(address))
            else:
                sock.bind(address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise RemoteSimulatorError(f"cannot listen on {address}: {exc}") from exc
        except BaseException:
            sock.close(0)
            raise
        self._socket: zmq.Socket[Any] | None = sock
        endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
        self.address = endpoint.decode() if isinstance(endpoint, bytes) and endpoint else address
        if address.startswith(("tcp://*", "tcp://0.0.0.0", "tcp://[::]")):
            log.warning("PPX server listens on all network interfaces: %s", self.address)
        self._stopped = False

    def receive(self) -> bytes:
        """Wait for the next request (its first frame; see :meth:`reply`)."""
        sock = self._socket
        while True:
            if self._stopped or sock is None:
                raise ServerClosed(self.address)
            try:
                data: bytes = sock.recv()
                return data
            except zmq.Again:
                continue

    def reply(self, data: bytes) -> None:
        """Send the reply to the last request.

        Raises:
            BadRequest: if that request had several frames; they are drained now and the
                request still awaits a reply (a ``Reset``).
        """
        sock = self._socket
        if sock is None:
            raise ServerClosed(self.address)
        try:
            sock.send(data)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EFSM:  # REP refuses to reply while frames are unread
                raise
            raise BadRequest(f"a request of {_drain(sock)} ZeroMQ frames") from None

    def stop(self) -> None:
        """Make a waiting :meth:`receive` raise :class:`ServerClosed` (thread-safe)."""
        self._stopped = True

    def close(self) -> None:
        """Unbind and close the socket, remove its file (idempotent; serving thread only)."""
        self._stopped = True
        if self._socket is not None:
            self._socket.close(_LINGER_MS)  # let the last reply leave, but never hang
            self._socket = None
        if self._file is not None:
            self._file.release()

    def __del__(self) -> None:
        if getattr(self, "_socket", None) is not None:
            self.close()
