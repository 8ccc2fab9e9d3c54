"""The address structure of a simulator: which random choices its executions make, in order.

Every trace visits a sequence of addresses (its sample and observe sites); the sequence is
its **trace type** (traces of one type share a structure and differ only in values). An
:class:`AddressStructure` counts trace types over many traces, each trace with a weight
(its normalised importance weight for a weighted posterior, so frequencies are posterior
probabilities; equal weights for MCMC and prior samples); from it come a frequency table, a
dictionary of short ids (``A1``, ``A2``, ...) for the long addresses, and an
:class:`AddressGraph`: nodes are addresses with their visit frequency, edges the
transitions between consecutive sites with their probability
``P(next = b | current = a)``, estimated from the counts (``START`` and ``END`` delimit
each trace). With ``collapse=True`` the instance counter is dropped, so the nodes are call
sites and a loop becomes a self-edge.

Only the sequences are kept (one counter entry per distinct type), never values, so the
structure of a million traces costs no more than that of its distinct types; it is saved to
and loaded from JSON.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rotalumis.core.checks import get_field, loads_json
from rotalumis.core.files import write_text_atomic

__all__ = ["END", "START", "AddressGraph", "AddressStructure", "SiteInfo", "TraceTypeRow"]

START = "START"
"""Pseudo-node before the first site of every trace."""
END = "END"
"""Pseudo-node after the last site of every trace."""

_FORMAT = "rotalumis.address_structure"


@dataclass(frozen=True)
class SiteInfo:
    """What is known about one address: its kind, name and distribution."""

    address: str
    kind: str
    name: str | None
    distribution: str
    observed: bool


@dataclass(frozen=True)
class TraceTypeRow:
    """One line of the trace-type frequency table."""

    rank: int
    count: int
    frequency: float
    addresses: tuple[str, ...]
    """``count``: traces of this type; ``frequency``: their share of the total weight."""


def call_site(address: str) -> str:
    """The address without its instance counter (``f:3__Normal__2`` -> ``f:3__Normal``)."""
    base, sep, counter = address.rpartition("__")
    return base if sep and counter.isdigit() else address


def _distribution_of(address: str, fallback: Any) -> str:
    parts = address.rsplit("__", 2)
    if len(parts) == 3 and parts[2].isdigit():
        return parts[1]
    if fallback is None:
        return "?"
    return fallback if isinstance(fallback, str) else type(fallback).__name__


def _sites(trace: Any) -> list[SiteInfo]:
    """The sample/observe sites of a ``Trace`` or of its ``to_dict()`` form (a loaded trace)."""
    variables = trace["variables"] if isinstance(trace, dict) else trace.variables
    out = []
    for v in variables:
        get = v.get if isinstance(v, dict) else lambda key, v=v: getattr(v, key)
        kind = get("kind")
        if kind not in ("sample", "observe"):
            continue
        address = str(get("address"))
        out.append(
            SiteInfo(
                address=address,
                kind=kind,
                name=get("name"),
                distribution=_distribution_of(address, get("distribution")),
                observed=bool(get("observed")),
            )
        )
    return out


class AddressStructure:
    """Counts of trace types (address sequences) with what is known about each address.

    Example:
        >>> from rotalumis.models import Branching
        >>> prior = Branching().prior(500, seed=0, keep_traces=True)
        >>> s = AddressStructure.from_traces(prior.traces)
        >>> s.num_traces, len(s.trace_types(top=3))
        (500, 3)
    """

    def __init__(self) -> None:
        self._types: dict[tuple[str, ...], list[float]] = {}  # type -> [traces, weight]
        self._sites: dict[str, SiteInfo] = {}

    # ------------------------------------------------------------------ building
    def add(self, trace: Any, weight: float = 1.0) -> None:
        """Count one trace (a ``Trace`` or its ``to_dict()`` form) with ``weight``."""
        sites = _sites(trace)
        for s in sites:
            self._sites.setdefault(s.address, s)
        entry = self._types.setdefault(tuple(s.address for s in sites), [0, 0.0])
        entry[0] += 1
        entry[1] += float(weight)

    @classmethod
    def from_traces(
        cls, traces: Iterable[Any], weights: Iterable[float] | None = None
    ) -> AddressStructure:
        """The structure of ``traces`` (equally weighted unless ``weights`` are given).

        Raises:
            ValueError: if a trace is ``None`` (the engine did not keep it).
        """
        structure = cls()
        ws = iter(weights) if weights is not None else None
        for i, t in enumerate(traces):
            if t is None:
                raise ValueError(f"trace {i} was not kept: run the engine with keep_traces=True")
            structure.add(t, 1.0 if ws is None else next(ws))
        return structure

    @classmethod
    def from_result(cls, result: Any, weighted: bool = True) -> AddressStructure:
        """The structure of the traces kept in an ``Empirical``, each weighted by its
        normalised weight (``weighted=False``: counted equally).

        Raises:
            ValueError: if the Empirical kept no traces.
        """
        traces = result.traces
        if not traces:
            raise ValueError(
                f"the Empirical {result.name!r} kept no traces: run the engine with "
                "keep_traces=True to see its address structure"
            )
        weights = result.weights * len(traces) if weighted else None
        return cls.from_traces(traces, weights)

    # ------------------------------------------------------------------ queries
    @property
    def num_traces(self) -> int:
        """Traces counted."""
        return int(sum(c for c, _ in self._types.values()))

    @property
    def total_weight(self) -> float:
        """Sum of the weights of the traces counted."""
        return float(sum(w for _, w in self._types.values()))

    @property
    def sites(self) -> dict[str, SiteInfo]:
        """Every address seen, with its kind, name and distribution."""
        return dict(self._sites)

    def trace_types(self, top: int | None = None) -> list[TraceTypeRow]:
        """Trace types by decreasing frequency (ties: shorter, then lexicographic first)."""
        total = self.total_weight or 1.0
        ranked = sorted(self._types.items(), key=lambda kv: (-kv[1][1], len(kv[0]), kv[0]))
        return [
            TraceTypeRow(rank=i + 1, count=int(c), frequency=w / total, addresses=t)
            for i, (t, (c, w)) in enumerate(ranked[:top] if top is not None else ranked)
        ]

    def address_ids(self, collapse: bool = False) -> dict[str, str]:
        """Short ids for addresses (``A1``, ...) or, with ``collapse``, call sites (``S1``,
        ...), numbered in order of first visit along the trace types by frequency."""
        ids: dict[str, str] = {}
        prefix = "S" if collapse else "A"
        for row in self.trace_types():
            for a in row.addresses:
                key = call_site(a) if collapse else a
                if key not in ids:
                    ids[key] = f"{prefix}{len(ids) + 1}"
        return ids

    def graph(self, top: int | None = None, collapse: bool = False) -> AddressGraph:
        """The transition graph of the traces of the ``top`` most frequent types (all
        types when ``None``); ``collapse`` merges the instances of each call site."""
        rows = self.trace_types(top)
        visits: defaultdict[str, float] = defaultdict(float)
        traces_visiting: defaultdict[str, float] = defaultdict(float)
        edges: defaultdict[tuple[str, str], float] = defaultdict(float)
        for row in rows:
            keys = [call_site(a) if collapse else a for a in row.addresses]
            path = [START, *keys, END]
            w = row.frequency
            for a, b in itertools.pairwise(path):
                edges[(a, b)] += w
            for k in keys:
                visits[k] += w
            for k in set(keys):
                traces_visiting[k] += w
        info: dict[str, SiteInfo] = {}
        for a, s in self._sites.items():
            info.setdefault(call_site(a) if collapse else a, s)
        return AddressGraph(
            num_traces=sum(r.count for r in rows),
            total=sum(r.frequency for r in rows),
            visits=dict(visits),
            traces_visiting=dict(traces_visiting),
            edges=dict(edges),
            info={k: info[k] for k in visits},
            ids=self.address_ids(collapse),
        )

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``from_json`` reads it back)."""
        return {
            "format": _FORMAT,
            "version": 1,
            "sites": [vars(s) for s in self._sites.values()],
            "types": [
                {"count": int(c), "weight": w, "addresses": list(t)}
                for t, (c, w) in self._types.items()
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> AddressStructure:
        """Rebuild from :meth:`to_json` output (every field checked).

        Raises:
            ValueError: if ``data`` is not an address structure of a known version.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("version") != 1:
            found = data if isinstance(data, dict) else {}
            raise ValueError(
                f"not an address structure of version 1 (format {found.get('format')!r}, "
                f"version {found.get('version')!r})"
            )
        s = cls()
        for i, site in enumerate(get_field(data, "sites", list, "")):
            where = f"site {i}"
            info = SiteInfo(
                address=get_field(site, "address", str, where),
                kind=get_field(site, "kind", str, where),
                name=get_field(site, "name", (str, type(None)), where),
                distribution=get_field(site, "distribution", str, where),
                observed=get_field(site, "observed", bool, where),
            )
            s._sites[info.address] = info
        for i, t in enumerate(get_field(data, "types", list, "")):
            where = f"trace type {i}"
            addresses = get_field(t, "addresses", list, where)
            if not all(isinstance(a, str) for a in addresses):
                raise ValueError(f"{where}: 'addresses' must be strings")
            count = get_field(t, "count", int, where, low=0)
            entry = s._types.setdefault(tuple(addresses), [0, 0.0])
            entry[0] += count
            entry[1] += get_field(t, "weight", float, where, optional=True, default=count)
        return s

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        write_text_atomic(path, json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AddressStructure:
        """Read a file written by :meth:`save`.

        Raises:
            ValueError: naming the file if it is not valid JSON or not an address structure.
        """
        try:
            return cls.from_json(loads_json(Path(path).read_bytes(), "it"))
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable address structure ({exc})") from None


@dataclass(frozen=True)
class AddressGraph:
    """Nodes (addresses or call sites) with visit weights, and weighted transitions.

    All quantities are in units of trace weight (the trace-type frequencies of the
    structure; with equal weights, counts divided by the number of traces).

    Attributes:
        num_traces: Traces the graph was built from.
        total: Their total weight (1 when built from every trace type).
        visits: Total visits of each node (a collapsed call site can be visited many times
            per trace).
        traces_visiting: Weight of the traces that visit each node at least once.
        edges: Transition weights ``(a, b) -> w``, including ``START`` and ``END``.
        info: Kind, name and distribution of each node.
        ids: Short ids of the nodes (``A1``/``S1``, ...).
    """

    num_traces: int
    total: float
    visits: dict[str, float]
    traces_visiting: dict[str, float]
    edges: dict[tuple[str, str], float]
    info: dict[str, SiteInfo]
    ids: dict[str, str]

    def frequency(self, node: str) -> float:
        """Fraction of the (weighted) traces that visit ``node``."""
        return self.traces_visiting.get(node, 0.0) / self.total if self.total else 0.0

    def visits_per_trace(self, node: str) -> float:
        """Mean number of visits of ``node`` per trace."""
        return self.visits.get(node, 0.0) / self.total if self.total else 0.0

    def out_count(self, node: str) -> float:
        """Weight of the transitions leaving ``node``."""
        return sum(c for (a, _), c in self.edges.items() if a == node)

    def probability(self, a: str, b: str) -> float:
        """``P(next site = b | current site = a)``, estimated from the counts."""
        out = self.out_count(a)
        return self.edges.get((a, b), 0.0) / out if out else 0.0
