"""Serve a rotalumis :class:`~rotalumis.core.Model` to any PPX engine (pyprob, rotalumis...).

The server waits for requests. ``Handshake`` gets a ``HandshakeResult``; ``Run`` starts one
execution of the model under a handler that turns every ``sample``/``observe``/``tag`` into
a PPX message sent as the reply to the engine's latest request, and waits for the engine's
answer (``SampleResult`` carries the value the engine chose); the execution's return value
ends it as ``RunResult``.

Robustness: a request that is out of sequence (a ``Run`` in the middle of an execution, a
``SampleResult`` when idle...), cannot be decoded, is not one message (several ZeroMQ
frames), or arrives while the model fails, gets a
``Reset`` reply; the current execution is abandoned and the server keeps serving. A
``Handshake`` in the middle of an execution (a new engine after the old one died) abandons
the execution and is answered normally. Ctrl-C stops the server cleanly.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from typing import Any

import torch

from rotalumis.core import RNG, Model
from rotalumis.core.errors import DistributionError, ModelError, ProtocolError
from rotalumis.core.runtime import Handler, Message

from ._codec import RESET, decode, encode, encode_observe, encode_sample
from .messages import (
    Handshake,
    HandshakeResult,
    ObserveResult,
    PPXMessage,
    Run,
    RunResult,
    SampleResult,
    Tag,
    TagResult,
)
from .transport import BadRequest, ServerClosed, ServerTransport
from .zmq_transport import ZMQServerTransport

__all__ = ["DEFAULT_ADDRESS", "PPXServer", "serve", "system_name"]

log = logging.getLogger("rotalumis.remote")

#: Where ``serve`` listens unless told otherwise: Linux's abstract IPC namespace, never a network.
DEFAULT_ADDRESS = "ipc://@rotalumis"


def system_name() -> str:
    """``"rotalumis <version>"``, as sent in handshakes."""
    try:
        return f"rotalumis {metadata.version('rotalumis')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "rotalumis"


class _Abandon(BaseException):
    """Unwinds the model (past ``except Exception`` in user code) and says what to reply."""

    def __init__(self, reply: bytes) -> None:
        super().__init__()
        self.reply = reply


class _Shutdown(BaseException):
    """The transport was stopped while the model was running."""


class _PPXHandler(Handler):
    """Sends each random choice of the served model to the engine and applies its answer."""

    def __init__(self, server: PPXServer) -> None:
        super().__init__()
        self._server = server

    def process(self, msg: Message) -> None:
        kind = msg.kind
        server = self._server
        try:
            if kind == "sample":
                dist = msg.distribution
                assert dist is not None
                data = encode_sample(msg.base_address, msg.name, dist, msg.control)
                expected: type = SampleResult
            elif kind == "observe":
                dist = msg.distribution
                assert dist is not None
                data = encode_observe(msg.base_address, msg.name, dist, msg.value)
                expected = ObserveResult
            elif kind == "tag":
                data = encode(Tag(msg.base_address, msg.name, msg.value))
                expected = TagResult
            else:
                raise ModelError(
                    f"{kind}() at {msg.address!r} cannot be served over PPX (the protocol has "
                    "sample, observe and tag only)"
                )
        except ProtocolError as exc:
            raise ModelError(f"cannot send the {kind} at {msg.address!r} over PPX: {exc}") from exc
        request = server.exchange(data)
        if type(request) is not expected:
            server.out_of_sequence(request, expected.__name__)
        if kind == "sample":
            msg.value = _as_value(request.result, dist, msg.base_address)  # type: ignore[union-attr]
        msg.stop = True


def _as_value(value: Any, dist: Any, address: str) -> Any:
    """The engine's value in the form the model would get locally (int for discrete kinds)."""
    if value is None:
        raise ProtocolError(f"SampleResult for {address!r} carries no value")
    if dist.is_scalar:
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ProtocolError(
                    f"SampleResult for scalar {dist.name} at {address!r} has shape "
                    f"{list(value.shape)}"
                )
            value = value.item()
        return round(value) if dist.is_discrete else value
    shape = dist.shape
    t = value if isinstance(value, torch.Tensor) else torch.tensor([value])
    if t.numel() != shape.numel():
        raise ProtocolError(
            f"SampleResult for {dist.name} at {address!r} has {t.numel()} elements, "
            f"expected shape {list(shape)}"
        )
    return t.reshape(shape)


class PPXServer:
    """Serves ``model`` over ``transport`` until stopped.

    Args:
        model: The model whose executions the engine drives.
        transport: A bound server transport (ZeroMQ or in-memory).
        seed: Seed for draws the engine does not make (observations without data).

    Example:
        >>> server = PPXServer(model, ZMQServerTransport("ipc://@demo"))  # doctest: +SKIP
        >>> server.serve_forever()  # doctest: +SKIP
    """

    def __init__(self, model: Model, transport: ServerTransport, seed: int | None = None) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"serve() needs a rotalumis Model, got {type(model).__name__}")
        self.model = model
        self.transport = transport
        self.executions = 0
        self._rng = RNG(seed)
        self._handshake = encode(HandshakeResult(system_name(), model.name))
        self._stopping = threading.Event()

    # -- talking to the engine --------------------------------------------------------------
    def _receive(self) -> PPXMessage | bytes:
        """The next request, decoded; the reply to send instead when it is unusable."""
        data = self.transport.receive()
        try:
            return decode(data)
        except (ProtocolError, DistributionError) as exc:
            log.warning("bad PPX request from the engine (%d bytes): %s", len(data), exc)
            return RESET

    def _reply(self, reply: bytes) -> None:
        """Send ``reply``, or ``Reset`` if the request turns out not to be one message."""
        try:
            self.transport.reply(reply)
        except BadRequest as exc:
            log.warning("bad PPX request from the engine (%s): replying Reset", exc)
            self.transport.reply(RESET)

    def exchange(self, reply: bytes) -> PPXMessage:
        """Answer the pending request with ``reply`` and return the next request."""
        try:
            self.transport.reply(reply)
        except BadRequest as exc:  # what we took for its answer was a malformed request
            log.warning("bad PPX request from the engine (%s): replying Reset", exc)
            raise _Abandon(RESET) from None
        try:
            request = self._receive()
        except ServerClosed:
            raise _Shutdown() from None
        if isinstance(request, bytes):
            raise _Abandon(request)
        return request

    def out_of_sequence(self, request: Any, expected: str) -> None:
        """Abandon the execution because ``request`` came instead of ``expected``."""
        if type(request) is Handshake:
            log.info("new engine connected during an execution; abandoning it")
            raise _Abandon(self._handshake)
        log.warning(
            "out-of-sequence PPX request %s (expected %s): replying Reset",
            type(request).__name__,
            expected,
        )
        raise _Abandon(RESET)

    # -- serving ------------------------------------------------------------------------------
    def _execute(self) -> bytes:
        """Run the model once; return the final reply (RunResult, or Reset on failure)."""
        try:
            with _PPXHandler(self):
                result = self.model.execute(self._rng)
        except _Abandon as abandon:
            return abandon.reply
        except Exception:
            log.exception("the served model %s failed; replying Reset", self.model.name)
            return RESET
        self.executions += 1
        try:
            return encode(RunResult(result))
        except ProtocolError as exc:
            log.warning("result of %s not sent (%s); RunResult carries None", self.model.name, exc)
            return encode(RunResult(None))

    def _answer(self, request: PPXMessage | bytes) -> bytes:
        kind = type(request)
        if kind is Run:
            return self._execute()
        if kind is Handshake:
            log.info("engine %r connected", request.system_name)  # type: ignore[union-attr]
            return self._handshake
        if kind is not bytes:
            log.warning("out-of-sequence PPX request %s while idle: replying Reset", kind.__name__)
        return RESET

    def serve_forever(self, max_requests: int | None = None) -> None:
        """Answer requests until :meth:`stop`, Ctrl-C, or ``max_requests`` idle requests.

        Raises:
            KeyboardInterrupt: on Ctrl-C, after closing the transport.
        """
        log.info("serving %s over PPX at %s", self.model.name, self.transport.address)
        handled = 0
        try:
            while not self._stopping.is_set() and (max_requests is None or handled < max_requests):
                try:
                    request = self._receive()
                except ServerClosed:
                    break
                try:
                    reply = self._answer(request)
                except _Shutdown:
                    break
                self._reply(reply)
                handled += 1
        finally:
            self.transport.close()
            log.info("PPX server at %s stopped", self.transport.address)

    def stop(self) -> None:
        """Ask :meth:`serve_forever` (running in another thread) to return soon."""
        self._stopping.set()
        self.transport.stop()


def serve(
    model: Model,
    address: str = DEFAULT_ADDRESS,
    *,
    seed: int | None = None,
    transport: ServerTransport | None = None,
) -> None:
    """Serve ``model`` over PPX at ``address`` until interrupted.

    Args:
        model: The rotalumis model to serve.
        address: ZeroMQ endpoint to bind (default: ``ipc://@rotalumis``; ``tcp://127.0.0.1:PORT``
            for the loopback network; all interfaces only if you ask for them).
        seed: Seed for the draws the engine does not make.
        transport: Serve over this transport instead (``address`` is then ignored).

    Raises:
        RemoteSimulatorError: if the address cannot be bound.
        KeyboardInterrupt: on Ctrl-C, after the socket was closed.

    Example:
        >>> serve(MyModel(), "tcp://127.0.0.1:5555")  # doctest: +SKIP
    """
    PPXServer(model, transport or ZMQServerTransport(address), seed=seed).serve_forever()
