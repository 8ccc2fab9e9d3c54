"""``workers=`` / ``cluster=`` into an executor (see the package docstring)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rotalumis.core import Model
from rotalumis.core.executor import Executor, ThreadExecutor, check_workers
from rotalumis.core.forkpool import ForkPoolExecutor

from .dask import DaskExecutor, is_cluster_spec

__all__ = ["check_executor", "open_executor"]


def check_executor(model: Model | None, workers: object = 0, cluster: object = None) -> None:
    """A clear error for a bad ``workers`` / ``cluster``, or for a model that cannot be
    copied into worker processes (checked before any work starts)."""
    check_workers(workers)
    if cluster is not None:
        if workers:
            raise ValueError(
                f"give workers= or cluster=, not both (workers={workers!r}, "
                f"cluster={cluster!r}): a cluster has its own workers"
            )
        if not is_cluster_spec(cluster):
            raise ValueError(
                f"cluster must be a dask.distributed.Client, a DaskExecutor, a scheduler "
                f"address ('tcp://host:8786') or 'local' / 'local:N', got {cluster!r}"
            )
    where = f"workers={workers}" if workers else f"cluster={cluster!r}"
    parallel = bool(workers) or cluster is not None
    if parallel and model is not None and not model.supports_worker_processes:
        raise ValueError(
            f"{where}: model {model.name!r} cannot run in worker processes "
            "(a PPX simulator serves one connection; give RemoteModel several "
            "addresses to spread units over a pool of simulators); use workers=0"
        )


@contextlib.contextmanager
def open_executor(
    model: Model | None, workers: int = 0, cluster: Any = None
) -> Iterator[Executor | None]:
    """The executor for ``workers`` / ``cluster``, closed (with any cluster it started)
    when the block ends; ``None`` when the units should run here, one after another.

    Args:
        model: The model the units run (checked: it must survive being copied into worker
            processes), or ``None``.
        workers: Forked worker processes on this machine (``0``: none).
        cluster: A :class:`DaskExecutor`, a ``dask.distributed.Client``, a scheduler
            address (``"tcp://host:8786"``), ``"local"`` or ``"local:N"`` (a
            ``LocalCluster`` of N single-threaded worker processes), or ``None``.
            A model spread over a pool of PPX simulators (``RemoteModel`` with several
            addresses) runs its units in one thread per simulator when neither is given.

    Raises:
        ValueError: for a bad ``workers`` / ``cluster``, or a model that cannot run there.
    """
    check_executor(model, workers, cluster)
    if cluster is not None:
        if isinstance(cluster, DaskExecutor):
            yield cluster  # the caller's: it closes it
            return
        with DaskExecutor(cluster) as dask_executor:
            yield dask_executor
        return
    if workers:
        with ForkPoolExecutor(workers) as pool:
            yield pool
        return
    slots = getattr(model, "simulator_slots", 1) if model is not None else 1
    if slots > 1:
        with ThreadExecutor(slots) as threads:
            yield threads
        return
    yield None
