"""Executors: where the independent work units of a job run.

A job is ``count`` work units. Unit ``i`` is a function call ``job(i)``: a run of
importance-sampling chunks, an MCMC chain, a dataset shard, a batch of simulator calls.
Callers derive every random stream a unit draws from its index (e.g.
``derive_seed(seed, "chunk", k)``), never from where or when it runs, so a job's result is
the same for every executor and any number of workers. ``describe(i)`` says in words which
unit ``i`` is and which seed reproduces it; an error raised by a unit is raised again by the
executor with that description.

Results come back two ways: :meth:`Executor.stream` yields ``(index, result)`` pairs in the
order the units complete (what drives progress bars), :meth:`Executor.map` returns them as
a list in index order. Warnings a unit raises in a worker are raised again in the caller,
once per distinct message.

Implementations: :class:`SerialExecutor` (here, one unit after another),
:class:`ThreadExecutor` (threads of this process: units that wait on other processes, such
as a pool of PPX simulators), :class:`~.forkpool.ForkPoolExecutor` (forked processes on this
machine, the default for ``workers=N``) and, on a cluster,
:class:`rotalumis.distributed.DaskExecutor`, built above the core and passed down as an
object.
"""

from __future__ import annotations

import logging
import queue
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from .errors import RotalumisError, SimulatorLostError
from .limits import current_limits, limit_traces

__all__ = [
    "Executor",
    "SerialExecutor",
    "ThreadExecutor",
    "UnderLimits",
    "UnitOutcome",
    "check_workers",
    "run_unit",
    "unit_failed",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[int], Any]
Describe = Callable[[int], str]
#: What a unit sends back from a worker: its result and the warnings it raised.
UnitOutcome = tuple[Any, list[tuple[type[Warning], str]]]

#: Times a unit whose simulator died (:class:`SimulatorLostError`) is run again elsewhere.
RETRIES = 3


def check_workers(workers: object) -> int:
    """``workers`` itself, or a clear error unless it is a non-negative int."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    return workers


def default_describe(i: int) -> str:
    """The description of unit ``i`` when the caller gives none."""
    return f"work unit {i}"


def run_unit(job: Job, index: int) -> UnitOutcome:
    """Run unit ``index`` in a worker: its result and the warnings it raised (which the
    worker's own warning filters would otherwise show or drop there)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = job(index)
    return out, [(w.category, str(w.message)) for w in caught]


class UnderLimits:
    """A job run under the limits per trace of the caller (engine options such as
    ``max_seconds`` are a context variable, which worker threads and processes do not
    inherit); picklable when the job is."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.limits = current_limits()

    def __call__(self, index: int) -> Any:
        if not self.limits:
            return self.job(index)
        with limit_traces(**self.limits):
            return self.job(index)


class WarningRelay:
    """Raises the warnings units raised in workers again here, once per distinct message."""

    def __init__(self) -> None:
        self.seen: set[tuple[type[Warning], str]] = set()

    def __call__(self, caught: list[tuple[type[Warning], str]]) -> None:
        for category, message in caught:
            if (category, message) not in self.seen:
                self.seen.add((category, message))
                warnings.warn(message, category, stacklevel=4)


def unit_failed(exc: BaseException, description: str) -> BaseException:
    """The error to raise for a unit that raised ``exc``: a rotalumis error keeps its type
    with the unit's description (which names its seed) added to the message; another
    exception keeps its identity and gets the description as a note."""
    if isinstance(exc, RotalumisError):
        try:
            new = type(exc)(f"{exc} [{description}]")
        except Exception:  # a subclass with another constructor
            new = None
        if new is not None:
            new.__dict__.update(exc.__dict__)
            new.__cause__ = exc.__cause__
            return new
    if hasattr(exc, "add_note"):
        exc.add_note(f"rotalumis: raised by {description}")
    return exc


class Executor(ABC):
    """Runs the work units of a job; see the module docstring for the contract.

    Executors are context managers; :meth:`close` releases what they hold (processes, a
    cluster they started).
    """

    #: Whether the job reaches the workers by pickling (``False``: by ``fork``, or threads).
    pickles_jobs: bool = False
    #: Whether units run concurrently on the caller's objects (threads): a unit must then
    #: not share mutable state (a stateful proposal, an MCMC kernel) with the others.
    shares_memory: bool = False

    @property
    @abstractmethod
    def parallelism(self) -> int:
        """How many units run at once (what units are sized by)."""

    @abstractmethod
    def _outcomes(
        self, job: Job, count: int, describe: Describe
    ) -> Iterator[tuple[int, bool, Any]]:
        """Yield ``(i, True, job(i))``, or ``(i, False, error)`` for a unit that raised
        (the error passed through :func:`unit_failed`), as the units complete; closing the
        iterator cancels the units still running."""

    def stream(
        self, job: Job, count: int, describe: Describe | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, job(i))`` for ``i`` in ``range(count)`` as the units complete.

        Raises:
            Exception: what a unit raised (see :func:`unit_failed`); when several fail,
                the one with the lowest index (so the error does not depend on timing:
                the units before it are waited for), and the others are cancelled.
        """
        outcomes = self._outcomes(UnderLimits(job), count, describe or default_describe)
        failed: tuple[int, BaseException] | None = None
        done: set[int] = set()
        try:
            for i, ok, payload in outcomes:
                done.add(i)
                if not ok and (failed is None or i < failed[0]):
                    failed = (i, payload)
                elif ok and failed is None:
                    yield i, payload
                if failed is not None and all(k in done for k in range(failed[0])):
                    break
        finally:
            if hasattr(outcomes, "close"):
                outcomes.close()
        if failed is not None:
            raise failed[1]

    def map(
        self,
        job: Job,
        count: int,
        describe: Describe | None = None,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """``[job(i) for i in range(count)]``, computed by this executor.

        ``on_result(i, result)`` is called as each unit completes (in completion order).
        """
        results: list[Any] = [None] * count
        for i, out in self.stream(job, count, describe):
            results[i] = out
            if on_result is not None:
                on_result(i, out)
        return results

    def ordered(
        self,
        job: Job,
        indices: Iterable[int],
        ahead: int,
        describe: Describe | None = None,
    ) -> Iterator[Any]:
        """``job(i)`` for each ``i`` of ``indices`` (which may be endless), in that order,
        with up to ``ahead`` units computed ahead of the one the caller waits for (online
        training's stream of batches). Here: one after another, when asked for.

        Raises:
            Exception: what a unit raised (see :func:`unit_failed`).
        """
        describe = describe or default_describe
        for i in indices:
            _, ok, payload = _run_with_retries(job, i, describe)  # here: the caller's limits
            if not ok:
                raise payload
            yield payload

    def close(self) -> None:  # noqa: B027 (most executors hold nothing)
        """Release what the executor holds (nothing by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _run_with_retries(job: Job, i: int, describe: Describe) -> tuple[int, bool, Any]:
    """The outcome of ``job(i)``, run again when a simulator of a pool died under it (each
    unit's result depends only on its index, so a rerun elsewhere gives the same result)."""
    for attempt in range(RETRIES + 1):
        try:
            return i, True, job(i)
        except SimulatorLostError as exc:
            if attempt == RETRIES or not exc.retryable:
                return i, False, _failed(exc, describe(i), exc)
            log.warning("%s: %s; running it again", describe(i), exc)
        except Exception as exc:
            return i, False, _failed(exc, describe(i), exc.__cause__)
    raise AssertionError("unreachable")


def _failed(exc: BaseException, description: str, cause: BaseException | None) -> BaseException:
    error = unit_failed(exc, description)
    if error is not exc:
        error.__cause__ = cause
    return error


class SerialExecutor(Executor):
    """Runs the units here, one after another, in index order."""

    @property
    def parallelism(self) -> int:
        """One unit at a time."""
        return 1

    def _outcomes(
        self, job: Job, count: int, describe: Describe
    ) -> Iterator[tuple[int, bool, Any]]:
        for i in range(count):
            yield _run_with_retries(job, i, describe)


class ThreadExecutor(Executor):
    """Runs the units in ``threads`` threads of this process.

    For units that spend their time waiting on other processes (a pool of PPX simulators):
    the job needs no pickling, and the handler stack, being a context variable, is each
    thread's own. A unit whose pooled simulator died is run again (on another one).

    Args:
        threads: Number of threads (at least 1).
    """

    shares_memory = True

    def __init__(self, threads: int) -> None:
        if check_workers(threads) < 1:
            raise ValueError(f"threads must be at least 1, got {threads!r}")
        self.threads = threads

    @property
    def parallelism(self) -> int:
        """The number of threads."""
        return self.threads

    def _outcomes(
        self, job: Job, count: int, describe: Describe
    ) -> Iterator[tuple[int, bool, Any]]:
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(count):
            todo.put(i)
        done: queue.SimpleQueue[tuple[int, bool, Any]] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put(_run_with_retries(job, i, describe))
                except BaseException as exc:  # handed to the caller's thread
                    done.put((i, False, exc))

        threads = [
            threading.Thread(target=work, name=f"rotalumis-unit-{t}", daemon=True)
            for t in range(min(self.threads, count))
        ]
        for t in threads:
            t.start()
        try:
            for _ in range(count):
                yield done.get()
        finally:
            stop.set()
            for t in threads:
                t.join()
