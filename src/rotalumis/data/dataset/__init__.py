"""Trace datasets on disk: sharded Apache Parquet written atomically (:func:`generate_dataset`),
read and streamed as training batches (:class:`TraceDataset`, :class:`TraceBatch`).

Modules: ``schema.py`` (the on-disk format, schema version, :class:`DatasetStatistics`),
``generate.py`` (writing), ``trace_dataset.py`` (reading), ``batch.py`` (training batches).
"""

from .batch import SiteGroup, TraceBatch
from .generate import generate_dataset
from .schema import SCHEMA_VERSION, DatasetStatistics
from .trace_dataset import TraceDataset

__all__ = [
    "SCHEMA_VERSION",
    "DatasetStatistics",
    "SiteGroup",
    "TraceBatch",
    "TraceDataset",
    "generate_dataset",
]
