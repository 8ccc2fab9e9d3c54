"""The engine side of PPX: :class:`RemoteModel`, a model whose executions run elsewhere.

Each execution sends ``Run`` and then, for every ``Sample``/``Observe``/``Tag`` the simulator
sends, calls the core primitive (``sample``/``observe``/``tag``) with the simulator's raw
call-site address, so that whatever handlers the inference engine installed decide the
value exactly as for a local model; the runtime appends the distribution kind and instance
counter to the address as PPX expects. The value goes back as ``SampleResult``; ``RunResult``
ends the execution. Every engine therefore works on a ``RemoteModel`` unchanged, and
observations are given by name as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rotalumis.core import Model, observe, sample, tag
from rotalumis.core.errors import ModelError, ProtocolError, RemoteSimulatorError

from ._codec import OBSERVE_RESULT, RUN, TAG_RESULT, decode, encode
from ._pool import ConnectionPool
from .endpoint import check_tcp_port
from .messages import (
    Handshake,
    HandshakeResult,
    Observe,
    Reset,
    RunResult,
    Sample,
    SampleResult,
    Tag,
)
from .server import system_name
from .transport import ClientTransport
from .zmq_transport import ZMQClientTransport

__all__ = ["RemoteModel"]


class RemoteModel(Model):
    """A PPX simulator (any language) seen as a rotalumis :class:`~rotalumis.core.Model`.

    Connects and handshakes on construction; the simulator's model name becomes
    :attr:`name` (unless ``name`` is given) and shows in ``repr``.

    Given several addresses, the model is a pool of identical simulators: each execution
    runs on a free one, engines run their independent work units (importance-sampling
    chunks, dataset shards) in one thread per simulator, and a unit whose simulator dies or
    stops answering is run again on another one (the result is the same: every value is the
    engine's choice). :attr:`failed_addresses` lists the simulators that failed.

    Args:
        address: The simulator's ZeroMQ endpoint (``tcp://127.0.0.1:5555``, ``ipc://@sim``),
            or a list of the endpoints of a pool of simulators of the same model.
        timeout: Seconds to wait for each reply before raising
            :class:`~rotalumis.core.errors.RemoteSimulatorError` (``None``: forever).
        name: Name of the model (default: the one the simulator reports).
        transport: Use this transport instead of connecting to ``address`` (tests).

    Raises:
        ValueError: for a malformed address (e.g. a tcp port above 65535).
        RemoteSimulatorError: if the simulator does not answer the handshake in time.
        ProtocolError: if it answers something other than a ``HandshakeResult``.

    Example:
        >>> model = RemoteModel("ipc://@rotalumis", timeout=30)  # doctest: +SKIP
        >>> posterior = model.posterior(1000, observe={"obs0": 8.0}, seed=0)  # doctest: +SKIP
    """

    supports_worker_processes = False  # one ZeroMQ connection to one simulator

    def __init__(
        self,
        address: str | Sequence[str] = "ipc://@rotalumis",
        timeout: float | None = 60.0,
        name: str | None = None,
        transport: ClientTransport | None = None,
    ) -> None:
        super().__init__(name or "RemoteModel")
        addresses = [address] if isinstance(address, str) else list(address)
        if not addresses or not all(isinstance(a, str) for a in addresses):
            raise ValueError(f"address must be an endpoint or a list of them, got {address!r}")
        if transport is None:
            for a in addresses:
                check_tcp_port(a)
        self.address = transport.address if transport is not None else addresses[0]
        self.addresses = addresses if transport is None else [self.address]
        self.timeout = timeout
        self.system_name: str | None = None
        self.model_name: str | None = None
        self._fixed_name = name is not None
        self._transport = transport
        self._pool: ConnectionPool | None = None
        self.connect()

    @property
    def simulator_slots(self) -> int:
        """How many executions can run at once: the live simulators of a pool, else 1."""
        if len(self.addresses) == 1:
            return 1
        return self._pool.alive if self._pool is not None else len(self.addresses)

    @property
    def failed_addresses(self) -> list[str]:
        """The addresses of the pool's simulators that died or stopped answering."""
        return list(self._pool.failed) if self._pool is not None else []

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """(Re)connect and handshake; called by the constructor and after unpickling."""
        if len(self.addresses) > 1:
            if self._pool is None:
                self._pool = ConnectionPool(self.addresses, self.timeout, self._handshake)
            else:
                self._pool.reconnect()
            return
        if self._transport is None:
            self._transport = ZMQClientTransport(self.address, self.timeout)
        self._handshake(self._transport, self.address)

    def _handshake(self, transport: ClientTransport, address: str) -> None:
        reply = decode(transport.request(encode(Handshake(system_name()))))
        if not isinstance(reply, HandshakeResult):
            raise ProtocolError(
                f"the simulator at {address} answered the handshake with "
                f"{type(reply).__name__}, not HandshakeResult"
            )
        self.system_name = reply.system_name
        self.model_name = reply.model_name
        if not self._fixed_name:
            self.name = reply.model_name or "RemoteModel"

    def close(self) -> None:
        """Close the connection (a later execution reconnects)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_transport"] = None  # sockets do not travel; the copy reconnects when used
        state["_pool"] = None  # a copy of a pool reconnects to it when used
        return state

    def __repr__(self) -> str:
        where = (
            f"address={self.address!r}"
            if len(self.addresses) == 1
            else f"addresses={self.addresses!r}"
        )
        return f"RemoteModel(name={self.name!r}, {where}, system={self.system_name!r})"

    # -- one execution -------------------------------------------------------------------------
    def _request(self, data: bytes) -> Any:
        transport = self._transport
        if transport is None:
            self.connect()
            transport = self._transport
            assert transport is not None
        return decode(transport.request(data))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run one execution of the remote simulator; return its result.

        Raises:
            ModelError: if called with arguments (PPX executions take none).
            RemoteSimulatorError: if the simulator stops answering or resets the execution.
            ProtocolError: if it sends a malformed or unexpected message.
        """
        if args or kwargs:
            raise ModelError("a PPX simulator takes no arguments: call forward() without any")
        if len(self.addresses) == 1:
            return self._run(self._request, self.address)
        if self._pool is None:
            self.connect()
        assert self._pool is not None
        with self._pool.connection() as (request, address):
            return self._run(request, address)

    def _run(self, request: Callable[[bytes], Any], address: str) -> Any:
        """One execution, talking to the simulator at ``address`` through ``request``."""
        reply = request(RUN)
        if type(reply) is Reset:  # the simulator was still in an abandoned execution
            reply = request(RUN)
        while True:
            kind = type(reply)
            if kind is Sample:
                value = sample(
                    reply.distribution,
                    name=reply.name,
                    address=reply.address or "ppx",
                    control=reply.control,
                )
                reply = request(encode(SampleResult(value)))
            elif kind is Observe:
                observe(
                    reply.distribution,
                    value=reply.value,
                    name=reply.name,
                    address=reply.address or "ppx",
                )
                reply = request(OBSERVE_RESULT)
            elif kind is Tag:
                tag(
                    reply.value,
                    reply.name or reply.address or "tag",
                    address=reply.address or "ppx",
                )
                reply = request(TAG_RESULT)
            elif kind is RunResult:
                return reply.result
            elif kind is Reset:
                raise RemoteSimulatorError(
                    f"the simulator at {address} abandoned the execution (Reset): it "
                    "failed or received an out-of-sequence request; see its log"
                )
            else:
                raise ProtocolError(
                    f"unexpected {kind.__name__} from the simulator at {address} "
                    "during an execution"
                )
