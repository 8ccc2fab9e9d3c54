"""Limits per trace: how many random choices and how many seconds one execution may take.

A model that never stops (``while True`` in ``forward``, a rejection loop that never
accepts, a PPX simulator that streams ``Sample`` messages forever) would otherwise hang
every engine or fill the memory. Each execution therefore has two limits, checked by the
runtime for every engine, dataset generation and training:

* ``max_choices``: sites (``sample``, ``observe``, ``tag``, ``factor`` calls) in one
  execution; counted exactly, at every site.
* ``max_seconds``: wall time of one execution; measured by a timer signal (``SIGALRM``)
  on the main thread, which stops even a loop that makes no random choice. The timer
  ticks every quarter of the limit, so an execution stops between 1 and 1.5 times the
  limit after it began. Off the main thread (and where ``SIGALRM`` does not exist) no
  timer can interrupt the model: only ``max_choices`` applies there. A timer the program
  had set (e.g. pytest-timeout's) keeps running: its handler is called when it is due.

Exceeding a limit raises :class:`~rotalumis.core.errors.TraceLimitError` naming the model
and the limit (engines add the trace and the run's seed). The defaults never trigger on a
legitimate model; change or disable them (``None``) per call (``max_choices=``,
``max_seconds=`` engine options, ``rotalumis run --max-choices/--max-seconds``), for a
block of code (:func:`limit_traces`), or per model (a ``trace_limits`` attribute holding a
:class:`TraceLimits`). Precedence: call or block, then model, then the defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .errors import TraceLimitError
from .runtime import Execution

__all__ = [
    "DEFAULT_MAX_CHOICES",
    "DEFAULT_MAX_SECONDS",
    "LIMIT_OPTIONS",
    "TraceLimits",
    "limit_traces",
    "limits_for",
    "watch_time",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_CHOICES = 1_000_000
"""Sites per execution: simulators with hundreds of thousands of draws stay far below."""
DEFAULT_MAX_SECONDS = 3600.0
"""Seconds per execution: an hour, far above any simulator run inference is practical on."""
LIMIT_OPTIONS = ("max_choices", "max_seconds")
"""The engine options (and :func:`limit_traces` keywords) that set limits per trace."""


@dataclass(frozen=True)
class TraceLimits:
    """Limits of one execution (frozen, validated); ``None`` disables a limit.

    Attributes:
        max_choices: Most sites (``sample``/``observe``/``tag``/``factor``) per execution.
        max_seconds: Most wall-clock seconds per execution (main thread only).

    Example:
        >>> class Slow(Model):  # doctest: +SKIP
        ...     trace_limits = TraceLimits(max_seconds=7200.0)
    """

    max_choices: int | None = DEFAULT_MAX_CHOICES
    max_seconds: float | None = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        c = self.max_choices
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 1):
            raise ValueError(f"max_choices must be a positive integer or None, got {c!r}")
        s = self.max_seconds
        if s is not None and (
            isinstance(s, bool)
            or not isinstance(s, (int, float))
            or not (s > 0 and math.isfinite(s))
        ):
            raise ValueError(f"max_seconds must be a positive number or None, got {s!r}")


_OVERRIDES: ContextVar[tuple[tuple[str, Any], ...]] = ContextVar(
    "rotalumis_trace_limits", default=()
)


@contextlib.contextmanager
def limit_traces(**limits: int | float | None) -> Iterator[None]:
    """Set limits per trace for every execution started inside the block.

    Args:
        **limits: ``max_choices`` and/or ``max_seconds`` (``None`` disables one).

    Raises:
        ValueError: for another keyword or an invalid value.

    Example:
        >>> with limit_traces(max_seconds=10.0):  # doctest: +SKIP
        ...     posterior = model.posterior(1000, observe={"y": 1.0})
    """
    unknown = set(limits) - set(LIMIT_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown trace limit {', '.join(sorted(unknown))} (limits: {', '.join(LIMIT_OPTIONS)})"
        )
    TraceLimits(**limits)  # type: ignore[arg-type]  # validates the values
    token = _OVERRIDES.set(tuple({**dict(_OVERRIDES.get()), **limits}.items()))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def limits_for(model: Any) -> TraceLimits:
    """The limits that apply to ``model``'s executions started now.

    Raises:
        TypeError: if the model's ``trace_limits`` attribute is not a :class:`TraceLimits`.
    """
    base = getattr(model, "trace_limits", None)
    if base is None:
        base = _DEFAULTS
    elif not isinstance(base, TraceLimits):
        raise TypeError(
            f"model {getattr(model, 'name', model)!r}: trace_limits must be a TraceLimits, "
            f"got {type(base).__name__}"
        )
    overrides = _OVERRIDES.get()
    return dataclasses.replace(base, **dict(overrides)) if overrides else base


_DEFAULTS = TraceLimits()

# A timer signal is process-wide state: one watch at a time (an execution started inside
# another one is covered by the outer watch), hence a module-level flag.
_WATCHING = False
_WARNED_THREAD = False


class _Watch:
    """The ``SIGALRM`` handler of one watch: raises when one execution runs too long."""

    def __init__(
        self, execution: Execution, seconds: float, previous: Any, previous_due: float | None
    ) -> None:
        self.execution = execution
        self.seconds = seconds
        self.previous = previous
        self.previous_due = previous_due
        self.serial = -1
        self.since = 0.0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        due = self.previous_due
        if due is not None and now >= due:  # the program's own timer is due: its turn
            self.previous_due = None
            if callable(self.previous):
                self.previous(signum, frame)
        serial = self.execution.serial
        if not serial & 1:  # between executions
            return
        if serial != self.serial:
            self.serial, self.since = serial, now
            return
        if now - self.since >= self.seconds:
            self.serial = -1
            raise TraceLimitError(
                f"model {self.execution.model_name!r}: one execution ran longer than "
                f"{self.seconds:g} s (limit max_seconds; a runaway loop? change or disable "
                "it with max_seconds=..., --max-seconds or the model's trace_limits)"
            )


@contextlib.contextmanager
def watch_time(execution: Execution, seconds: float | None) -> Iterator[None]:
    """Stop any execution of ``execution`` that runs longer than ``seconds``.

    The execution's ``serial`` is odd while one runs (:meth:`Model.executions` counts it);
    a ``SIGALRM`` timer ticking every ``seconds / 4`` raises
    :class:`~rotalumis.core.errors.TraceLimitError` inside the model when the same serial
    has been running for ``seconds``. Does nothing off the main thread, without
    ``SIGALRM``, inside another watch, or when ``seconds`` is ``None``.
    """
    global _WATCHING, _WARNED_THREAD
    if seconds is None or _WATCHING or not hasattr(signal, "setitimer"):
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        if not _WARNED_THREAD:
            _WARNED_THREAD = True
            log.warning(
                "max_seconds is not enforced off the main thread (no timer signal can "
                "interrupt a model there); max_choices still is"
            )
        yield
        return
    tick = seconds / 4
    start = time.monotonic()
    watch = _Watch(execution, seconds, None, None)
    previous = signal.signal(signal.SIGALRM, watch)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, tick, tick)
    watch.previous = previous
    if old_delay > 0:
        watch.previous_due = start + old_delay
        if old_delay < tick:
            signal.setitimer(signal.ITIMER_REAL, old_delay, tick)
    _WATCHING = True
    try:
        yield
    finally:
        _WATCHING = False
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if old_delay > 0:
            if watch.previous_due is not None:  # not yet due: the rest of its delay
                left = max(watch.previous_due - time.monotonic(), 1e-6)
                signal.setitimer(signal.ITIMER_REAL, left, old_interval)
            elif old_interval > 0:
                signal.setitimer(signal.ITIMER_REAL, old_interval, old_interval)
