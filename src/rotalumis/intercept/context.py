"""The :func:`intercept` context manager / decorator.

Entering installs the patches of :mod:`random`, :mod:`numpy.random` and torch (once per process,
shared by all threads and nesting levels, reference counted) and marks this context as
intercepting; leaving unmarks it and, when the last user leaves, restores every original
object, also when the body raised. Inside a model execution the engine's block of executions
is one more user (``Execution.holds``): the patches are installed at its first execution
that intercepts and removed when the block ends, not around every execution (~30 us each on
the development machine). Meanwhile a draw outside every ``with intercept()`` block passes
straight through to the original implementation (no session), as it does in threads that do
not intercept.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextvars import Token
from typing import Any, TypeVar

from rotalumis.core import current_execution

from ._accelerator import ACCEL
from ._numpy_patch import numpy_patches
from ._patching import AliasPatch, ClassPatch
from ._random_patch import random_patches
from ._session import SESSION, Session
from ._torch_patch import torch_patches

__all__ = ["Intercept", "intercept", "is_installed"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class _Installer:
    """Process-wide, reference-counted installation of all patches.

    Installed iff ``users > 0`` whenever no call is inside it. Re-entry on the thread that is
    inside (a finalizer run by a collection that an allocation of the patches started, e.g.
    of an abandoned block of executions or of a generator whose cleanup intercepts; a signal
    handler) never waits: it only counts, and the outer call brings the patches in line with
    the count before it leaves. Other threads wait for the lock. A fork waits until no call
    is inside (the child then starts with a free lock and whole patches).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users = 0
        self._busy = False  # a call on the lock's owner thread is installing or removing
        self._applied = False
        self._patches: list[ClassPatch] | None = None
        self._aliases: AliasPatch | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork_in_child,
            )

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()  # the parent's is held (by the forking thread)

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._busy or self._applied:
                return  # installed, or the outer call on this thread settles it
            try:
                self._settle()
            except BaseException:
                self._users -= 1
                raise

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if not self._busy and self._applied and self._users == 0:
                self._settle()

    def _settle(self) -> None:
        """Install or remove until the patches match the count (re-entrant calls made
        while this runs may change it)."""
        self._busy = True
        try:
            while self._applied != (self._users > 0):
                if self._applied:
                    self._remove()
                else:
                    self._install()
        finally:
            self._busy = False

    def _install(self) -> None:
        if self._patches is None:
            rp, ra = random_patches()
            npp, na = numpy_patches()
            tp, ta = torch_patches()
            self._patches = rp + npp + tp
            self._aliases = AliasPatch(ra + na + ta)
        assert self._aliases is not None
        applied: list[ClassPatch] = []
        try:
            for patch in self._patches:
                patch.apply()
                applied.append(patch)
            self._aliases.apply()
        except BaseException:
            for patch in reversed(applied):
                patch.restore()
            raise
        self._applied = True
        log.debug("intercept: %d patches installed", len(self._patches))

    def _remove(self) -> None:
        assert self._patches is not None and self._aliases is not None
        self._applied = False
        self._aliases.restore()
        for patch in reversed(self._patches):
            patch.restore()
        if ACCEL is not None:  # nothing of this run stays alive through a wrapper
            ACCEL.forget_calls()
        log.debug("intercept: patches removed")

    @property
    def installed(self) -> bool:
        return self._users > 0


_INSTALLER = _Installer()


def is_installed() -> bool:
    """Whether the patches are currently installed (some context is intercepting)."""
    return _INSTALLER.installed


class Intercept:
    """Route the ``random``, ``numpy.random`` and ``torch`` draws of unmodified code to rotalumis.

    Usable as a context manager (``with intercept(): ...``) or a decorator
    (``@intercept()``); see :func:`intercept` for ``names``. Nested and re-entrant use is
    fine: the outermost exit in a context ends interception there. Each thread (or asyncio
    task tree) intercepts only inside its own ``with`` block; threads that do not intercept
    see unchanged behaviour meanwhile. Threads started inside the block do not inherit
    interception. One instance used as a context manager belongs to one thread at a time
    (the decorator form has no such limit).
    """

    def __init__(
        self,
        names: Mapping[str, str] | None = None,
        observed: Mapping[str, str] | None = None,
        check_escapes: bool = True,
    ) -> None:
        self.names = _check_names(observed, "observed", True) + _check_names(names, "names", False)
        if not isinstance(check_escapes, bool):
            raise TypeError(f"check_escapes must be True or False, got {check_escapes!r}")
        self.check_escapes = check_escapes
        self._saved: list[tuple[Token[Session | None] | None, tuple[tuple[str, str, bool], ...]]]
        self._saved = []

    def __enter__(self) -> Intercept:
        session = SESSION.get()
        execution = current_execution()
        if execution is not None:
            if self.check_escapes:
                execution.check_escapes = True
            if _INSTALLER not in execution.holds:
                # installed until the engine's block of executions ends, not removed and
                # installed again around each execution (see Execution.holds)
                _INSTALLER.acquire()
                execution.holds[_INSTALLER] = _INSTALLER.release
        _INSTALLER.acquire()
        token = None
        if session is None:
            session = Session()
            token = SESSION.set(session)
        self._saved.append((token, session.names))
        if self.names:  # inner patterns first, then the enclosing block's
            session.set_names(self.names + session.names)
        session.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        token, names = self._saved.pop()
        session = SESSION.get()
        try:
            if session is not None:
                session.depth -= 1
                if session.names is not names:
                    session.set_names(names)
            if token is not None:
                SESSION.reset(token)
                if ACCEL is not None and session is not None:
                    ACCEL.forget_calls(session)  # its calls (and their frames) end with it
        finally:
            _INSTALLER.release()

    def __call__(self, fn: F) -> F:
        """Wrap ``fn`` so that each call runs under interception."""

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():  # a new instance per call: threads may share fn
                return fn(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    def _fresh(self) -> Intercept:
        """A new instance with this one's (already validated) settings."""
        new = Intercept(check_escapes=self.check_escapes)
        new.names = self.names
        return new


def _check_names(
    names: Mapping[str, str] | None, what: str, observation: bool
) -> tuple[tuple[str, str, bool], ...]:
    if names is None:
        return ()
    if not isinstance(names, Mapping):
        raise TypeError(f"{what} must map a site name to an address pattern, got {names!r}")
    for name, pattern in names.items():
        if not isinstance(name, str) or not name or not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{what}: {name!r}: {pattern!r} must be two non-empty strings")
    return tuple((name, pattern, observation) for name, pattern in names.items())


def intercept(
    names: Mapping[str, str] | None = None,
    observed: Mapping[str, str] | None = None,
    check_escapes: bool = True,
) -> Intercept:
    """Intercept the ``random``, ``numpy.random`` and ``torch`` draws of code run inside the block.

    Inside a model execution each draw becomes a ``sample`` site whose value the inference
    engine chooses; outside one the calls run their original implementation, so the
    simulator behaves exactly as without rotalumis.

    Args:
        names: Names for intercepted draws: ``{name: pattern}`` names every draw whose
            call-site address (e.g. ``forward:9/simulate:30/np.random.normal[8x8]``)
            contains ``pattern``. A named draw is reported as a posterior latent.
        observed: Intercepted draws that are the data, ``{name: pattern}``: such a draw
            becomes an ``observe`` site named ``name``, so ``observe={name: data}`` given to
            an engine returns the data to the simulator and makes the simulator's own noise
            distribution the likelihood (without data it is drawn as usual). These patterns
            are tried before those of ``names``; the first match wins. A pattern should
            match one draw per execution.
        check_escapes: After the model's first execution that enters this block, run the
            model twice more from the prior with one seed and warn
            (:class:`~rotalumis.core.errors.EscapedRandomnessWarning`, naming what
            differed) when they differ: randomness that escapes interception. It costs two
            executions, once per model; ``False`` turns it off.

    Example:
        >>> import numpy as np
        >>> from rotalumis.core import model
        >>> @model
        ... def run():
        ...     with intercept():
        ...         return np.random.normal(0.0, 1.0)
        >>> trace = run.get_trace(seed=0)
        >>> [v.address.split("/")[-1] for v in trace.variables]
        ['np.random.normal__Normal__1']
    """
    return Intercept(names, observed, check_escapes)
