"""Draw random choices from a proposal instead of the prior."""

from __future__ import annotations

from ..proposal import Proposal, ProposalFunction
from ..runtime import Handler, Message, current_rng

__all__ = ["Proposal", "ProposeHandler"]


class ProposeHandler(Handler):
    """Draw each controlled latent from ``proposal(msg)`` and record ``log q`` of the value.

    The trace then carries ``log p - log q`` for these sites, so its
    :attr:`~rotalumis.core.trace.Trace.log_importance_weight` is correct for importance
    sampling with this proposal.

    Args:
        proposal: Maps a sample message to a proposal distribution (or ``None``: prior);
            a :class:`~rotalumis.core.proposal.Proposal` or a plain function.
    """

    def __init__(self, proposal: Proposal | ProposalFunction) -> None:
        super().__init__()
        self.proposal = proposal

    def process(self, msg: Message) -> None:
        if msg.kind != "sample" or not msg.control or msg.value is not None:
            return
        q = self.proposal(msg)
        if q is None:
            return
        value = q.sample(current_rng())
        msg.value = value
        msg.proposal_log_prob = q.log_prob_sum(value)
