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

from typing import Any

from rotalumis.core import Model, observe, sample, tag
from rotalumis.core.errors import ModelError, ProtocolError, RemoteSimulatorError

from .codec import OBSERVE_RESULT, RUN, TAG_RESULT, decode, encode
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

    Args:
        address: The simulator's ZeroMQ endpoint (``tcp://127.0.0.1:5555``, ``ipc://@sim``).
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
        address: str = "ipc://@rotalumis",
        timeout: float | None = 60.0,
        name: str | None = None,
        transport: ClientTransport | None = None,
    ) -> None:
        super().__init__(name or "RemoteModel")
        if transport is None:
            check_tcp_port(address)
        self.address = transport.address if transport is not None else address
        self.timeout = timeout
        self.system_name: str | None = None
        self.model_name: str | None = None
        self._fixed_name = name is not None
        self._transport = transport
        self.connect()

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """(Re)connect and handshake; called by the constructor and after unpickling."""
        if self._transport is None:
            self._transport = ZMQClientTransport(self.address, self.timeout)
        reply = decode(self._transport.request(encode(Handshake(system_name()))))
        if not isinstance(reply, HandshakeResult):
            raise ProtocolError(
                f"the simulator at {self.address} answered the handshake with "
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

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_transport"] = None  # sockets do not travel; the copy reconnects when used
        return state

    def __repr__(self) -> str:
        return (
            f"RemoteModel(name={self.name!r}, address={self.address!r}, "
            f"system={self.system_name!r})"
        )

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
        reply = self._request(RUN)
        if type(reply) is Reset:  # the simulator was still in an abandoned execution
            reply = self._request(RUN)
        request = self._request
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
                    f"the simulator at {self.address} abandoned the execution (Reset): it "
                    "failed or received an out-of-sequence request; see its log"
                )
            else:
                raise ProtocolError(
                    f"unexpected {kind.__name__} from the simulator at {self.address} "
                    "during an execution"
                )
