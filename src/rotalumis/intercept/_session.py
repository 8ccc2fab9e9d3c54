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

from collections.abc import Callable
from contextvars import ContextVar
from types import FrameType
from typing import Any, TypeVar

import numpy as np
import torch

from rotalumis.core import Bernoulli, Distribution, Uniform, current_execution, observe, sample
from rotalumis.core.runtime import get_stack

from ._address import site_address

__all__ = [
    "SEED_DISTRIBUTION",
    "Session",
    "bits_distribution",
    "bits_to_int",
    "record",
    "recording",
    "seed_from_uniform",
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
    """

    __slots__ = ("_name_cache", "busy", "depth", "names")

    def __init__(self) -> None:
        self.depth = 0
        self.busy = False
        self.names: tuple[tuple[str, str, bool], ...] = ()
        self._name_cache: dict[str, tuple[str, bool] | None] = {}

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
    if not get_stack():
        ex = current_execution()
        if ex is None or ex.entry_code is None:
            return None
    return s


_SHAPED: dict[tuple[str, tuple[int, ...]], str] = {}


def record(
    session: Session,
    label: str,
    dist: Distribution,
    frame: FrameType,
    shape: tuple[int, ...] = (),
) -> Any:
    """Make the intercepted call ``label`` at ``frame`` a ``sample`` site; return its value.

    A vector-valued site's shape is part of its label (``np.random.normal[3x2]``): a draw of
    another shape is another random choice, so an engine never replays a value of the wrong
    shape into it.
    """
    if shape:
        key = (label, shape)
        shaped = _SHAPED.get(key)
        if shaped is None:
            shaped = f"{label}[{'x'.join(map(str, shape))}]"
            if len(_SHAPED) < 10_000:
                _SHAPED[key] = shaped
        label = shaped
    ex = current_execution()
    base = site_address(frame, None if ex is None else ex.entry_code, label)
    named = session.name_for(base) if session.names else None
    session.busy = True
    try:
        if named is None:
            return sample(dist, address=base)
        if named[1]:  # data: the engine's observed value, or a fresh draw when none is given
            return observe(dist, name=named[0], address=base)
        return sample(dist, name=named[0], address=base)
    finally:
        session.busy = False


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
