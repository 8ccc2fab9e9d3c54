"""Work units on a Dask cluster: :class:`DaskExecutor`.

The job (a closure holding the model, the observations, any proposal) is pickled once
(cloudpickle, by Dask) and scattered to every worker; each unit is one task that gets the
job and its index. Results stream back with ``as_completed``. A worker that dies has its
running units re-run by the scheduler on other workers (each unit's result depends only on
its index, so the job's result is unchanged); an error raised by a unit is raised here
with the unit's description, which names its seed.
"""

from __future__ import annotations

import collections
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rotalumis.core.errors import SimulatorLostError
from rotalumis.core.executor import (
    RETRIES,
    Describe,
    Executor,
    Job,
    UnderLimits,
    UnitOutcome,
    WarningRelay,
    default_describe,
    run_unit,
    unit_failed,
)

__all__ = ["DaskExecutor", "is_cluster_spec", "parse_cluster"]

log = logging.getLogger(__name__)

_LOCAL = re.compile(r"local(?::(\d+))?")


def parse_cluster(spec: str) -> tuple[str, int | None]:
    """``("local", N or None)`` for ``"local"`` / ``"local:N"``, else ``("address", None)``.

    Raises:
        ValueError: for ``"local:0"`` or ``"local:x"``, or a string that is neither
            ``local`` nor a scheduler address (``tcp://``, ``tls://``, ``inproc://``,
            ``ucx://``, or ``host:port``).
    """
    m = _LOCAL.fullmatch(spec)
    if m is not None:
        n = int(m.group(1)) if m.group(1) is not None else None
        if n is not None and n < 1:
            raise ValueError(f"cluster {spec!r}: a local cluster needs at least one worker")
        return "local", n
    if re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+|[\w.\-]+:\d+", spec) is None:
        raise ValueError(
            f"cluster {spec!r} is neither 'local', 'local:N' nor a scheduler address "
            "such as 'tcp://host:8786'"
        )
    return "address", None


def is_cluster_spec(cluster: object) -> bool:
    """Whether ``cluster`` is something :class:`DaskExecutor` accepts (strings checked by
    :func:`parse_cluster`, which raises for a malformed one)."""
    if isinstance(cluster, DaskExecutor):
        return True
    if isinstance(cluster, str):
        parse_cluster(cluster)
        return True
    return type(cluster).__name__ == "Client" and hasattr(cluster, "submit")


class _ByValue:
    """A job that pickles as cloudpickle's bytes, whichever serializer Dask tries first:
    plain pickle (Dask's first choice) would pickle the classes of a model file loaded by
    the CLI by reference, and the workers cannot import them; cloudpickle ships them by
    value. Unpickled (once per worker), it is the job itself."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, index: int) -> Any:  # workers in this process get it unpickled
        return self.job(index)

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle

        return (cloudpickle.loads, (cloudpickle.dumps(self.job),))


def _dask_unit(job: Job, index: int) -> UnitOutcome:
    """A unit on a Dask worker: one core's worth of torch threads, warnings recorded; run
    again when the worker's simulator died under it (a worker plugin started a new one)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    for attempt in range(RETRIES + 1):
        try:
            return run_unit(job, index)
        except SimulatorLostError as exc:
            if attempt == RETRIES or not exc.retryable:
                raise
            log.warning("work unit %d: %s; running it again", index, exc)
    raise AssertionError("unreachable")


class DaskExecutor(Executor):
    """Runs work units as Dask tasks.

    Args:
        cluster: A ``dask.distributed.Client``; a scheduler address (``"tcp://host:8786"``,
            e.g. of a cluster started by dask-jobqueue or dask-mpi); ``"local"`` for a
            ``LocalCluster`` with one single-threaded worker process per core, or
            ``"local:N"`` for N of them.
        worker_plugins: Dask worker plugins to register on the cluster's workers (e.g.
            :class:`rotalumis.remote.worker_plugin.SimulatorPerWorker`, one PPX simulator
            per worker); unregistered by :meth:`close` (which stops what they started).

    A client given by the caller stays open; a cluster or client this executor started is
    closed by :meth:`close` (or at the end of a ``with`` block).

    Raises:
        ImportError: naming the extra to install when Dask is missing.
        ValueError: for a malformed ``cluster``.

    Example:
        >>> from rotalumis.distributed import DaskExecutor  # doctest: +SKIP
        >>> with DaskExecutor("local:4") as cluster:  # doctest: +SKIP
        ...     post = model.posterior(10_000, observe=obs, seed=0, cluster=cluster)
    """

    pickles_jobs = True

    def __init__(self, cluster: Any = "local", worker_plugins: Sequence[Any] = ()) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ImportError("cluster= needs Dask: pip install 'rotalumis[distributed]'") from exc
        self._owned: list[Any] = []
        if isinstance(cluster, str):
            kind, n = parse_cluster(cluster)
            if kind == "local":
                local = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: never warn of a busy one
                )
                self._owned.append(local)
                self.client = Client(local)
            else:
                self.client = Client(cluster)
            self._owned.insert(0, self.client)
        elif isinstance(cluster, Client):
            self.client = cluster
        else:
            raise ValueError(
                f"cluster must be a dask.distributed.Client, a scheduler address or "
                f"'local' / 'local:N', got {cluster!r}"
            )
        self._plugins: list[str] = []
        try:
            for plugin in worker_plugins:
                name = getattr(plugin, "name", None) or f"rotalumis-{uuid.uuid4().hex[:8]}"
                self.client.register_plugin(plugin, name=name)
                self._plugins.append(name)
        except BaseException:
            self.close()
            raise

    @property
    def parallelism(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def _outcomes(
        self, job: Job, count: int, describe: Describe
    ) -> Iterator[tuple[int, bool, Any]]:
        from dask.distributed import as_completed

        if count == 0:
            return
        relay = WarningRelay()
        client = self.client
        # the job once to every worker (a worker that joins later fetches it from another)
        shipped = client.scatter(_ByValue(job), broadcast=True, hash=False)
        run = uuid.uuid4().hex[:12]
        futures = client.map(  # one message to the scheduler for all the units
            _dask_unit,
            [shipped] * count,
            range(count),
            key=[f"rotalumis-unit-{run}-{i}" for i in range(count)],
            pure=False,
        )
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            # Results are gathered here, one batch of finished units at a time. (Not with
            # ``as_completed(with_results=True)``: it gathers in the event loop, and when
            # that gather fails, e.g. on a comm error, the future is never yielded and the
            # caller waits forever, dask/distributed#7331.)
            for batch in as_completed(futures).batches():
                failed = [f for f in batch if f.status == "error"]
                for future in failed:  # (the payload is not the exception itself)
                    i = index[future.key]
                    yield i, False, unit_failed(future.exception(), describe(i))
                finished = [f for f in batch if f.status != "error"]
                for future, (out, caught) in zip(finished, client.gather(finished), strict=True):
                    relay(caught)
                    yield index[future.key], True, out
        finally:
            running = [f for f in futures if not f.done()]
            if running:  # stopped early (an error, or the caller): cancel the rest
                client.cancel(running)
            del futures, shipped  # released: the scheduler forgets them without a round trip

    def ordered(
        self,
        job: Job,
        indices: Iterable[int],
        ahead: int,
        describe: Describe | None = None,
    ) -> Iterator[Any]:
        """``job(i)`` for each ``i`` of ``indices`` (which may be endless), in order, with
        ``ahead`` units submitted to the cluster ahead of the one the caller waits for.

        Raises:
            Exception: what a unit raised, with its description (see :func:`unit_failed`).
        """
        relay = WarningRelay()
        client = self.client
        shipped = client.scatter(_ByValue(UnderLimits(job)), broadcast=True, hash=False)
        run = uuid.uuid4().hex[:12]
        todo = iter(indices)
        pending: collections.deque[tuple[int, Any]] = collections.deque()

        def submit() -> None:
            i = next(todo, None)
            if i is not None:
                key = f"rotalumis-unit-{run}-{i}"
                pending.append((i, client.submit(_dask_unit, shipped, i, key=key, pure=False)))

        try:
            for _ in range(max(1, ahead)):
                submit()
            while pending:
                i, future = pending.popleft()
                submit()
                try:
                    out, caught = future.result()
                except Exception as exc:
                    raise unit_failed(exc, (describe or default_describe)(i)) from exc.__cause__
                relay(caught)
                yield out
        finally:
            if pending:  # the caller stopped (training ended): the units ahead are not needed
                client.cancel([f for _, f in pending])

    def close(self) -> None:
        """Unregister the worker plugins this executor registered, and close the client and
        cluster it started (not a caller's client)."""
        for name in self._plugins:
            if not self._owned and self.client.status == "running":
                self.client.unregister_worker_plugin(name)
        self._plugins = []
        for thing in self._owned:
            thing.close()
        self._owned = []

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"
