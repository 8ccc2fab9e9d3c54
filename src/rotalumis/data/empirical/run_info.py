"""Typed information about how an :class:`~rotalumis.data.Empirical` was made.

Every engine sets ``result.info`` to a :class:`RunInfo`: the engine, its options and seed,
the MCMC chains (lengths, acceptance rates, the joint log density of each kept sample) and
what the proposal did (inference compilation). Diagnostics read it by attribute. It is saved
with the Empirical (the ``"run"`` member of ``metadata.json``); files saved before it existed
carry the same facts as free-form ``metadata`` keys, which :meth:`RunInfo.from_metadata`
reads back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.proposal import ProposalStats

__all__ = ["ChainInfo", "RunInfo"]


@dataclass(frozen=True)
class ChainInfo:
    """One MCMC chain of a result.

    Attributes:
        length: Samples kept from it.
        acceptance_rate: Fraction of its moves accepted (``nan`` when unknown).
    """

    length: int
    acceptance_rate: float = math.nan


@dataclass
class RunInfo:
    """How a result was made.

    Attributes:
        engine: The engine's name (``"is"``, ``"prior"``, ``"lmh"``, ``"rmh"``, ``"pmmh"``,
            ``"ic"``, ...).
        options: The engine's options that shaped the result (JSON values).
        seed: The root seed of the run (``None`` when unknown).
        chains: The MCMC chains, in the order the result holds their samples (empty for
            other engines).
        log_prob: The joint log density of each kept MCMC sample (``None``: not recorded).
        proposal: What the proposal did (inference compilation; ``None`` otherwise).
    """

    engine: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    chains: tuple[ChainInfo, ...] = ()
    log_prob: tuple[float, ...] | None = None
    proposal: ProposalStats | None = None

    @property
    def prior_fallback_fraction(self) -> float | None:
        """Fraction of the choices the proposal left to the prior (``None``: no proposal)."""
        return None if self.proposal is None else self.proposal.fallback_fraction

    @property
    def unseen_addresses(self) -> list[str]:
        """Addresses the proposal did not know, sorted."""
        return [] if self.proposal is None else sorted(self.proposal.unseen)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (what :meth:`from_json` reads)."""
        out: dict[str, Any] = {"engine": self.engine, "options": self.options, "seed": self.seed}
        out["chains"] = [[c.length, c.acceptance_rate] for c in self.chains]
        out["log_prob"] = None if self.log_prob is None else list(self.log_prob)
        if self.proposal is not None:
            p = self.proposal
            out["proposal"] = [p.proposed, p.fallbacks, sorted(p.unseen)]
            if p.nuisance:  # a network of parameters of interest
                out["proposal"].append(p.nuisance)
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunInfo:
        """Read :meth:`to_json`'s dict back.

        Raises:
            ValueError: naming the field that is missing or of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"the run information is not an object: {data!r:.80}")
        engine = _field(data, "engine", str)
        options = _field(data, "options", dict)
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"the run information's seed is not an integer: {seed!r:.80}")
        chains = []
        for c in _field(data, "chains", list):
            if not (isinstance(c, list) and len(c) == 2):
                raise ValueError(f"the run information has a bad chain entry: {c!r:.80}")
            chains.append(ChainInfo(_count(c[0], "chain length"), _number(c[1], "acceptance")))
        log_prob = data.get("log_prob")
        proposal = data.get("proposal")
        stats = None
        if proposal is not None:
            if not (isinstance(proposal, list) and len(proposal) in (3, 4)):
                raise ValueError(f"the run information has a bad proposal entry: {proposal!r:.80}")
            unseen = _strings(proposal[2], "unseen address")
            stats = ProposalStats(
                _count(proposal[0], "count"), _count(proposal[1], "count"), unseen
            )
            if len(proposal) == 4:
                stats.nuisance = _count(proposal[3], "count")
        return cls(
            engine, dict(options), seed, tuple(chains), _log_probs(log_prob), stats
        )  # fmt: skip

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> RunInfo | None:
        """The run information of a file saved before :class:`RunInfo` existed, from its
        free-form metadata: the engine, the chains and the log densities (``None`` if it
        records no engine; malformed entries are left out). The metadata itself is kept as
        it was, so the other keys old files carry (e.g. ``prior_fallback_fraction``) are
        still there."""
        engine = metadata.get("engine")
        if not isinstance(engine, str):
            return None
        chains: list[ChainInfo] = []
        raw = metadata.get("chains")
        for c in raw if isinstance(raw, list) else ():
            try:
                rate = c.get("acceptance_rate", math.nan)
                chains.append(ChainInfo(_count(c["length"], "length"), _number(rate, "rate")))
            except (AttributeError, KeyError, TypeError, ValueError):
                chains = []
                break
        try:
            log_prob = _log_probs(metadata.get("log_prob"))
        except ValueError:
            log_prob = None
        return cls(engine, chains=tuple(chains), log_prob=log_prob)


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"the run information's {key!r} is not a {kind.__name__}: {value!r:.80}")
    return value


def _count(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"the run information has a bad {what}: {x!r:.80}")
    return x


def _number(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"the run information has a bad {what}: {x!r:.80}")
    return float(x)


def _strings(xs: Any, what: str) -> set[str]:
    if not isinstance(xs, list) or not all(isinstance(x, str) for x in xs):
        raise ValueError(f"the run information has a bad {what} list: {xs!r:.80}")
    return set(xs)


def _log_probs(xs: Any) -> tuple[float, ...] | None:
    if xs is None:
        return None
    if not isinstance(xs, Sequence) or isinstance(xs, str):
        raise ValueError(f"the run information's log_prob is not a list: {xs!r:.80}")
    return tuple(_number(x, "log density") for x in xs)
