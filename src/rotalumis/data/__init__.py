"""Layer L1 — results of inference: :class:`Empirical`, a columnar weighted set of samples,
and :class:`EmpiricalBuilder`, how engines accumulate one trace at a time.

Imports only :mod:`rotalumis.core`, torch and NumPy.
"""

from .builder import EmpiricalBuilder
from .empirical import Empirical

__all__ = ["Empirical", "EmpiricalBuilder"]

# Trace datasets on disk (sharded Parquet; imports pyarrow) and training batches.
from ._dataset_batch import SiteGroup, TraceBatch  # noqa: E402
from ._dataset_schema import SCHEMA_VERSION, DatasetStatistics  # noqa: E402
from ._dataset_write import generate_dataset  # noqa: E402
from .dataset import TraceDataset  # noqa: E402

__all__ += [
    "SCHEMA_VERSION",
    "DatasetStatistics",
    "SiteGroup",
    "TraceBatch",
    "TraceDataset",
    "generate_dataset",
]
