"""The effect-handler runtime: :class:`Message`, :class:`Handler` and the handler stack.

A primitive (``sample``, ``observe``, ``tag``, ``factor``) builds a :class:`Message` and hands
it to :func:`apply_stack`. Handlers on the stack — innermost (most recently entered) first —
may fill in the value, mark it observed, or stop outer handlers from seeing it; then the
default behaviour draws a value if none was chosen and computes the log-probability; finally
the handlers that saw the message ``postprocess`` it, outermost first (this is where a trace
handler records it).

The stack lives in a :class:`contextvars.ContextVar` (never a module global), so threads and
asyncio tasks each see their own stack, and a model that raises leaves the stack exactly as
it found it (handlers are context managers that reset their token on exit).

Per-execution state (the random number generator, the instance counters that make repeated
visits of one address distinct, and the model's entry code object from which addresses are
measured) is an :class:`Execution`, also held in a ``ContextVar``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import CodeType, FrameType
from typing import Any, TypeVar

from .distributions.base import Distribution
from .errors import TraceLimitError
from .rng import RNG

__all__ = [
    "Execution",
    "Handler",
    "Message",
    "apply_stack",
    "current_execution",
    "current_rng",
    "get_stack",
    "send_sample",
]

F = TypeVar("F", bound=Callable[..., Any])


class Message:
    """One random choice (or observation, tag, factor) on its way through the stack.

    Attributes:
        kind: ``"sample"``, ``"observe"``, ``"tag"`` or ``"factor"``.
        name: The user's name for the site, or ``None``. Observations are keyed by name.
        address: Full address: ``<base>__<Distribution>__<instance>``.
        base_address: The call-site part of the address (what PPX simulators send).
        distribution: The distribution (``None`` for tags and factors).
        value: The chosen or observed value; ``None`` until a handler or the default sets it.
        log_prob: ``log p(value)`` under ``distribution`` (summed over elements); for a
            factor, the log-weight itself.
        control: Whether inference engines control this choice (``False``: always drawn
            fresh from the prior, never proposed or replayed).
        observed: ``True`` when ``value`` is data (conditioned or given to ``observe``).
        stop: Set by a handler to hide the message from handlers further out.
        proposal_log_prob: ``log q(value)`` when a proposal (not the prior) chose the value.
        meta: A small dict for handler-specific annotations.
    """

    __slots__ = (
        "address",
        "base_address",
        "control",
        "distribution",
        "kind",
        "log_prob",
        "meta",
        "name",
        "observed",
        "proposal_log_prob",
        "stop",
        "value",
    )

    def __init__(
        self,
        kind: str,
        name: str | None,
        address: str,
        base_address: str,
        distribution: Distribution | None,
        value: Any = None,
        control: bool = True,
        observed: bool = False,
    ) -> None:
        self.kind = kind
        self.name = name
        self.address = address
        self.base_address = base_address
        self.distribution = distribution
        self.value = value
        self.control = control
        self.observed = observed
        self.log_prob: Any = None
        self.stop = False
        self.proposal_log_prob: Any = None
        self.meta: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return (
            f"Message({self.kind}, address={self.address!r}, name={self.name!r}, "
            f"distribution={self.distribution!r}, value={self.value!r})"
        )


class _Stack:
    """An immutable snapshot of the active handlers, with their hooks pre-sorted.

    Only handlers that override ``process``/``postprocess`` are called for them, so a
    trace handler (postprocess only) or a condition handler (process only) costs one call
    per message, not two.
    """

    __slots__ = ("handlers", "post", "pre", "recorder")

    def __init__(self, handlers: tuple[Handler, ...]) -> None:
        self.handlers = handlers
        # innermost first, with the handler's position for ``stop`` bookkeeping
        self.pre: tuple[tuple[int, Callable[[Message], None]], ...] = tuple(
            (i, h.process)
            for i, h in reversed(list(enumerate(handlers)))
            if type(h).process is not Handler.process
        )
        # outermost first
        self.post: tuple[tuple[int, Callable[[Message], None]], ...] = tuple(
            (i, h.postprocess)
            for i, h in enumerate(handlers)
            if type(h).postprocess is not Handler.postprocess
        )
        # The plain prior-recording stack: one trace handler and nothing else. Primitives
        # then skip the generic dispatch of apply_stack (same effect, fewer calls).
        self.recorder: Any = None
        if len(handlers) == 1 and not self.pre:
            h = handlers[0]
            if getattr(type(h), "plain_postprocess", None) is type(h).postprocess:
                self.recorder = h


# The handler stack and the running execution, shared with ``primitives`` and ``intercept``
# (their hot paths read them directly); not part of the API (not in ``__all__``).
EMPTY_STACK = _Stack(())
STACK: ContextVar[_Stack] = ContextVar("rotalumis_handler_stack", default=EMPTY_STACK)
EXECUTION: ContextVar[Execution | None] = ContextVar("rotalumis_execution", default=None)
# The RNG of draws made outside any execution: its own variable, so that reading it never
# installs an execution (which would make a later model call run as part of it).
_FREE_RNG: ContextVar[RNG | None] = ContextVar("rotalumis_free_rng", default=None)


# Full addresses of the first visits of each site, built once (the hot path): the string
# work of an address is then a list index. Element 0 is the site's prefix, which later
# visits join with their number.
CACHED_VISITS = 1024
_FULL_ADDRESSES: dict[tuple[str, str], list[str]] = {}


_UNLIMITED = sys.maxsize

SiteMemo = tuple[FrameType, int, "CodeType | None", str]
"""A memoised call-site address: the parent frame, its instruction, the entry code, the
address (see :func:`~.address.remember_address`)."""


class Execution:
    """State of one model execution: its RNG, instance counters and entry point.

    Args:
        rng: The random number generator for draws made by the default behaviour.
        entry_code: Code object of the model's entry function; addresses list the frames
            from this function down to the site.
        model_name: The model's name (for errors).
        max_choices: Most sites one execution may visit (``None``: no limit); see
            :mod:`rotalumis.core.limits`.

    Attributes:
        choices: Sites visited so far in the current execution.
        deferred: ``None``, or draws counted but not yet added to ``choices`` and
            ``counters`` (the compiled path of :mod:`rotalumis.intercept` keeps them in C and
            sets this): whoever reads or changes either calls :meth:`flush_deferred` first.
        serial: Odd while an execution runs, even between two (what the time limit
            watches; :meth:`Model.executions` counts it).
        check_escapes: Set (by :mod:`rotalumis.intercept`) when the execution ran an
            intercepted simulator: the model then checks once that the simulator's
            randomness does not escape the engine (:mod:`rotalumis.core.escapes`).
        holds: What code above the core keeps for all the executions of one
            :meth:`Model.executions` block (or the one of :meth:`Model.execute`), by holder:
            each value is called once when the block ends (:func:`release_holds`). E.g.
            :mod:`rotalumis.intercept` keeps its patches installed from the first execution
            that intercepts to the block's end, rather than installing them anew each time.
    """

    __slots__ = (
        "check_escapes",
        "choices",
        "counters",
        "deferred",
        "entry_code",
        "holds",
        "max_choices",
        "model_name",
        "rng",
        "serial",
        "sites",
    )

    def __init__(
        self,
        rng: RNG,
        entry_code: CodeType | None = None,
        model_name: str | None = None,
        max_choices: int | None = None,
    ) -> None:
        self.rng = rng
        self.entry_code = entry_code
        #: ``(base, kind) -> [visits so far, the site's address list]``.
        self.counters: dict[tuple[str, str], list[Any]] = {}
        self.check_escapes = False
        self.model_name = model_name
        self.max_choices = _UNLIMITED if max_choices is None else max_choices
        self.choices = 0
        self.deferred: Any = None
        self.serial = 0
        #: Memo of call-site addresses (see :func:`~.address.remember_address`).
        self.sites: dict[tuple[int, int], SiteMemo] = {}
        self.holds: dict[object, Callable[[], None]] = {}

    def flush_deferred(self) -> None:
        """Add the deferred visits (see ``deferred``) to ``choices`` and ``counters``."""
        deferred = self.deferred
        if deferred is not None:
            self.deferred = None
            deferred.flush(self)

    def next_address(self, base: str, kind: str) -> str:
        """The full address of the next visit of ``base`` with distribution ``kind``.

        Raises:
            TraceLimitError: when the execution exceeds ``max_choices`` sites.
        """
        if self.deferred is not None:
            self.flush_deferred()
        choices = self.choices + 1
        self.choices = choices
        if choices > self.max_choices:
            raise TraceLimitError(
                f"model {self.model_name!r} made more than {self.max_choices:,} random "
                "choices (sample/observe/tag/factor sites) in one execution (limit "
                "max_choices; a runaway loop? change or disable it with max_choices=..., "
                "--max-choices or the model's trace_limits)"
            )
        key = (base, kind)
        counter = self.counters.get(key)
        if counter is None:
            shared = _FULL_ADDRESSES.get(key)
            if shared is None:
                shared = _FULL_ADDRESSES[key] = [f"{base}__{kind}__"]
            counter = self.counters[key] = [0, shared]
        n = counter[0] + 1
        counter[0] = n
        # visit n of this site is element n of its address list, shared by all executions
        fulls: list[str] = counter[1]
        if n < len(fulls):
            hit: str = fulls[n]
            return hit
        full: str = fulls[0] + str(n)
        if n == len(fulls) and n <= CACHED_VISITS:  # visits 1 .. n-1 came before
            fulls.append(full)
        return full


def get_stack() -> tuple[Handler, ...]:
    """The handlers currently active, outermost first."""
    return STACK.get().handlers


def current_execution() -> Execution | None:
    """The execution in progress in this context, or ``None`` outside a model run."""
    return EXECUTION.get()


def current_rng() -> RNG:
    """The RNG of the execution in progress; outside one, an unseeded RNG of this context.

    Reading it changes no execution state: outside a model run no execution is installed,
    so a later model call starts its own (addresses and instance counters are unaffected
    by stray draws). Draws outside a model run (a simulator called directly) are not
    reproducible unless the caller runs it through a
    :class:`~rotalumis.core.model.Model` with a seed.
    """
    ex = EXECUTION.get()
    if ex is not None:
        return ex.rng
    rng = _FREE_RNG.get()
    if rng is None:
        rng = RNG(None)
        _FREE_RNG.set(rng)
    return rng


def release_holds(execution: Execution) -> None:
    """Call (and drop) each of ``execution.holds``, also when one raises (the first error
    is raised again after all ran): the end of a block of executions."""
    error: BaseException | None = None
    holds = execution.holds
    while holds:
        _, release = holds.popitem()
        try:
            release()
        except BaseException as exc:  # every hold is released, whatever the first did
            error = error or exc
    if error is not None:
        raise error


def enter_execution(execution: Execution) -> Token[Execution | None]:
    """Make ``execution`` current; pass the returned token to :func:`exit_execution`."""
    return EXECUTION.set(execution)


def exit_execution(token: Token[Execution | None]) -> None:
    """Restore the execution that was current before :func:`enter_execution`."""
    EXECUTION.reset(token)


class Handler:
    """Base class of effect handlers; usable as context manager, decorator or wrapper.

    Override :meth:`process` (runs before the value is chosen, innermost handler first)
    and/or :meth:`postprocess` (runs after, outermost handler first).

    Example:
        >>> class Printer(Handler):
        ...     def postprocess(self, msg):
        ...         print(msg.kind, msg.value)
    """

    def __init__(self) -> None:
        self._tokens: list[Token[_Stack]] = []

    def process(self, msg: Message) -> None:
        """Inspect or change ``msg`` before the default behaviour runs."""

    def postprocess(self, msg: Message) -> None:
        """Inspect ``msg`` once its value and log-probability are final."""

    def __enter__(self) -> Handler:
        tokens = self.__dict__.get("_tokens")
        if tokens is None:  # a subclass forgot super().__init__()
            tokens = self._tokens = []
        tokens.append(STACK.set(_Stack((*STACK.get().handlers, self))))
        return self

    def __exit__(self, *exc: object) -> None:
        STACK.reset(self._tokens.pop())

    def __call__(self, fn: F) -> F:
        """Wrap ``fn`` so that it runs with this handler active."""

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapped  # type: ignore[return-value]


def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the active handlers and the default behaviour.

    The default behaviour draws ``value`` from the distribution when no handler chose one
    and computes ``log_prob`` when no handler did.
    """
    stack = STACK.get()
    stopped_at = -1
    for index, process in stack.pre:
        process(msg)
        if msg.stop:
            stopped_at = index
            break
    dist = msg.distribution
    if dist is not None:
        if msg.value is None:
            msg.value = dist.sample(current_rng())
        if msg.log_prob is None:
            msg.log_prob = dist.log_prob_sum(msg.value)
    if stopped_at < 0:
        for _, postprocess in stack.post:
            postprocess(msg)
    else:  # only the handlers that saw the message (inside the one that stopped it)
        for index, postprocess in stack.post:
            if index >= stopped_at:
                postprocess(msg)
    return msg


def send_sample(
    ex: Execution | None,
    dist: Distribution,
    base: str,
    name: str | None = None,
    control: bool = True,
) -> Any:
    """Send the ``sample`` site ``dist`` at call-site address ``base``; return its value.

    What :func:`~rotalumis.core.primitives.sample` does once its arguments are checked and
    its address is known, and what intercepted draws do: the one place where a recorded
    ``sample`` site is made. ``ex`` is the running execution (``None``: outside one, the
    site is the first visit). Under the plain prior-recording stack (one
    :class:`~rotalumis.core.handlers.TraceHandler`, see ``_Stack.recorder``) it records
    directly, with :func:`apply_stack`'s effect but not its dispatch: draw from the
    execution's RNG, score, ``Trace.add``. An unnamed site of a scalar distribution
    whose value is a number is only drawn and counted: it waits in the trace's
    ``pending`` records until the trace is read (:meth:`.trace.Trace.settle`).
    """
    if ex is None:
        msg = Message("sample", name, base + "__" + dist.name + "__1", base, dist, None, control)
        return apply_stack(msg).value
    address = ex.next_address(base, dist.name)
    recorder = STACK.get().recorder
    if recorder is None:
        return apply_stack(Message("sample", name, address, base, dist, None, control)).value
    value = dist.sample(ex.rng)
    vt = type(value)
    if name is None and (vt is float or vt is int) and dist.is_scalar:
        # a number from Python numbers: its message is made when the trace is read
        recorder.trace.pending.append((address, base, dist, value, control))
        return value
    record_message(recorder, address, base, dist, value, name, control)
    return value


def record_message(
    recorder: Any,
    address: str,
    base: str,
    dist: Distribution,
    value: Any,
    name: str | None = None,
    control: bool = True,
) -> None:
    """Record the drawn ``sample`` site at once (:func:`send_sample`'s sites that are not
    deferred; also called by the compiled hot path of :mod:`rotalumis.intercept`)."""
    msg = Message("sample", name, address, base, dist, value, control)
    msg.log_prob = dist.log_prob_sum(value)
    recorder.trace.add(msg)
