"""Offline training from memory: the dataset decoded once, epochs drawn by index.

Reading a dataset streams Parquet row groups and decodes every step's rows into a
:class:`~rotalumis.data.TraceBatch` again each epoch; for a dataset that fits in memory that
is a fifth of a small network's epoch (the sbibm tasks, batches of 200). Here the training
traces are decoded once and each step's batch is cut out of them by index. Each epoch is a
permutation drawn from ``derive_seed(seed, "epoch", e)``, sorted stably by trace type (so
that most steps hold one trace type, as when streaming), cut into steps, the steps shuffled:
reproducible and resumable mid-epoch, but not the streamed order (other batches, so another
run: the checkpoint identity records it).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from rotalumis.core.rng import derive_seed
from rotalumis.data import SiteGroup, TraceBatch, TraceDataset

from ._progress import Progress

__all__ = ["memory_steps", "select"]


def select(batch: TraceBatch, idx: np.ndarray) -> TraceBatch:
    """The traces ``idx`` of ``batch``, in that order, as a batch of their own."""
    idx = np.asarray(idx, dtype=np.int64)
    position = np.full(batch.size, -1, dtype=np.int64)
    position[idx] = np.arange(len(idx))
    groups = []
    for g in batch.groups:
        new_rows = position[g.rows]
        keep = np.flatnonzero(new_rows >= 0)
        keep = keep[np.argsort(new_rows[keep], kind="stable")]  # by new row, as decoding does
        if len(keep) == 0:
            continue
        groups.append(
            SiteGroup(g.address, g.distribution, new_rows[keep], g.steps[keep], g.values[keep],
                      g.params[keep], g.log_prior[keep], g.value_shape, g.name)
        )  # fmt: skip
    return TraceBatch(
        len(idx),
        batch.lengths[idx],
        [batch.trace_types[i] for i in idx],
        {name: values[idx] for name, values in batch.observations.items()},
        groups,
    )


def _decode(dataset: TraceDataset) -> TraceBatch:
    tables = list(dataset.iter_tables(max(len(dataset), 1), shuffle=False, group_by_type=False))
    if not tables:
        raise ValueError(f"trace dataset {dataset.directory} has no readable traces")
    import pyarrow as pa

    return TraceBatch.from_arrow(pa.concat_tables(tables))


def memory_steps(
    dataset: TraceDataset, batch_size: int, seed: int, progress: Progress
) -> Generator[tuple[TraceBatch, int], None, None]:
    """Each step's batch (and its size) from ``dataset`` decoded into memory once."""
    every = _decode(dataset)
    _, types = np.unique(np.asarray(every.trace_types, dtype=object), return_inverse=True)
    skip = progress.epoch_batches
    while True:
        rng = np.random.default_rng(derive_seed(seed, "epoch", progress.epoch))
        order = rng.permutation(every.size)
        order = order[np.argsort(types[order], kind="stable")]
        steps = [order[i : i + batch_size] for i in range(0, every.size, batch_size)]
        for n in rng.permutation(len(steps)):
            if skip:
                skip -= 1
                continue
            progress.epoch_batches += 1
            idx = steps[n]
            yield select(every, idx), len(idx)
        skip = 0
        progress.epoch += 1
        progress.epoch_batches = 0
