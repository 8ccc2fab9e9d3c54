"""Layer L1 — results of inference and trace data, in two independent subpackages:

* :mod:`rotalumis.data.empirical` — :class:`Empirical`, a columnar weighted set of samples
  (the result of every engine), and :class:`EmpiricalBuilder`, how engines accumulate one trace
  at a time;
* :mod:`rotalumis.data.dataset` — trace datasets on disk (sharded Parquet via pyarrow):
  :func:`generate_dataset`, :class:`TraceDataset` and its training batches (:class:`TraceBatch`);
* :mod:`rotalumis.data.encoding` — the flattening of values and prior parameters
  (:func:`flat_value`, :func:`flat_params`) that datasets store and the inference network reads
  for live choices.

Imports only :mod:`rotalumis.core`, torch, NumPy and pyarrow (ArviZ lazily, for MCMC ESS).
"""

from .dataset import (
    SCHEMA_VERSION,
    DatasetStatistics,
    SiteGroup,
    TraceBatch,
    TraceDataset,
    generate_dataset,
)
from .empirical import ChainInfo, Empirical, EmpiricalBuilder, RunInfo
from .encoding import flat_params, flat_value

__all__ = [
    "SCHEMA_VERSION",
    "ChainInfo",
    "DatasetStatistics",
    "Empirical",
    "EmpiricalBuilder",
    "RunInfo",
    "SiteGroup",
    "TraceBatch",
    "TraceDataset",
    "flat_params",
    "flat_value",
    "generate_dataset",
]
