"""A columnar minibatch of traces, as inference-compilation training consumes them.

Traces are regrouped *by address*: every visit of one address in the batch becomes one row
of a :class:`SiteGroup`, so a network evaluates each address's layers once per batch
instead of once per trace. The same structure is built from simulated
:class:`~rotalumis.core.Trace` objects (online training) or from Parquet rows of a
:class:`~rotalumis.data.TraceDataset` (offline training), vectorised with NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rotalumis.core import Trace
from rotalumis.core.validity import SimulationCounter

from ..encoding import flat_params, flat_value
from .schema import trace_type_key

__all__ = ["SiteGroup", "TraceBatch"]


@dataclass
class SiteGroup:
    """All visits of one address (with one value size and parameter count) in a batch.

    Attributes:
        address: The address.
        distribution: Its distribution kind (``"Normal"``, ...).
        rows: Index of the visiting trace in the batch, shape ``(n,)``.
        steps: Position of the visit among that trace's controlled choices, ``(n,)``.
        values: The values, flattened, ``(n, numel)``.
        params: The prior parameters (see the dataset schema), ``(n, num_params)``.
        log_prior: ``log p(value)`` under the prior, ``(n,)``.
        value_shape: Shape of one value.
        name: The user's name of the site (``None`` if unnamed).
    """

    address: str
    distribution: str
    rows: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    params: np.ndarray
    log_prior: np.ndarray
    value_shape: tuple[int, ...] = ()
    name: str | None = None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class TraceBatch:
    """A minibatch of traces in columnar form.

    Attributes:
        size: Number of traces.
        lengths: Controlled choices per trace, ``(size,)``.
        trace_types: Trace type of each trace.
        observations: Observation name -> values ``(size, *shape)`` (NaN where a trace
            lacks the observation).
        groups: One :class:`SiteGroup` per address.
        simulations: The simulator runs made for a simulated batch, with the invalid ones
            dropped (see :mod:`rotalumis.core.validity`); ``None`` for a batch read from a
            dataset.
    """

    size: int
    lengths: np.ndarray
    trace_types: list[str]
    observations: dict[str, np.ndarray]
    groups: list[SiteGroup] = field(default_factory=list)
    simulations: SimulationCounter | None = None

    @property
    def max_length(self) -> int:
        """The longest trace (in controlled choices)."""
        return int(self.lengths.max()) if self.size else 0

    @classmethod
    def from_traces(cls, traces: Sequence[Trace]) -> TraceBatch:
        """Build a batch from executed traces (their controlled sites and named observations)."""
        acc: dict[tuple[str, int, int], list[Any]] = {}
        meta: dict[tuple[str, int, int], tuple[str, tuple[int, ...], str | None]] = {}
        obs: dict[str, list[Any]] = {}
        obs_shape: dict[str, tuple[int, ...]] = {}
        lengths = np.zeros(len(traces), dtype=np.int64)
        types: list[str] = []
        for b, trace in enumerate(traces):
            step = 0
            addresses = []
            for v in trace.variables:
                kind = v.kind
                if kind == "sample" and v.control and not v.observed:
                    dist = v.distribution
                    assert dist is not None
                    value, shape = flat_value(v.value)
                    params = flat_params(dist, shape)
                    key = (v.address, len(value), len(params))
                    lists = acc.get(key)
                    if lists is None:
                        lists = acc[key] = [[], [], [], [], []]
                        meta[key] = (dist.name, tuple(shape), v.name)
                    lists[0].append(b)
                    lists[1].append(step)
                    lists[2].append(value)
                    lists[3].append(params)
                    lists[4].append(float(v.log_prob))
                    addresses.append(v.address)
                    step += 1
                elif kind == "observe" and v.name is not None:
                    value, shape = flat_value(v.value)
                    column = obs.get(v.name)
                    if column is None:
                        column = obs[v.name] = [None] * len(traces)
                        obs_shape[v.name] = tuple(shape)
                    column[b] = value
            lengths[b] = step
            types.append(trace_type_key(addresses))
        groups = [
            SiteGroup(
                address=key[0],
                distribution=meta[key][0],
                rows=np.asarray(lists[0], dtype=np.int64),
                steps=np.asarray(lists[1], dtype=np.int64),
                values=np.asarray(lists[2], dtype=np.float64).reshape(len(lists[0]), key[1]),
                params=np.asarray(lists[3], dtype=np.float64).reshape(len(lists[0]), key[2]),
                log_prior=np.asarray(lists[4], dtype=np.float64),
                value_shape=meta[key][1],
                name=meta[key][2],
            )
            for key, lists in acc.items()
        ]
        observations = {
            name: _stack_observation(column, obs_shape[name]) for name, column in obs.items()
        }
        return cls(len(traces), lengths, types, observations, groups)

    @classmethod
    def from_arrow(cls, table: pa.Table | pa.RecordBatch) -> TraceBatch:
        """Build a batch from rows of the dataset schema (vectorised)."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        size = table.num_rows
        address = table.column("address").combine_chunks()
        lengths = pc.list_value_length(address).to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.repeat(np.arange(size, dtype=np.int64), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if size else lengths
        steps = np.arange(len(rows), dtype=np.int64) - np.repeat(starts, lengths)
        codes, names = _codes(address.flatten())
        dist_codes, dist_names = _codes(table.column("distribution").combine_chunks().flatten())
        values, value_len, value_start = _nested(table.column("value"))
        params, param_len, param_start = _nested(table.column("params"))
        log_prior = _flat_floats(table.column("log_prob").combine_chunks().flatten())
        shapes = table.column("value_shape").combine_chunks().flatten()
        site_names = (
            table.column("name").combine_chunks().flatten()
            if "name" in table.column_names
            else None
        )
        keys = np.stack([codes, value_len, param_len], axis=1)
        groups: list[SiteGroup] = []
        if len(keys):
            uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
            order = np.argsort(inverse.reshape(-1), kind="stable")
            bounds = np.cumsum(np.bincount(inverse.reshape(-1), minlength=len(uniq)))
            for g, (code, nv, np_) in enumerate(uniq):
                idx = order[(bounds[g - 1] if g else 0) : bounds[g]]
                first = int(idx[0])
                groups.append(
                    SiteGroup(
                        address=names[int(code)],
                        distribution=dist_names[int(dist_codes[first])],
                        rows=rows[idx],
                        steps=steps[idx],
                        values=values[value_start[idx, None] + np.arange(int(nv))],
                        params=params[param_start[idx, None] + np.arange(int(np_))],
                        log_prior=log_prior[idx],
                        value_shape=tuple(shapes[first].as_py()),
                        name=None if site_names is None else site_names[first].as_py(),
                    )
                )
        types = table.column("trace_type").to_pylist()
        observations = _observations_from_arrow(table, size)
        return cls(size, lengths, types, observations, groups)


def _stack_observation(column: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    numel = int(np.prod(shape)) if shape else 1
    out = np.full((len(column), numel), np.nan)
    for b, v in enumerate(column):
        if v is not None and len(v) == numel:
            out[b] = v
    return out.reshape((len(column), *shape))


def _codes(strings: pa.Array) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(strings)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, encoded.dictionary.to_pylist()


def _flat_floats(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _nested(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``list<list<double>>`` column as (flat values, length and start of each inner list)."""
    inner = column.combine_chunks().flatten()
    lengths = pc.list_value_length(inner).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return _flat_floats(inner.flatten()), lengths, starts


def _observations_from_arrow(table: pa.Table, size: int) -> dict[str, np.ndarray]:
    names_col = table.column("observation_name").combine_chunks()
    counts = pc.list_value_length(names_col).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(size, dtype=np.int64), counts)
    codes, names = _codes(names_col.flatten())
    values, lengths, starts = _nested(table.column("observation_value"))
    shapes = table.column("observation_shape").combine_chunks().flatten()
    out: dict[str, np.ndarray] = {}
    for code, name in enumerate(names):
        idx = np.nonzero(codes == code)[0]
        shape = tuple(shapes[int(idx[0])].as_py())
        numel = int(np.prod(shape)) if shape else 1
        arr = np.full((size, numel), np.nan)
        ok = idx[lengths[idx] == numel]
        arr[rows[ok]] = values[starts[ok, None] + np.arange(numel)]
        out[name] = arr.reshape((size, *shape))
    return out
