"""Independent pieces of a job (chunks of importance samples, MCMC chains, dataset shards)
in worker processes on this machine.

Workers are forked, so they start with a copy of the model, the observations and any
proposal (an inference network included) without pickling them; only each piece's index
goes out and its (small, picklable) result comes back. Callers give each piece a random
stream that depends on its index only, so their results are the same for any number of
workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from .errors import InferenceError
from .model import Model

__all__ = ["check_parallel", "map_in_workers"]

_JOB: Callable[[int], Any] | None = None  # the piece function, inherited by forked workers


def check_parallel(model: Model | None, workers: object) -> None:
    """A clear error unless ``workers`` is a non-negative int, or when ``model`` (if given)
    cannot be copied into worker processes."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    if workers and model is not None and not model.supports_worker_processes:
        raise ValueError(
            f"workers={workers}: model {model.name!r} cannot run in worker processes "
            "(a PPX simulator serves one connection); use workers=0"
        )


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send this worker SIGTERM when its parent dies (however it dies: a
    parent killed with SIGKILL runs no handler); elsewhere only the parent's handler helps."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the parent's SIGTERM handler still helps
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(parent: int) -> None:
    import torch

    _die_with_parent(parent)
    # the parent's SIGTERM handler (below) was inherited by fork: a worker must just die
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)  # one core per worker


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


def _run_piece(index: int) -> tuple[Any, list[tuple[type[Warning], str]]]:
    assert _JOB is not None, "worker started without a job"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _JOB(index)
    return out, [(w.category, str(w.message)) for w in caught]


def map_in_workers(
    job: Callable[[int], Any],
    count: int,
    workers: int,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[job(i) for i in range(count)]``, computed by ``workers`` forked processes.

    Results come back in index order; ``on_result(i, result)`` is called as each arrives.
    An exception raised by a piece is raised here. Warnings raised in the workers are
    raised again here, once per distinct message. The workers die with this process: on
    Linux they get SIGTERM when it dies, and a SIGTERM to it during the run terminates them
    before it dies of the signal itself.

    Raises:
        InferenceError: where processes cannot be forked (the ``fork`` start method is
            missing), or for a parallel run started from inside another one's worker.
    """
    global _JOB
    if "fork" not in multiprocessing.get_all_start_methods():
        raise InferenceError(
            "workers > 0 needs processes started by fork, which this platform lacks; use workers=0"
        )
    if _JOB is not None:
        raise InferenceError("a parallel inference run cannot start another one (workers > 0)")
    results: list[Any] = []
    seen: set[tuple[type[Warning], str]] = set()
    _JOB = job
    try:
        context = multiprocessing.get_context("fork")
        with (
            _terminate_workers_on_sigterm(),
            context.Pool(min(workers, count), _init_worker, (os.getpid(),)) as pool,
        ):
            for i, (out, caught) in enumerate(pool.imap(_run_piece, range(count))):
                for category, message in caught:
                    if (category, message) not in seen:
                        seen.add((category, message))
                        warnings.warn(message, category, stacklevel=3)
                results.append(out)
                if on_result is not None:
                    on_result(i, out)
    finally:
        _JOB = None
    return results
