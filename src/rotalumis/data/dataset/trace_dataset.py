""":class:`TraceDataset`: simulated traces on disk, as sharded Parquet, streamed in batches.

The format is documented in :mod:`rotalumis.data.dataset.schema` (schema version 1); any
Parquet reader can open the shards. Reading never loads the whole dataset: batches are cut
from a bounded shuffle buffer filled one Parquet row group at a time.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rotalumis.core import DatasetError, Model
from rotalumis.core.validity import InvalidPolicy

from .batch import TraceBatch
from .generate import check_shard, generate_dataset, read_manifest
from .schema import META_STATS, DatasetStatistics, shard_name, shard_rows

__all__ = ["TraceDataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Shard:
    index: int
    path: Path
    rows: int
    row_groups: int
    stats: DatasetStatistics


class TraceDataset:
    """A trace dataset directory: open it, inspect it, stream batches from it.

    Opening reads only the manifest and each shard's footer. A shard that is missing (an
    unfinished generation) is listed in :attr:`missing_shards`; one that is truncated or
    corrupt is named in :attr:`corrupt_shards` (and in a logged warning) and skipped, so
    the rest stays readable. Corruption found later, while reading a row group, is handled
    the same way (or raises with ``strict=True``).

    Args:
        directory: The dataset directory.
        shards: Restrict to these shard indices (a view; see :meth:`split`).
        strict: Raise :class:`DatasetError` for a corrupt shard instead of skipping it.

    Raises:
        DatasetError: if ``directory`` is not a dataset, or (``strict``) a shard is corrupt.

    Example:
        >>> ds = TraceDataset.generate(model, "traces/", 10_000, seed=1)  # doctest: +SKIP
        >>> for batch in ds.iter_batches(64, seed=0):  # doctest: +SKIP
        ...     ...
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        shards: Sequence[int] | None = None,
        strict: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.strict = strict
        self.corrupt_shards: dict[str, str] = {}
        self.missing_shards: list[int] = []
        self._shards: list[_Shard] = []
        num = int(self.manifest["num_shards"])
        try:  # one listing, not one failed look-up per missing shard (up to MAX_SHARDS)
            present = {e.name for e in os.scandir(self.directory)}
        except OSError as exc:
            raise DatasetError(f"cannot list trace dataset {self.directory}: {exc}") from exc
        for k in range(num) if shards is None else shards:
            if not 0 <= k < num:
                raise ValueError(f"shard index {k} out of range (dataset has {num} shards)")
            if shard_name(k) in present:
                self._open_shard(k)
            else:
                self.missing_shards.append(k)
        if self.corrupt_shards:
            for path, reason in self.corrupt_shards.items():
                log.warning("trace dataset: skipping shard %s: %s", path, reason)

    def _open_shard(self, k: int) -> None:
        path = self.directory / shard_name(k)
        rows = shard_rows(self.manifest, k)
        reason = check_shard(path, k, rows)
        if reason == "missing":
            self.missing_shards.append(k)
            return
        if reason is None:
            try:
                meta = pq.read_metadata(path)
                stats = DatasetStatistics.from_json((meta.metadata or {})[META_STATS])
            except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
                reason = f"unreadable statistics ({type(exc).__name__}: {exc})"
            else:
                self._shards.append(_Shard(k, path, rows, meta.num_row_groups, stats))
                return
        if self.strict:
            raise DatasetError(f"trace dataset shard {path} is unusable: {reason}")
        self.corrupt_shards[str(path)] = reason

    # -- creation --------------------------------------------------------------------------
    @classmethod
    def generate(
        cls,
        model: Model,
        directory: str | os.PathLike[str],
        num_traces: int,
        *,
        seed: int | None = None,
        traces_per_shard: int = 1000,
        model_args: tuple[Any, ...] = (),
        on_progress: Callable[[int, int], None] | None = None,
        workers: int = 0,
        policy: InvalidPolicy | None = None,
    ) -> TraceDataset:
        """Simulate ``num_traces`` prior traces into ``directory`` (resumable) and open it.

        See :func:`~rotalumis.data.generate_dataset` for the arguments.
        """
        generate_dataset(
            model,
            directory,
            num_traces,
            seed=seed,
            traces_per_shard=traces_per_shard,
            model_args=model_args,
            on_progress=on_progress,
            workers=workers,
            policy=policy,
        )
        return cls(directory)

    # -- inspection ------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of readable traces."""
        return sum(s.rows for s in self._shards)

    @property
    def shard_indices(self) -> list[int]:
        """Indices of the readable shards."""
        return [s.index for s in self._shards]

    @property
    def complete(self) -> bool:
        """Whether every shard of the manifest is present and sound."""
        return not self.missing_shards and not self.corrupt_shards

    def stats(self) -> DatasetStatistics:
        """Trace types and their frequencies, addresses and their visit counts, observations."""
        total = DatasetStatistics()
        for s in self._shards:
            total.add(s.stats)
        return total

    @property
    def observation_names(self) -> list[str]:
        """Names of the observations recorded in the traces."""
        return sorted(self.stats().observations)

    def split(self, valid_shards: int = 1) -> tuple[TraceDataset, TraceDataset]:
        """Split into (training, validation) views; the last ``valid_shards`` shards validate."""
        idx = self.shard_indices
        if not 0 < valid_shards < len(idx):
            raise ValueError(
                f"valid_shards must be between 1 and {len(idx) - 1} (the dataset has "
                f"{len(idx)} readable shards), got {valid_shards}"
            )
        return (
            TraceDataset(self.directory, idx[:-valid_shards], self.strict),
            TraceDataset(self.directory, idx[-valid_shards:], self.strict),
        )

    def validate(self) -> dict[str, str]:
        """Read every row group of every shard; return (and record) the corrupt ones by path."""
        bad: dict[str, str] = {}
        for s in list(self._shards):
            for g in range(s.row_groups):
                if self._read_group(s, g) is None:
                    bad[str(s.path)] = self.corrupt_shards[str(s.path)]
                    break
        return {**self.corrupt_shards, **bad}

    def __repr__(self) -> str:
        return (
            f"TraceDataset({str(self.directory)!r}, {len(self)} traces, "
            f"{len(self._shards)} shards, model={self.manifest.get('model')!r})"
        )

    # -- reading ---------------------------------------------------------------------------
    def _read_group(self, shard: _Shard, group: int, columns: list[str] | None = None) -> Any:
        try:
            return pq.ParquetFile(shard.path).read_row_group(group, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            reason = f"corrupt row group {group} ({type(exc).__name__}: {exc})"
            if self.strict:
                raise DatasetError(f"trace dataset shard {shard.path}: {reason}") from exc
            log.warning("trace dataset: skipping shard %s: %s", shard.path, reason)
            self.corrupt_shards[str(shard.path)] = reason
            self._shards = [s for s in self._shards if s.index != shard.index]
            return None

    def iter_tables(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        group_by_type: bool = True,
        buffer_size: int = 8192,
        columns: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """Stream the traces as Arrow tables of ``batch_size`` rows (the last may be smaller).

        Memory stays bounded by ``buffer_size`` rows plus one row group: row groups are read
        one at a time (in random order when ``shuffle``) into a buffer; when the buffer is
        full its rows are shuffled, sorted by trace type (``group_by_type``, so that most
        batches hold a single trace type) and cut into batches, yielded in random order.

        Args:
            batch_size: Traces per batch.
            shuffle: Randomise the order (row groups, rows, batches).
            seed: Seed of the shuffling (``None``: a fresh one).
            group_by_type: Make batches of one trace type where possible.
            buffer_size: Rows held at once (at least ``batch_size``).
            columns: Read only these columns (``trace_type`` is always read).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        rng = random.Random(seed)
        np_rng = np.random.default_rng(rng.getrandbits(63))
        cols = None if columns is None else sorted({*columns, "trace_type"})
        units = [(s, g) for s in self._shards for g in range(s.row_groups)]
        if shuffle:
            rng.shuffle(units)
        buffer: list[pa.Table] = []
        held = 0
        limit = max(buffer_size, batch_size)
        for shard, group in units:
            if not any(s.index == shard.index for s in self._shards):
                continue  # found corrupt meanwhile
            table = self._read_group(shard, group, cols)
            if table is None:
                continue
            buffer.append(table)
            held += table.num_rows
            if held >= limit:
                yield from self._cut(buffer, batch_size, shuffle, group_by_type, np_rng, rng)
                buffer, held = [], 0
        if buffer:
            yield from self._cut(buffer, batch_size, shuffle, group_by_type, np_rng, rng)

    @staticmethod
    def _cut(
        buffer: list[pa.Table],
        batch_size: int,
        shuffle: bool,
        group_by_type: bool,
        np_rng: np.random.Generator,
        rng: random.Random,
    ) -> Iterator[pa.Table]:
        table = pa.concat_tables(buffer)
        buffer.clear()
        n = table.num_rows
        order = np_rng.permutation(n) if shuffle else np.arange(n)
        if group_by_type:
            types = pc.take(table.column("trace_type"), pa.array(order))
            codes = pc.dictionary_encode(types).combine_chunks().indices
            order = order[np.argsort(codes.to_numpy(zero_copy_only=False), kind="stable")]
        slices = [order[i : i + batch_size] for i in range(0, n, batch_size)]
        if shuffle:
            rng.shuffle(slices)
        for idx in slices:
            yield table.take(pa.array(idx))

    def iter_batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        group_by_type: bool = True,
        buffer_size: int = 8192,
    ) -> Iterator[TraceBatch]:
        """Stream :class:`TraceBatch` minibatches for training (see :meth:`iter_tables`)."""
        for table in self.iter_tables(
            batch_size,
            shuffle=shuffle,
            seed=seed,
            group_by_type=group_by_type,
            buffer_size=buffer_size,
        ):
            yield TraceBatch.from_arrow(table)

    def iter_traces(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every trace as a dict of its columns, in dataset order (streamed)."""
        for shard in list(self._shards):
            for g in range(shard.row_groups):
                table = self._read_group(shard, g, columns)
                if table is None:
                    break
                yield from table.to_pylist()

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole dataset (or some columns) as one Arrow table — in memory, mind the size."""
        tables = []
        for shard in list(self._shards):
            for g in range(shard.row_groups):
                table = self._read_group(shard, g, columns)
                if table is None:
                    break
                tables.append(table)
        if not tables:
            raise DatasetError(f"trace dataset {self.directory} has no readable traces")
        return pa.concat_tables(tables)
