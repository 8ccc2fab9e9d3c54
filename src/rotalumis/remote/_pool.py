"""Connections to a pool of PPX simulators: one execution at a time on each.

A thread that runs an execution takes a free connection and gives it back afterwards. A
simulator that stops answering (it died, or hangs past the time-out) is dropped from the
pool and its address recorded; the execution fails with
:class:`~rotalumis.core.errors.SimulatorLostError`, which executors answer by running the
work unit again (on another simulator) while any is left.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rotalumis.core.errors import RemoteSimulatorError, SimulatorLostError

from ._codec import decode
from .transport import ClientTransport
from .zmq_transport import ZMQClientTransport

__all__ = ["ConnectionPool"]

log = logging.getLogger(__name__)

Handshake = Callable[[ClientTransport, str], None]


class ConnectionPool:
    """Connections to the simulators at ``addresses``, each handshaken on creation.

    Args:
        addresses: The simulators' endpoints.
        timeout: Seconds to wait for each reply (``None``: forever; then a dead simulator
            is never noticed).
        handshake: ``handshake(transport, address)`` greets a new connection (raises when
            the simulator does not answer).
    """

    def __init__(self, addresses: list[str], timeout: float | None, handshake: Handshake) -> None:
        self.addresses = addresses
        self.timeout = timeout
        self.handshake = handshake
        self.failed: list[str] = []
        self._free: list[tuple[str, ClientTransport]] = []
        self._busy = 0
        self._ready = threading.Condition()
        self.reconnect()

    @property
    def alive(self) -> int:
        """Simulators still in the pool."""
        with self._ready:
            return len(self._free) + self._busy

    def reconnect(self) -> None:
        """Connect to every simulator not known to have failed (and not connected yet)."""
        with self._ready:
            connected = {a for a, _ in self._free}
            for address in self.addresses:
                if address in connected or address in self.failed:
                    continue
                transport = ZMQClientTransport(address, self.timeout)
                try:
                    self.handshake(transport, address)
                except BaseException:
                    transport.close()
                    raise
                self._free.append((address, transport))
            self._ready.notify_all()

    @contextlib.contextmanager
    def connection(self) -> Iterator[tuple[Callable[[bytes], Any], str]]:
        """A free connection's ``request`` (bytes in, decoded message out) and address,
        for one execution.

        Raises:
            SimulatorLostError: when its simulator stops answering (``retryable`` while
                another simulator is left).
            RemoteSimulatorError: when no simulator of the pool is left.
        """
        with self._ready:
            while not self._free:
                if self._busy == 0:
                    raise RemoteSimulatorError(
                        f"every simulator of the pool failed: {', '.join(self.failed)}"
                    )
                self._ready.wait()
            address, transport = self._free.pop()
            self._busy += 1
        lost = False

        def request(data: bytes) -> Any:
            nonlocal lost
            try:
                return decode(transport.request(data))
            except RemoteSimulatorError as exc:
                lost = True
                raise self._lost(address, transport, exc) from exc

        try:
            yield request, address
        finally:
            with self._ready:
                self._busy -= 1
                if not lost:
                    self._free.append((address, transport))
                self._ready.notify_all()

    def _lost(
        self, address: str, transport: ClientTransport, exc: RemoteSimulatorError
    ) -> SimulatorLostError:
        transport.close()
        with self._ready:
            self.failed.append(address)
            left = len(self._free) + self._busy - 1
        log.warning("simulator %s left the pool (%s); %d left", address, exc, left)
        return SimulatorLostError(
            f"the simulator at {address} of the pool failed: {exc}", address, left > 0
        )

    def close(self) -> None:
        """Close the connections not in use (call it when no execution runs)."""
        with self._ready:
            for _, transport in self._free:
                transport.close()
            self._free = []
