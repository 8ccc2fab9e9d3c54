"""Independent pieces of a job (chunks of importance samples, MCMC chains, dataset shards)
in worker processes on this machine.

Workers are forked, so they start with a copy of the model, the observations and any
proposal (an inference network included) without pickling them; only each piece's index
goes out and its (small, picklable) result comes back. Callers give each piece a random
stream that depends on its index only, so their results are the same for any number of
workers.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable
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


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker


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
    raised again here, once per distinct message.

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
        with context.Pool(min(workers, count), initializer=_init_worker) as pool:
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
