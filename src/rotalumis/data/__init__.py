"""Layer L1 — results of inference and trace data: :class:`Empirical`, a columnar weighted
set of samples; :class:`EmpiricalBuilder`, how engines accumulate one trace at a time; and
trace datasets on disk (sharded Parquet via pyarrow) with their training batches, and the
flattening of values and prior parameters that datasets store (``flat_value``,
``flat_params``; the inference network encodes live choices the same way).

Imports only :mod:`rotalumis.core`, torch, NumPy and pyarrow.
"""

from .dataset import (
    SCHEMA_VERSION,
    DatasetStatistics,
    SiteGroup,
    TraceBatch,
    TraceDataset,
    flat_params,
    flat_value,
    generate_dataset,
)
from .empirical import Empirical, EmpiricalBuilder

__all__ = [
    "SCHEMA_VERSION",
    "DatasetStatistics",
    "Empirical",
    "EmpiricalBuilder",
    "SiteGroup",
    "TraceBatch",
    "TraceDataset",
    "flat_params",
    "flat_value",
    "generate_dataset",
]
