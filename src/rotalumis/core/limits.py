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
  limit after it began. Off the main thread (Dask workers, pools of PPX simulators), where
  no signal arrives, a watchdog thread checks as often and raises the error in the
  overrunning thread when that thread next runs Python code (a model blocked in one long
  call, e.g. ``time.sleep``, stops when the call returns). Where ``SIGALRM`` does not
  exist only ``max_choices`` applies. A timer the program had set (e.g.
  pytest-timeout's) keeps running: its handler is called when it is due.

Exceeding a limit raises :class:`~rotalumis.core.errors.TraceLimitError` naming the model
and the limit (engines add the trace and the run's seed). The defaults never trigger on a
legitimate model; change or disable them (``None``) per call (``max_choices=``,
``max_seconds=`` engine options, ``rotalumis run --max-choices/--max-seconds``), for a
block of code (:func:`limit_traces`), or per model (a ``trace_limits`` attribute holding a
:class:`TraceLimits`). Precedence: call or block, then model, then the defaults.
"""

from __future__ import annotations

import contextlib
import ctypes
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
    "current_limits",
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
        max_seconds: Most wall-clock seconds per execution.

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


def current_limits() -> dict[str, Any]:
    """The limits :func:`limit_traces` set here (a context variable, which threads and
    other processes do not inherit: executors carry it into their units)."""
    return dict(_OVERRIDES.get())


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
            raise TraceLimitError(_overtime_message(self.execution.model_name, self.seconds))


def _overtime_message(model_name: str | None, seconds: float) -> str:
    return (
        f"model {model_name!r}: one execution ran longer than {seconds:g} s (limit "
        "max_seconds; a runaway loop? change or disable it with max_seconds=..., "
        "--max-seconds or the model's trace_limits)"
    )


class _ThreadWatch:
    """The watch of one thread other than the main one (see :func:`_watched_thread`)."""

    def __init__(self, execution: Execution, seconds: float) -> None:
        self.execution = execution
        self.seconds = seconds
        self.serial = -1
        self.since = 0.0
        self.fired = False


class _Overtime(TraceLimitError):
    """Raised in a thread by the watchdog (Python raises it without arguments: the
    message is the thread's watch's); travels, pickled, as a plain TraceLimitError."""

    def __init__(self, *args: object) -> None:
        if not args:
            watch = _THREAD_WATCHES.get(threading.get_ident())
            name = watch.execution.model_name if watch is not None else "?"
            args = (_overtime_message(name, watch.seconds if watch is not None else 0.0),)
        super().__init__(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TraceLimitError, self.args)


_THREAD_WATCHES: dict[int, _ThreadWatch] = {}
_WATCHDOG = threading.Condition()
_WATCHDOG_THREAD: threading.Thread | None = None


def _raise_in(ident: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``ident`` when it next runs Python code (``None``: cancel
    one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None
    )


def _watchdog() -> None:
    """Checks the watched threads every quarter of the shortest limit (a daemon thread)."""
    while True:
        with _WATCHDOG:
            while not _THREAD_WATCHES:
                _WATCHDOG.wait()
            tick = min(w.seconds for w in _THREAD_WATCHES.values()) / 4
            _WATCHDOG.wait(tick)
            now = time.monotonic()
            for ident, watch in _THREAD_WATCHES.items():
                serial = watch.execution.serial
                if watch.fired or not serial & 1:  # between executions
                    continue
                if serial != watch.serial:
                    watch.serial, watch.since = serial, now
                elif now - watch.since >= watch.seconds:
                    watch.fired = True
                    _raise_in(ident, _Overtime)


@contextlib.contextmanager
def _watched_thread(execution: Execution, seconds: float) -> Iterator[None]:
    """:func:`watch_time` off the main thread, where no signal arrives: a watchdog thread
    raises :class:`TraceLimitError` in this thread when an execution overruns. Python
    delivers it at the next bytecode the thread runs: a model blocked in one long call
    (``time.sleep``, a C routine) is stopped when that call returns."""
    global _WATCHDOG_THREAD
    ident = threading.get_ident()
    with _WATCHDOG:
        if ident in _THREAD_WATCHES:  # an execution inside another one: the outer watch
            nested = True
        else:
            nested = False
            _THREAD_WATCHES[ident] = watch = _ThreadWatch(execution, seconds)
            if _WATCHDOG_THREAD is None or not _WATCHDOG_THREAD.is_alive():
                _WATCHDOG_THREAD = threading.Thread(
                    target=_watchdog, name="rotalumis-max-seconds", daemon=True
                )
                _WATCHDOG_THREAD.start()
            _WATCHDOG.notify()
    if nested:
        yield
        return
    try:
        yield
    finally:
        with _WATCHDOG:
            if watch.fired:
                _raise_in(ident, None)  # if it was not raised yet, it never is
            del _THREAD_WATCHES[ident]


@contextlib.contextmanager
def watch_time(execution: Execution, seconds: float | None) -> Iterator[None]:
    """Stop any execution of ``execution`` that runs longer than ``seconds``.

    The execution's ``serial`` is odd while one runs (:meth:`Model.executions` counts it);
    a ``SIGALRM`` timer ticking every ``seconds / 4`` raises
    :class:`~rotalumis.core.errors.TraceLimitError` inside the model when the same serial
    has been running for ``seconds`` (off the main thread a watchdog thread does the same).
    Does nothing without ``SIGALRM``, inside another watch, or when ``seconds`` is
    ``None``.
    """
    global _WATCHING
    if seconds is not None and threading.current_thread() is not threading.main_thread():
        with _watched_thread(execution, seconds):
            yield
        return
    if seconds is None or _WATCHING or not hasattr(signal, "setitimer"):
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
