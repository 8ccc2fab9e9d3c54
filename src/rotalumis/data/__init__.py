"""Layer L1 — results of inference and trace data: :class:`Empirical`, a columnar weighted
set of samples; :class:`EmpiricalBuilder`, how engines accumulate one trace at a time; and
trace datasets on disk (sharded Parquet via pyarrow) with their training batches.

Imports only :mod:`rotalumis.core`, torch, NumPy and pyarrow.
"""

from ._dataset_batch import SiteGroup, TraceBatch
from ._dataset_schema import SCHEMA_VERSION, DatasetStatistics
from ._dataset_write import generate_dataset
from .builder import EmpiricalBuilder
from .dataset import TraceDataset
from .empirical import Empirical

__all__ = [
    "SCHEMA_VERSION",
    "DatasetStatistics",
    "Empirical",
    "EmpiricalBuilder",
    "SiteGroup",
    "TraceBatch",
    "TraceDataset",
    "generate_dataset",
]
