"""The on-disk format of a :class:`~rotalumis.data.TraceDataset` (schema version 1).

A dataset is a directory::

    DIR/dataset.json          manifest (JSON): format, schema_version, model, seed,
                              num_traces, traces_per_shard, num_shards, observe
    DIR/shard-000000.parquet  traces 0 .. S-1
    DIR/shard-000001.parquet  traces S .. 2S-1
    ...

Each shard is an Apache Parquet file (zstd-compressed) with **one row per trace** and these
columns; it is readable by pyarrow, pandas, DuckDB or Spark without rotalumis:

=====================  ========================  ===============================================
column                 type                      meaning
=====================  ========================  ===============================================
``trace_id``           int64                     index of the trace in the dataset (0 .. N-1)
``trace_type``         string                    16 hex digits of the SHA-1 of the controlled
                                                 addresses joined by newlines: equal types
                                                 have the same sequence of random choices
``address``            list<string>              controlled ``sample`` sites, execution order
``name``               list<string>              the user's name of each site (null if none)
``distribution``       list<string>              distribution kind of each site (``Normal``...)
``params``             list<list<double>>        numeric parameters of each site's prior in
                                                 PPX order, each broadcast to the value's shape
                                                 and flattened, concatenated (``Categorical``:
                                                 its probabilities; ``Mixture``: its mean and
                                                 standard deviation)
``value``              list<list<double>>        each site's value, flattened (integers exact)
``value_shape``        list<list<int32>>         each site's value shape (``[]`` for a scalar)
``log_prob``           list<double>              ``log p(value)`` of each site under its prior
``observation_name``   list<string>              names of the ``observe`` sites
``observation_value``  list<list<double>>        their (simulated) values, flattened
``observation_shape``  list<list<int32>>         their shapes
``log_prior``          double                    sum of the sites' ``log_prob`` (all latents)
``log_likelihood``     double                    log-likelihood of the observations (and
                                                 of factors and conditioned sites)
=====================  ========================  ===============================================

Uncontrolled choices (``control=False``), tags and factors are not stored. The shard's
key-value metadata holds ``rotalumis.schema_version``, ``rotalumis.shard`` (its index) and
``rotalumis.stats`` (JSON: trace-type and address counts, so statistics need no scan).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from rotalumis.core import Trace
from rotalumis.core.checks import get_field, loads_json
from rotalumis.core.validity import SimulationCounter

from ..encoding import flat_params, flat_value

__all__ = [
    "MANIFEST",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DatasetStatistics",
    "shard_name",
    "trace_type_key",
    "traces_to_table",
]

SCHEMA_VERSION = 1
FORMAT = "rotalumis-trace-dataset"
MANIFEST = "dataset.json"
META_VERSION = b"rotalumis.schema_version"
META_SHARD = b"rotalumis.shard"
META_STATS = b"rotalumis.stats"

_FLOATS = pa.list_(pa.list_(pa.float64()))
_SHAPES = pa.list_(pa.list_(pa.int32()))
SCHEMA = pa.schema(
    [
        ("trace_id", pa.int64()),
        ("trace_type", pa.string()),
        ("address", pa.list_(pa.string())),
        ("name", pa.list_(pa.string())),
        ("distribution", pa.list_(pa.string())),
        ("params", _FLOATS),
        ("value", _FLOATS),
        ("value_shape", _SHAPES),
        ("log_prob", pa.list_(pa.float64())),
        ("observation_name", pa.list_(pa.string())),
        ("observation_value", _FLOATS),
        ("observation_shape", _SHAPES),
        ("log_prior", pa.float64()),
        ("log_likelihood", pa.float64()),
    ]
)


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:06d}.parquet"


def shard_rows(manifest: dict[str, Any], index: int) -> int:
    """Number of traces in shard ``index`` of the dataset described by ``manifest``."""
    per = int(manifest["traces_per_shard"])
    return max(0, min(per, int(manifest["num_traces"]) - index * per))


def trace_type_key(addresses: Iterable[str]) -> str:
    """The trace type of a sequence of controlled addresses (16 hex digits)."""
    return hashlib.sha1("\n".join(addresses).encode()).hexdigest()[:16]


class DatasetStatistics:
    """Counts of a dataset (or shard): traces, trace types, addresses, distributions.

    Each shard keeps its own counts in its metadata, so the statistics of a dataset of any
    size are read without scanning it.

    Attributes:
        num_traces: Traces counted.
        trace_types: Trace type -> number of traces.
        type_lengths: Trace type -> number of controlled choices.
        addresses: Address -> number of visits.
        distributions: Address -> distribution kind.
        observations: Observation name -> shape (of the first trace that has it).
        simulations: Simulator runs made, and invalid ones dropped (runs that raised or
            produced NaN/inf; shards written before this was recorded count none).
    """

    def __init__(self) -> None:
        self.num_traces = 0
        self.trace_types: Counter[str] = Counter()
        self.type_lengths: dict[str, int] = {}
        self.addresses: Counter[str] = Counter()
        self.distributions: dict[str, str] = {}
        self.observations: dict[str, list[int]] = {}
        self.simulations = SimulationCounter()

    def add(self, other: DatasetStatistics) -> None:
        """Accumulate ``other`` into these counts."""
        self.num_traces += other.num_traces
        self.trace_types.update(other.trace_types)
        self.type_lengths.update(other.type_lengths)
        self.addresses.update(other.addresses)
        for k, v in other.distributions.items():
            self.distributions.setdefault(k, v)
        for k, s in other.observations.items():
            self.observations.setdefault(k, s)
        self.simulations.add(other.simulations)

    def most_common_types(self, n: int | None = None) -> list[tuple[str, int, float]]:
        """``(trace type, count, frequency)`` of the ``n`` most frequent trace types."""
        total = max(self.num_traces, 1)
        return [(t, c, c / total) for t, c in self.trace_types.most_common(n)]

    def to_json(self) -> str:
        """Serialise (for the shard metadata)."""
        return json.dumps(
            {
                "num_traces": self.num_traces,
                "trace_types": dict(self.trace_types),
                "type_lengths": self.type_lengths,
                "addresses": dict(self.addresses),
                "distributions": self.distributions,
                "observations": self.observations,
                "simulations": self.simulations.to_dict(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetStatistics:
        """Parse what :meth:`to_json` wrote.

        Raises:
            ValueError: naming the field if ``text`` is not valid statistics.
        """
        where = "the shard statistics"
        d = loads_json(text, where)
        s = cls()
        s.num_traces = get_field(d, "num_traces", int, where, low=0)
        counts = {"trace_types": s.trace_types, "addresses": s.addresses}
        for key, counter in counts.items():
            for k in get_field(d, key, dict, where):
                counter[k] = get_field(d[key], k, int, f"{where} {key!r}", low=0)
        lengths = get_field(d, "type_lengths", dict, where)
        s.type_lengths = {k: get_field(lengths, k, int, where, low=0) for k in lengths}
        kinds = get_field(d, "distributions", dict, where)
        s.distributions = {k: get_field(kinds, k, str, where) for k in kinds}
        obs = get_field(d, "observations", dict, where)
        for k in obs:
            shape = get_field(obs, k, list, f"{where} 'observations'")
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
                raise ValueError(f"{where}: observation {k!r} has shape {shape!r}")
            s.observations[k] = shape
        runs = {"runs": s.num_traces}  # written before invalid runs were counted: none
        sims = get_field(d, "simulations", dict, where) if "simulations" in d else runs
        try:
            s.simulations = SimulationCounter.from_dict(sims)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{where}: bad 'simulations' ({exc})") from None
        return s


def traces_to_table(
    traces: Sequence[Trace], first_id: int, stats: DatasetStatistics | None = None
) -> pa.Table:
    """Convert traces to a table of :data:`SCHEMA` (trace ids from ``first_id``).

    ``stats``, when given, is updated with the traces' counts.
    """
    cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    for i, trace in enumerate(traces):
        addresses: list[str] = []
        names: list[str | None] = []
        dists: list[str] = []
        params: list[list[float]] = []
        values: list[list[float]] = []
        shapes: list[list[int]] = []
        lps: list[float] = []
        onames: list[str] = []
        ovalues: list[list[float]] = []
        oshapes: list[list[int]] = []
        log_lik = 0.0
        for v in trace.variables:
            kind = v.kind
            if kind == "sample" and v.control and not v.observed:
                dist = v.distribution
                assert dist is not None
                flat, shape = flat_value(v.value)
                addresses.append(v.address)
                names.append(v.name)
                dists.append(dist.name)
                params.append(flat_params(dist, shape))
                values.append(flat)
                shapes.append(shape)
                lps.append(float(v.log_prob))
            elif kind == "observe":
                if v.name is not None:
                    flat, shape = flat_value(v.value)
                    onames.append(v.name)
                    ovalues.append(flat)
                    oshapes.append(shape)
                log_lik += float(v.log_prob)
            elif v.observed and v.log_prob is not None:  # conditioned latents, factors
                log_lik += float(v.log_prob)
        ttype = trace_type_key(addresses)
        cols["trace_id"].append(first_id + i)
        cols["trace_type"].append(ttype)
        cols["address"].append(addresses)
        cols["name"].append(names)
        cols["distribution"].append(dists)
        cols["params"].append(params)
        cols["value"].append(values)
        cols["value_shape"].append(shapes)
        cols["log_prob"].append(lps)
        cols["observation_name"].append(onames)
        cols["observation_value"].append(ovalues)
        cols["observation_shape"].append(oshapes)
        cols["log_prior"].append(float(trace.log_prior))
        cols["log_likelihood"].append(log_lik)
        if stats is not None:
            stats.num_traces += 1
            stats.trace_types[ttype] += 1
            stats.type_lengths[ttype] = len(addresses)
            stats.addresses.update(addresses)
            for a, d in zip(addresses, dists, strict=True):
                stats.distributions.setdefault(a, d)
            for n, s in zip(onames, oshapes, strict=True):
                stats.observations.setdefault(n, s)
    return pa.Table.from_pydict(cols, schema=SCHEMA)
