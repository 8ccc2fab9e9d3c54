"""Transports carry PPX messages between an engine and a simulator.

PPX is strictly request/reply: the engine sends one request and waits for one reply; the
simulator waits for a request and answers it. Two small interfaces capture exactly that:

* :class:`ClientTransport` (engine side): :meth:`~ClientTransport.request` sends bytes and
  returns the reply, or raises :class:`~rotalumis.core.errors.RemoteSimulatorError` when
  none arrives within the timeout, after which the transport is usable again.
* :class:`ServerTransport` (simulator side): :meth:`~ServerTransport.receive` waits for the
  next request and :meth:`~ServerTransport.reply` answers it.

:mod:`.zmq_transport` implements them over ZeroMQ (the PPX transport). :func:`memory_pair`
here connects a client and a server inside one process for unit tests, with the same
timeout behaviour and no sockets.
"""

from __future__ import annotations

import queue
from abc import ABC, abstractmethod

from rotalumis.core.errors import RemoteSimulatorError

__all__ = [
    "BadRequest",
    "ClientTransport",
    "MemoryClientTransport",
    "MemoryServerTransport",
    "ServerClosed",
    "ServerTransport",
    "memory_pair",
]


class ServerClosed(Exception):
    """Raised by :meth:`ServerTransport.receive` once the transport was closed or stopped."""


class BadRequest(Exception):
    """Raised by :meth:`ServerTransport.reply` when the request being answered turns out not
    to be one PPX message (several ZeroMQ frames): the reply was not sent, the request has
    now been read in full and still awaits a reply."""


class ClientTransport(ABC):
    """Engine side of a PPX connection: one request, one reply."""

    address: str

    @abstractmethod
    def request(self, data: bytes) -> bytes:
        """Send ``data`` and return the reply.

        Raises:
            RemoteSimulatorError: if no reply arrives within the timeout or the peer is
                unreachable; the transport reconnects so that the next request can succeed.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection (idempotent)."""

    def __enter__(self) -> ClientTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerTransport(ABC):
    """Simulator side of a PPX connection: receive a request, send its reply."""

    address: str

    @abstractmethod
    def receive(self) -> bytes:
        """Wait for the next request.

        Raises:
            ServerClosed: once :meth:`close` (or :meth:`stop`) was called.
        """

    @abstractmethod
    def reply(self, data: bytes) -> None:
        """Answer the request last received.

        Raises:
            BadRequest: if that request was not one message; answer it again (``Reset``).
        """

    def stop(self) -> None:  # noqa: B027 - optional: transports that cannot be stopped
        """Ask a :meth:`receive` blocked in another thread to raise :class:`ServerClosed`."""

    @abstractmethod
    def close(self) -> None:
        """Release the endpoint (idempotent)."""

    def __enter__(self) -> ServerTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Link:
    """The two queues shared by a client and a server in one process.

    Requests and replies carry a sequence number so that a late reply to a request the
    client gave up on is discarded, as a closed ZeroMQ socket would drop it.
    """

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self.replies: queue.Queue[tuple[int, bytes]] = queue.Queue()


class MemoryClientTransport(ClientTransport):
    """In-process client end of :func:`memory_pair`.

    Args:
        link: The shared queues.
        timeout: Seconds to wait for each reply (``None``: forever).
    """

    def __init__(self, link: _Link, timeout: float | None = 10.0) -> None:
        self._link = link
        self.timeout = timeout
        self.address = "memory://"
        self._closed = False
        self._seq = 0

    def request(self, data: bytes) -> bytes:
        """Hand ``data`` to the server and wait for its reply (see base class)."""
        if self._closed:
            raise RemoteSimulatorError("the in-memory transport is closed")
        self._seq += 1
        self._link.requests.put((self._seq, data))
        while True:
            try:
                seq, reply = self._link.replies.get(timeout=self.timeout)
            except queue.Empty:
                raise RemoteSimulatorError(
                    f"no reply from the simulator at {self.address} within {self.timeout} s"
                ) from None
            if seq == self._seq:
                return reply

    def close(self) -> None:
        """Close this end (the server keeps running)."""
        self._closed = True


class MemoryServerTransport(ServerTransport):
    """In-process server end of :func:`memory_pair`."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self.address = "memory://"
        self._closed = False
        self._seq = 0

    def receive(self) -> bytes:
        """Wait for the client's next request (see base class)."""
        if self._closed:
            raise ServerClosed(self.address)
        item = self._link.requests.get()
        if item is None:
            raise ServerClosed(self.address)
        self._seq, data = item
        return data

    def reply(self, data: bytes) -> None:
        """Answer the last request."""
        self._link.replies.put((self._seq, data))

    def stop(self) -> None:
        """Unblock :meth:`receive`."""
        self._closed = True
        self._link.requests.put(None)

    def close(self) -> None:
        """Same as :meth:`stop`."""
        if not self._closed:
            self.stop()


def memory_pair(
    timeout: float | None = 10.0,
) -> tuple[MemoryClientTransport, MemoryServerTransport]:
    """A connected (client, server) pair of in-process transports for tests.

    Args:
        timeout: Seconds the client waits for each reply (``None``: forever).

    Example:
        >>> client, server = memory_pair(timeout=1.0)
    """
    link = _Link()
    return MemoryClientTransport(link, timeout), MemoryServerTransport(link)
