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
:func:`as_proposal` wraps it in a :class:`FunctionProposal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .distributions.base import Distribution
from .runtime import Message

__all__ = ["FunctionProposal", "Proposal", "ProposalFunction", "ProposalStats", "as_proposal"]

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
