"""The local executor: work units in forked worker processes on this machine.

Workers are forked, so they start with a copy of the model, the observations and any
proposal (an inference network included) without pickling them: the job goes to each
worker as the argument of its initializer, which ``fork`` hands over in memory. Only each
unit's index goes out and its (small, picklable) result comes back. The workers die with
this process: on Linux they get SIGTERM when it dies, and a SIGTERM to it during a run
terminates them before it dies of the signal itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from .errors import InferenceError
from .executor import (
    Describe,
    Executor,
    Job,
    UnitOutcome,
    WarningRelay,
    check_workers,
    run_unit,
    unit_failed,
)

__all__ = ["ForkPoolExecutor", "die_with_parent"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# The job of this process when it is a worker (set once, by the pool's initializer, in the
# forked child only; the parent never sets it). A worker that starts a parallel run of its
# own finds it set.
_WORKER_JOB: Job | None = None


def die_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent (pid ``parent``; precisely,
    the parent's thread that started it) dies, however it dies: a parent killed with
    SIGKILL runs no handler. Elsewhere it does nothing. Call it in the child."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the parent's SIGTERM handler still helps
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(parent: int, job: Job) -> None:
    global _WORKER_JOB
    import torch

    die_with_parent(parent)
    # the parent's SIGTERM handler (below) was inherited by fork: a worker must just die
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)  # one core per worker
    _WORKER_JOB = job


def _run_in_worker(index: int) -> tuple[int, bool, Any]:
    assert _WORKER_JOB is not None, "worker started without a job"
    try:
        return index, True, run_unit(_WORKER_JOB, index)
    except Exception as exc:  # the parent raises it, with the unit's description
        return index, False, exc


class _Terminated(BaseException):
    """Raised in the parent by SIGTERM during a parallel run, to stop its workers."""


@contextlib.contextmanager
def _terminate_workers_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM (what ``timeout``, SLURM and systemd send) unwinds it,
    so that the pool terminates its workers, and then kills this process as SIGTERM would
    have. Only the main thread can handle signals: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)  # as if this process had received it now
        # only reached when the program's own SIGTERM handler returns
        raise InferenceError("the parallel run was stopped by SIGTERM") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


class ForkPoolExecutor(Executor):
    """Work units in ``workers`` forked processes of this machine (``workers=N``).

    A pool is started for each job (forking is cheap, and the job's model and proposal
    reach the workers in memory), with one core's worth of torch threads per worker.

    Args:
        workers: Number of worker processes (at least 1).

    Raises:
        InferenceError: where processes cannot be forked (the ``fork`` start method is
            missing), or for a parallel run started from inside another one's worker.
    """

    def __init__(self, workers: int) -> None:
        if check_workers(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self.workers = workers

    @property
    def parallelism(self) -> int:
        """The number of worker processes."""
        return self.workers

    def _outcomes(
        self, job: Job, count: int, describe: Describe
    ) -> Iterator[tuple[int, bool, Any]]:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise InferenceError(
                "workers > 0 needs processes started by fork, which this platform lacks; "
                "use workers=0"
            )
        if _WORKER_JOB is not None:
            raise InferenceError("a parallel inference run cannot start another one (workers > 0)")
        if count == 0:
            return
        relay = WarningRelay()
        context = multiprocessing.get_context("fork")
        with (
            _terminate_workers_on_sigterm(),
            context.Pool(min(self.workers, count), _init_worker, (os.getpid(), job)) as pool,
        ):
            for i, ok, payload in pool.imap_unordered(_run_in_worker, range(count)):
                if not ok:
                    yield i, False, unit_failed(payload, describe(i))
                    continue
                outcome: UnitOutcome = payload
                relay(outcome[1])
                yield i, True, outcome[0]
