"""Proposals for the parameters of interest only, and samples from the network alone.

A network built with :attr:`~.network.NetworkConfig.interest_names` /
``interest_addresses`` has layers only for the choices those select; every other choice
(the simulator's nuisance draws, possibly thousands per run) is left to the simulator and
drawn from its own prior. Training restricts each batch to the selected choices
(:func:`restrict_batch`), so the LSTM steps over the parameters only and learns their
joint posterior with the nuisance marginalised out. At inference the proposal steps the
LSTM at the selected choices and returns ``None`` (the prior) at the others, so the
importance weight of a run is ``p(y | theta, z) p(theta) / q(theta | y)``: the prior of the
nuisance ``z`` cancels and the estimate stays consistent.

:func:`~.proposal.sample_proposal` draws from the network's proposal alone, without running the
simulator (as neural posterior estimation does), for models whose proposed choices come in
a fixed sequence with fixed priors; the network records that sequence while it trains
(:class:`SiteSequence`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import rotalumis.core as core
from rotalumis.core import Distribution, InferenceError
from rotalumis.data import SiteGroup, TraceBatch

__all__ = ["ProposedSite", "SiteSequence", "restrict_batch"]


def restrict_batch(batch: TraceBatch, keep: Callable[[SiteGroup], bool]) -> TraceBatch:
    """The batch with only the site groups ``keep`` accepts, steps renumbered per trace.

    The kept visits of a trace keep their order; their steps become ``0, 1, ...``, so a
    network reading the batch steps over the kept choices only.
    """
    groups = [g for g in batch.groups if keep(g)]
    if len(groups) == len(batch.groups):
        return batch
    if not groups:
        lengths = np.zeros(batch.size, dtype=np.int64)
        return dataclasses.replace(batch, lengths=lengths, groups=[])
    rows = np.concatenate([g.rows for g in groups])
    steps = np.concatenate([g.steps for g in groups])
    order = np.lexsort((steps, rows))
    counts = np.bincount(rows, minlength=batch.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty_like(steps)
    rank[order] = np.arange(len(rows)) - starts[rows[order]]
    bounds = np.cumsum([0] + [len(g) for g in groups])
    new = [
        dataclasses.replace(g, steps=rank[bounds[i] : bounds[i + 1]]) for i, g in enumerate(groups)
    ]
    return dataclasses.replace(batch, lengths=counts.astype(np.int64), groups=new)


@dataclass(frozen=True)
class ProposedSite:
    """One proposed choice of a fixed-structure model: where it is and what its prior is."""

    address: str
    name: str | None
    distribution: str
    params: tuple[float, ...]
    value_shape: tuple[int, ...]

    def prior(self) -> Distribution:
        """Rebuild the prior from its flattened parameters (see the dataset schema)."""
        cls = getattr(core, self.distribution, None)
        names = getattr(cls, "param_names", None)
        if cls is None or not names or self.distribution == "Mixture":
            raise InferenceError(
                f"cannot rebuild the {self.distribution} prior of {self.label} from its "
                "parameters: sample with the simulator (engine='ic') instead"
            )
        flat = list(self.params)
        if self.distribution in ("Categorical", "Bernoulli") and len(names) == 1:
            chunks: list[Any] = [flat if self.distribution == "Categorical" else flat[0]]
        else:
            k = len(flat) // len(names)
            chunks = [flat[i * k : (i + 1) * k] for i in range(len(names))]
            if self.value_shape:
                shape = self.value_shape
                chunks = [torch.tensor(c, dtype=torch.float64).reshape(shape) for c in chunks]
            else:
                chunks = [c[0] for c in chunks]
        dist: Distribution = cls(*chunks)
        return dist

    @property
    def label(self) -> str:
        """The name, or the address when unnamed."""
        return self.name if self.name is not None else self.address


class SiteSequence:
    """The sequence of proposed choices, recorded from training batches.

    It stays available while every trace of every batch had the same proposed addresses,
    in the same order, with the same prior parameters; the first batch that differs records
    why (:attr:`note`) and the sequence is dropped.
    """

    def __init__(self, sites: list[ProposedSite] | None = None, note: str | None = None) -> None:
        self.sites = sites
        #: why :attr:`sites` is ``None`` (the sequence varies, or was never recorded)
        self.note = None if sites is not None else (note or "not recorded")
        self._varies = sites is None and note is not None and note != "not recorded"

    def update(self, batch: TraceBatch) -> None:
        """Check ``batch`` (already restricted to the proposed choices) against the record."""
        if self._varies:
            return
        found = _fixed_sequence(batch)
        if isinstance(found, str):
            self.sites, self.note, self._varies = None, found, True
        elif self.sites is None:
            self.sites, self.note = found, None
        elif found != self.sites:
            self.sites, self._varies = None, True
            self.note = "the proposed choices or their priors differ between batches"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        sites = None if self.sites is None else [dataclasses.asdict(s) for s in self.sites]
        return {"sites": sites, "note": self.note}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SiteSequence:
        """Inverse of :meth:`to_dict` (``None``: a network saved before it was recorded)."""
        if not d or d.get("sites") is None:
            return cls(None, (d or {}).get("note"))
        sites = [
            ProposedSite(
                s["address"],
                s["name"],
                s["distribution"],
                tuple(s["params"]),
                tuple(s["value_shape"]),
            )
            for s in d["sites"]
        ]
        return cls(sites)


def _fixed_sequence(batch: TraceBatch) -> list[ProposedSite] | str:
    if batch.size == 0:
        return "an empty batch"
    if not bool(np.all(batch.lengths == batch.lengths[0])):
        return "traces have different numbers of proposed choices"
    by_step: dict[int, ProposedSite] = {}
    for g in batch.groups:
        if len(g) != batch.size or not bool(np.all(g.steps == g.steps[0])):
            return f"address {g.address} is not visited once, at one place, by every trace"
        if not bool(np.all(g.params == g.params[0])):
            return f"the prior parameters of address {g.address} vary between traces"
        by_step[int(g.steps[0])] = ProposedSite(
            g.address, g.name, g.distribution, tuple(float(x) for x in g.params[0]),
            tuple(int(x) for x in g.value_shape),
        )  # fmt: skip
    if sorted(by_step) != list(range(int(batch.lengths[0]))):
        return "traces have proposed choices of another size at one step"
    return [by_step[k] for k in sorted(by_step)]
