"""Per-context interception state and the one place where an intercepted draw becomes a site.

A :class:`Session` lives in a :class:`contextvars.ContextVar`, so each thread (and each
asyncio task tree) intercepts independently: the patched functions are shared by the whole
process, but a call made from a context without a session passes straight through to the
original implementation.

``Session.busy`` is the re-entrancy guard: while one intercepted call is being recorded (its
``sample`` running through the handlers, or an unmapped numpy method running on a substitute
generator) every nested intercepted call passes through, so a call implemented through other
calls is recorded once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from types import FrameType
from typing import Any, TypeVar

import numpy as np
import torch

from rotalumis.core import (
    Bernoulli,
    Categorical,
    Distribution,
    RotalumisError,
    Uniform,
    observe,
    sample,
)
from rotalumis.core.rng import RNG
from rotalumis.core.runtime import (
    CACHED_VISITS,
    EMPTY_STACK,
    EXECUTION,
    STACK,
    Execution,
    Message,
    record_message,
    send_sample,
)
from rotalumis.core.trace import Trace, use_compiled_settle

from ._accelerator import ACCEL
from ._address import ADDRESSES, MAX_DEPTH, site_address

__all__ = [
    "ACCELERATED",
    "MEMO_ERRORS",
    "PASS",
    "SEED_DISTRIBUTION",
    "TORCH_FUNCTION",
    "TORCH_IN_PLACE",
    "Session",
    "accelerated_wrapper",
    "bits_distribution",
    "bits_to_int",
    "build_site",
    "memo_key",
    "record",
    "record_python",
    "recording",
    "seed_from_uniform",
    "shaped_label",
    "site_for",
]

T = TypeVar("T")

SEED_DISTRIBUTION = Uniform(0.0, 1.0)
"""Prior of the site recorded for a numpy draw without a distribution mapping."""


class Session:
    """Interception state of one context: nesting depth, re-entrancy guard, site names.

    Attributes:
        names: ``(name, pattern, is_observation)``: a draw whose call-site address contains
            ``pattern`` gets ``name`` (first match wins) and, if ``is_observation``, becomes
            an ``observe`` site.
        sites: Memo of call-site addresses by code and instruction (see :func:`record`).
        frames: Memo of call-site addresses by live frame and instruction.
    """

    __slots__ = ("_name_cache", "busy", "depth", "frames", "names", "sites")

    def __init__(self) -> None:
        self.depth = 0
        self.busy = False
        self.names: tuple[tuple[str, str, bool], ...] = ()
        self._name_cache: dict[str, tuple[str, bool] | None] = {}
        self.sites: dict[tuple[int, int, str], tuple[Any, int, Any, str | None, Any]] = {}
        self.frames: dict[FrameType, dict[int, tuple[str, Any, str | None]]] = {}

    def set_names(self, names: tuple[tuple[str, str, bool], ...]) -> None:
        """Replace the site-name patterns."""
        self.names = names
        self._name_cache = {}

    def name_for(self, base: str) -> tuple[str, bool] | None:
        """``(name, is_observation)`` of the draw at call-site address ``base``, if any."""
        cache = self._name_cache
        if base in cache:
            return cache[base]
        hit = next(((n, obs) for n, pattern, obs in self.names if pattern in base), None)
        cache[base] = hit
        return hit

    def guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` with interception suspended (nested draws pass through)."""
        self.busy = True
        try:
            return fn(*args, **kwargs)
        finally:
            self.busy = False


SESSION: ContextVar[Session | None] = ContextVar("rotalumis_intercept_session", default=None)


def recording() -> Session | None:
    """The session that should record the current call, or ``None`` to pass it through.

    A call is recorded when this context intercepts, no other intercepted call is being
    recorded, and a model is running (handlers are active, or an execution with an entry
    point is in progress). Outside a model run calls pass through to the original
    implementation, so the simulator behaves exactly as without rotalumis.
    """
    s = SESSION.get()
    if s is None or s.busy:
        return None
    if STACK.get() is EMPTY_STACK:
        ex = EXECUTION.get()
        if ex is None or ex.entry_code is None:
            return None
    return s


SPEC_ERRORS = (TypeError, ValueError, ArithmeticError, RotalumisError)
"""What a spec may raise on arguments it does not understand (the original then runs)."""

_MEMO_LIMIT = 256
MEMO_ERRORS = (TypeError, ValueError, RuntimeError)
"""What looking arguments up in a memo may raise (unhashable: a list, an array, ...)."""


def memo_key(args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The key of a call's positional arguments in a wrapper's site memo: the arguments
    themselves when all are floats (or there are none), ``(int, *args)`` when all are
    integers (so ``gauss(0, 1)`` and ``gauss(0.0, 1.0)``, equal as tuples, stay apart), else
    ``None`` (not memoised: its site might depend on more than the values)."""
    floats = True
    for a in args:
        if type(a) is not float:
            floats = False
            break
    if floats:
        return args
    for a in args:
        if type(a) is not int:
            return None
    return (int, *args)


def site_for(
    spec: Callable[..., Any], memo: dict[Any, Any], args: tuple[Any, ...], kwargs: Any
) -> Any:
    """``spec(*args, **kwargs)`` (``None`` if it raises), memoised for calls whose positional
    arguments are all plain floats, or all plain integers, (or absent) and that have no
    keyword arguments (see :func:`memo_key`): such a site (distribution and conversion)
    depends on the values only, so a simulator that draws with the same parameters in a
    loop builds it once."""
    key = None if kwargs else memo_key(args)
    if key is not None:
        site = memo.get(key)
        if site is not None:
            return site
    return build_site(spec, memo, key, args, kwargs)


def build_site(
    spec: Callable[..., Any],
    memo: dict[Any, Any],
    key: Any,
    args: tuple[Any, ...],
    kwargs: Any,
    keep: Callable[[Any], Any] | None = None,
) -> Any:
    """``spec(*args, **kwargs)`` (``None`` if it raises), stored in ``memo`` under ``key``
    (as ``keep(site)`` if given) while the memo has room; ``key`` ``None``: not memoised.
    What :func:`site_for` and the torch wrappers do on a memo miss (their keys and kept
    parts differ; each looks its key up itself, on the hot path)."""
    try:
        site = spec(*args, **kwargs)
    except SPEC_ERRORS:
        return None
    if site is not None and key is not None and len(memo) < _MEMO_LIMIT:
        memo[key] = site if keep is None else keep(site)
    return site


_SHAPED: dict[tuple[str, tuple[int, ...]], str] = {}
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_SITES_LIMIT = 4096

PASS = object()
"""Returned by :func:`record` for a draw the engine itself makes (see :func:`site_address`):
the caller runs the original implementation."""


def shaped_label(label: str, shape: tuple[int, ...]) -> str:
    """``label`` with a vector-valued site's shape: ``np.random.normal[3x2]``."""
    key = (label, shape)
    shaped = _SHAPED.get(key)
    if shaped is None:
        shaped = f"{label}[{'x'.join(map(str, shape))}]"
        if len(_SHAPED) < 10_000:
            _SHAPED[key] = shaped
    return shaped


def _call_site(session: Session, label: str, frame: FrameType, entry: Any) -> str | None:
    """The call-site address of ``label`` called at ``frame`` (:func:`record`'s memo)."""
    parent = frame.f_back
    key = (id(frame.f_code), frame.f_lasti, label)  # the code is in KEPT (site_address)
    sites = session.sites
    hit = sites.get(key)
    if hit is not None and hit[0] is parent and hit[2] is entry and hit[1] == parent.f_lasti:
        base = hit[3]
        if hit[4] is frame and not frame.f_code.co_flags & _SUSPENDABLE:
            # the same live activation again (a loop): remember it by frame
            frames = session.frames
            if len(frames) >= _SITES_LIMIT:
                frames.clear()
            frames.setdefault(frame, {})[frame.f_lasti] = (label, entry, base)
        return base
    base = site_address(frame, entry, label)
    if parent is not None and not parent.f_code.co_flags & _SUSPENDABLE:
        if len(sites) >= _SITES_LIMIT:
            sites.clear()
        sites[key] = (parent, parent.f_lasti, entry, base, frame)
    return base


def record_python(
    session: Session,
    label: str,
    dist: Distribution,
    frame: FrameType,
    shape: tuple[int, ...] = (),
) -> Any:
    """Make the intercepted call ``label`` at ``frame`` a ``sample`` site; return its value.

    A vector-valued site's shape is part of its label (``np.random.normal[3x2]``): a draw of
    another shape is another random choice, so an engine never replays a value of the wrong
    shape into it. Returns :data:`PASS` for a draw made by the engine itself.

    The address of a call site is memoised per session against the live frame that called
    the function containing the draw (the parent): while that frame is the same activation
    at the same instruction, the frames above it cannot have changed, so a loop that draws
    through a helper function finds its address without walking the stack. A parent that
    can be suspended (a generator or coroutine) is never used, since a resumed generator's
    callers may differ. A frame that hits that memo twice (a loop drawing in one function)
    is then remembered by itself (``Session.frames``, keyed by the frame and its
    instruction): a live activation's callers cannot change, so that hit needs no parent
    check; a generator's or coroutine's own frame is never remembered so.

    This is the pure-Python implementation; :data:`record` is the compiled one where it
    is built (same results, see :mod:`._accelerator`).
    """
    if shape:
        label = shaped_label(label, shape)
    ex = EXECUTION.get()
    entry = None if ex is None else ex.entry_code
    at = session.frames.get(frame)
    hit = None if at is None else at.get(frame.f_lasti)
    if hit is not None and hit[0] == label and hit[1] is entry:
        base = hit[2]
    else:
        base = _call_site(session, label, frame, entry)
    if base is None:
        return PASS
    named = session.name_for(base) if session.names else None
    session.busy = True
    try:
        if named is None:  # sample(dist, address=base), without re-checking its arguments
            return send_sample(ex, dist, base)
        if named[1]:  # data: the engine's observed value, or a fresh draw when none is given
            return observe(dist, name=named[0], address=base)
        return sample(dist, name=named[0], address=base)
    finally:
        session.busy = False


ACCELERATED = ACCEL is not None
"""Whether the compiled hot path runs (see :mod:`._accelerator`)."""

record: Callable[..., Any] = record_python
""":func:`record_python`, or its compiled version with the same arguments and results."""

if ACCEL is not None:
    ACCEL.configure(
        SESSION,
        STACK,
        EXECUTION,
        EMPTY_STACK,
        Session,
        type(EMPTY_STACK),
        Execution,
        Trace,
        record_message,
        CACHED_VISITS,
        ADDRESSES,
        MAX_DEPTH,
        _SITES_LIMIT,
        _SUSPENDABLE,
        _SHAPED,
    )
    record = ACCEL.Record(record_python)
    ACCEL.configure_settle(Message)
    ACCEL.configure_draws(Uniform, Categorical, RNG)
    use_compiled_settle(ACCEL.settle)


TORCH_FUNCTION = 1
"""``accelerated_wrapper``'s mode for a torch function (``torch.rand``, ...)."""
TORCH_IN_PLACE = 2
"""``accelerated_wrapper``'s mode for a ``Tensor`` method that fills its tensor."""


def accelerated_wrapper(
    wrapper: Callable[..., Any],
    original: Callable[..., Any],
    memo: dict[Any, Any],
    labels: tuple[str, str],
    global_instance: object,
    skip_type: type | None = None,
    mode: int = 0,
) -> Callable[..., Any]:
    """The compiled version of an intercepting ``wrapper`` (itself without one).

    Args:
        wrapper: The Python wrapper (the fallback of every case the compiled one leaves).
        original: The patched function (called for draws that are not recorded).
        memo: The wrapper's site memo (:func:`site_for`'s, or the torch wrapper's).
        labels: ``(module label, class label)``: the first for calls on
            ``global_instance``.
        global_instance: The instance behind the module-level functions, or ``None``.
        skip_type: Instances of this class are never intercepted.
        mode: ``0`` for random / numpy.random, :data:`TORCH_FUNCTION` or
            :data:`TORCH_IN_PLACE` for torch (see ``_torch_patch``).
    """
    if ACCEL is None:
        return wrapper
    fast = ACCEL.Wrapper(wrapper, original, memo, *labels, global_instance, skip_type, mode)
    for attr in ("__module__", "__name__", "__qualname__", "__doc__", "__wrapped__"):
        setattr(fast, attr, getattr(wrapper, attr))
    return fast  # type: ignore[no-any-return]


_BITS: dict[int, Distribution] = {}


def bits_distribution(k: int) -> Distribution:
    """``k`` fair bits: a ``Bernoulli(0.5)`` vector, the representation of raw bit streams."""
    dist = _BITS.get(k)
    if dist is None:
        dist = Bernoulli(torch.full((k,), 0.5, dtype=torch.float64))
        if len(_BITS) < 256:
            _BITS[k] = dist
    return dist


def bits_to_int(bits: Any) -> int:
    """The integer whose bit ``i`` (least significant first) is ``bits[i]``."""
    arr = np.asarray(bits.detach().cpu() if isinstance(bits, torch.Tensor) else bits)
    packed = np.packbits(arr.reshape(-1).astype(np.uint8), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


def seed_from_uniform(u: Any) -> int:
    """The 53-bit integer seed carried by a uniform variate ``u`` in ``[0, 1)``."""
    return int(float(u) * 9007199254740992.0)  # 2**53
