"""Where work units run: ``workers=`` (forked processes here) or ``cluster=`` (Dask).

:func:`open_executor` turns the ``workers=`` / ``cluster=`` arguments that every engine,
the dataset writer and the black-box optimizer take into an
:class:`~rotalumis.core.executor.Executor`; :class:`DaskExecutor` runs units on a Dask
cluster (a ``LocalCluster`` or any scheduler). This package sits just above the core (it
needs only the executor interface and, lazily, ``dask.distributed``), so that every layer
with an entry point can resolve ``cluster=`` without an upward import.
"""

from __future__ import annotations

from ._resolve import check_executor, open_executor
from .dask import DaskExecutor, parse_cluster

__all__ = ["DaskExecutor", "check_executor", "open_executor", "parse_cluster"]
