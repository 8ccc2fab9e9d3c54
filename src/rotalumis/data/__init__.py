"""Layer L1 — results of inference and trace data: :class:`Empirical`, a columnar weighted
set of samples; :class:`EmpiricalBuilder`, how engines accumulate one trace at a time; and
trace datasets on disk (sharded Parquet via pyarrow) with their training batches, and the
flattening of values and prior parameters that datasets store (``flat_value``,
``flat_params``; the inference network encodes live choices the same way).

Imports only :mod:`rotalumis.core`, torch, NumPy and pyarrow.
"""

from ._dataset_batch import SiteGroup, TraceBatch
from ._dataset_schema import SCHEMA_VERSION, DatasetStatistics, flat_params, flat_value
from ._dataset_write import generate_dataset
from .builder import EmpiricalBuilder
from .dataset import TraceDataset
from .empirical import Empirical
from .run_info import ChainInfo, RunInfo

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
