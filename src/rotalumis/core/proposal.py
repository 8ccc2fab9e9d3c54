"""The :class:`Proposal` protocol: what importance sampling asks of a proposal.

A proposal decides the value of each controlled random choice in place of the prior (see
:class:`~rotalumis.core.handlers.ProposeHandler`). What it **must** implement is
``__call__(msg) -> Distribution | None`` (``None`` leaves the choice to its prior). What it
**may** implement, by subclassing :class:`Proposal` and overriding the defaults:

* :meth:`Proposal.begin_trace`: told when each execution starts (a stateful proposal, e.g.
  the inference network's LSTM, resets there); default: nothing;
* :attr:`Proposal.stats`: a :class:`ProposalStats` that the proposal updates (choices it
  proposed, choices it left to the prior, addresses it did not know); default ``None``.
  Engines running the proposal in worker processes reset the copy's counts before each
  piece of work and add every copy's counts to the original's.

A plain function ``Message -> Distribution | None`` is a proposal too:
:func:`as_proposal` wraps it in a :class:`FunctionProposal`. :class:`MixtureProposal`
mixes whole-trace proposals (multiple importance sampling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from .distributions.base import Distribution
from .errors import InferenceError
from .runtime import Message, current_rng

__all__ = [
    "FunctionProposal",
    "MixtureProposal",
    "Proposal",
    "ProposalFunction",
    "ProposalStats",
    "as_proposal",
]

ProposalFunction = Callable[[Message], Distribution | None]
"""A function from a (not yet decided) sample message to a proposal distribution, or
``None`` to leave the choice to the prior."""


@dataclass
class ProposalStats:
    """What a proposal did in a run (see :attr:`Proposal.stats`).

    Attributes:
        proposed: Choices drawn from the proposal.
        fallbacks: Choices left to their prior (e.g. addresses a network never saw).
        unseen: Addresses the proposal did not know.
        nuisance: Choices outside a network's parameters of interest, left to their prior
            on purpose (not counted as fallbacks).
    """

    proposed: int = 0
    fallbacks: int = 0
    unseen: set[str] = field(default_factory=set)
    nuisance: int = 0

    @property
    def fallback_fraction(self) -> float:
        """Fraction of the choices left to the prior (0 when there were none)."""
        total = self.proposed + self.fallbacks
        return self.fallbacks / total if total else 0.0

    def reset(self) -> None:
        """Zero the counts."""
        self.proposed = self.fallbacks = self.nuisance = 0
        self.unseen = set()

    def add(self, other: ProposalStats) -> None:
        """Add the counts of ``other`` (e.g. of a copy that ran in a worker process)."""
        self.proposed += other.proposed
        self.fallbacks += other.fallbacks
        self.nuisance += other.nuisance
        self.unseen |= other.unseen


@runtime_checkable
class Proposal(Protocol):
    """A proposal for importance sampling; subclass it to get the optional parts' defaults.

    Attributes:
        stats: Counts the proposal keeps (``None``: it keeps none).
    """

    stats: ProposalStats | None = None

    def __call__(self, msg: Message) -> Distribution | None:
        """The proposal for the choice ``msg`` (``None``: use its prior)."""
        ...

    def begin_trace(self) -> None:
        """A new execution starts (default: nothing to do)."""
        return None


class FunctionProposal(Proposal):
    """A plain function ``Message -> Distribution | None`` as a :class:`Proposal`.

    Args:
        fn: The function.
    """

    def __init__(self, fn: ProposalFunction) -> None:
        self.fn = fn

    def __call__(self, msg: Message) -> Distribution | None:
        return self.fn(msg)

    def __repr__(self) -> str:
        return f"FunctionProposal({self.fn!r})"


def as_proposal(proposal: Proposal | ProposalFunction | Any) -> Proposal:
    """``proposal`` as a :class:`Proposal` (a plain function is wrapped).

    Raises:
        TypeError: if ``proposal`` is not callable.
    """
    if isinstance(proposal, Proposal):
        return proposal
    if not callable(proposal):
        raise TypeError(
            f"a proposal must be a Proposal or a function Message -> Distribution | None, "
            f"got {type(proposal).__name__}"
        )
    return FunctionProposal(proposal)


def _logsumexp(xs: Sequence[float]) -> float:
    top = max(xs)
    if top == -math.inf or top == math.inf:
        return top
    return top + math.log(sum(math.exp(x - top) for x in xs))


def normalised_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Mixing weights for ``n`` components, summing to one (``None``: equal).

    Raises:
        ValueError: unless ``weights`` are ``n`` finite non-negative numbers, not all zero.
    """
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n or not all(math.isfinite(x) and x >= 0.0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be {n} non-negative numbers, not all zero; got {weights!r}")
    total = sum(w)
    return [x / total for x in w]


class MixtureProposal(Proposal):
    """A mixture of whole-execution proposals, weighted by the mixture's density.

    Each execution draws all its choices from one component ``k`` (picked with probability
    ``weights[k]`` at its first proposed choice, from the execution's random stream), and
    its ``log q`` is that of the mixture, ``log sum_j weights[j] q_j(x)``, where
    ``q_j(x)`` is the product over the proposed choices of component ``j``'s density (its
    prior where ``j`` leaves a choice to the prior): the balance heuristic of multiple
    importance sampling (Veach and Guibas 1995; the deterministic mixture of adaptive
    multiple importance sampling, Cornuet et al. 2012). Wherever one component covers the
    posterior, the mixture's density is at least ``weights[k]`` times it, which bounds the
    weights that a thinner component alone would give. Every component is stepped
    through every choice, so stateful components (an inference network's LSTM) see the
    whole execution; each choice costs one call of each.

    The recorded ``log q`` of each choice is the increase of the mixture's log density of
    the execution so far, so the choices' sum is the mixture's ``log q(x)``, and the trace's
    importance weight ``log p - log q`` is exact.

    Args:
        proposals: The components (:class:`Proposal` objects or plain functions), at least one.
        weights: Mixing weights, non-negative, one per component (normalised here);
            default: equal.

    Raises:
        ValueError: for no components or invalid weights.
    """

    def __init__(
        self,
        proposals: Sequence[Proposal | ProposalFunction],
        weights: Sequence[float] | None = None,
    ) -> None:
        self.proposals = [as_proposal(p) for p in proposals]
        n = len(self.proposals)
        if n == 0:
            raise ValueError("a MixtureProposal needs at least one proposal")
        self.weights = normalised_weights(weights, n)
        self._log_weights = [math.log(x) if x > 0 else -math.inf for x in self.weights]
        self.stats: ProposalStats | None = ProposalStats()
        self.begin_trace()

    def begin_trace(self) -> None:
        """A new execution: every component is told; its component is not chosen yet."""
        for p in self.proposals:
            p.begin_trace()
        self.component: int | None = None
        #: log weight + log q_j of the execution's choices so far, for each component j
        self._log_q = list(self._log_weights)
        self._total = 0.0  # log sum_j of exp(self._log_q[j])

    def _choose(self) -> int:
        positive = [k for k, w in enumerate(self.weights) if w > 0]
        if len(positive) == 1:  # no draw: the same random stream as that component alone
            return positive[0]
        u, acc = current_rng().py.random(), 0.0
        for k, w in enumerate(self.weights):
            acc += w
            if u < acc and w > 0:
                return k
        return positive[-1]

    def __call__(self, msg: Message) -> Distribution | None:
        """The mixture's step at ``msg`` (``None``: every component leaves it to the prior)."""
        qs = [p(msg) for p in self.proposals]
        stats = self.stats
        if all(q is None for q in qs):
            if stats is not None:
                if any(p.stats is not None and msg.address in p.stats.unseen
                       for p in self.proposals):  # fmt: skip
                    stats.fallbacks += 1
                    stats.unseen.add(msg.address)
                else:
                    stats.nuisance += 1
            return None
        prior = msg.distribution
        if prior is None and any(q is None for q in qs):
            raise InferenceError(
                f"MixtureProposal: a component left {msg.address!r} to its prior, which the "
                "message does not carry, so the mixture's density cannot be computed"
            )
        if self.component is None:
            self.component = self._choose()
        if stats is not None:
            stats.proposed += 1
            if any(q is None for q in qs) and any(
                p.stats is not None and msg.address in p.stats.unseen for p in self.proposals
            ):  # proposed by some, unknown to others: listed as the components list it
                stats.unseen.add(msg.address)
        components = [q if q is not None else prior for q in qs]
        return _MixtureStep(self, [c for c in components if c is not None])

    def _advance(self, log_probs: Sequence[float]) -> float:
        log_q = [a + b for a, b in zip(self._log_q, log_probs, strict=True)]
        total = _logsumexp(log_q)
        if total == -math.inf:  # no component can propose this value
            return -math.inf
        step, self._log_q, self._total = total - self._total, log_q, total
        return step

    def __repr__(self) -> str:
        return f"MixtureProposal({self.proposals!r}, weights={self.weights!r})"


class _MixtureStep(Distribution):
    """One choice of a :class:`MixtureProposal`'s execution: draws from the execution's
    component; ``log_prob_sum`` (called once, for the drawn value) advances the mixture's
    density and returns its increase."""

    __slots__ = ("_components", "_mixture")

    name: ClassVar[str] = "MixtureStep"

    def __init__(self, mixture: MixtureProposal, components: Sequence[Distribution]) -> None:
        self._mixture, self._components = mixture, list(components)

    def sample(self, rng: Any) -> Any:
        k = self._mixture.component
        assert k is not None
        return self._components[k].sample(rng)

    def log_prob_sum(self, value: Any) -> float:
        return self._mixture._advance([float(c.log_prob_sum(value)) for c in self._components])
