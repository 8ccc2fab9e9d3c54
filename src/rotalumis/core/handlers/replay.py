"""Replay the values of an earlier trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..distributions import Distribution
from ..runtime import Handler, Message
from ..trace import Trace

__all__ = ["ReplayHandler"]


class ReplayHandler(Handler):
    """Reuse the values of controlled ``sample`` sites from an earlier trace, by address.

    A recorded value is not replayed, and the site is drawn afresh instead, when:

    * it no longer has the shape of one draw (its parents changed its shape): it is another
      variable now;
    * ``distributions`` gives the distribution it was drawn from, the support of the site's
      distribution differs from it in this run, and :attr:`redraw_changed_support` is set
      (MCMC decides per move whether such sites keep their value or are redrawn);
    * it lies outside the support of the site's distribution in this run: the address is
      then also collected in :attr:`out_of_support` (for MCMC such a move has probability
      zero; the run goes on with a fresh draw so the model never sees an impossible value).

    Addresses actually replayed in the current run are collected in :attr:`replayed` (MCMC
    needs them for its acceptance ratio), and :attr:`uncontrolled` tells whether the run made
    uncontrolled draws (``control=False``); call :meth:`reset` between runs.

    Args:
        values: A :class:`Trace` or a mapping from address to value (a ``dict`` is used
            as is, not copied).
        distributions: Address -> the distribution each value was drawn from (used as is,
            not copied), to detect support changes; ``None``: supports are not compared.
    """

    def __init__(
        self,
        values: Trace | Mapping[str, Any],
        distributions: Mapping[str, Distribution] | None = None,
    ) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self.distributions = distributions
        self.redraw_changed_support = False
        self.replayed: set[str] = set()
        self.out_of_support: set[str] = set()
        self.uncontrolled = False
        self.set_values(values, distributions)

    def set_values(
        self,
        values: Trace | Mapping[str, Any],
        distributions: Mapping[str, Distribution] | None = None,
    ) -> None:
        """Replace the values to replay (and the distributions they were drawn from)."""
        self.distributions = distributions
        if isinstance(values, dict):
            self.values = values  # engines hand over a fresh dict: no copy
        elif isinstance(values, Trace):
            self.values = {
                v.address: v.value
                for v in values.variables
                if v.kind == "sample" and v.control and not v.observed
            }
        else:
            self.values = dict(values)

    def reset(self) -> None:
        """Forget what the last run replayed, or found out of support (before the next run)."""
        self.replayed = set()
        if self.out_of_support:  # usually empty: no new set per run
            self.out_of_support = set()
        self.uncontrolled = False

    def process(self, msg: Message) -> None:
        if msg.kind != "sample" or msg.value is not None:
            return
        if not msg.control:
            self.uncontrolled = True
            return
        values = self.values
        address = msg.address
        if address not in values:
            return
        value = values[address]
        dist = msg.distribution
        if dist is None or not dist.has_value_shape(value):
            return
        if not dist.fixed_support and self.redraw_changed_support:
            old = None if self.distributions is None else self.distributions.get(address)
            if old is not None and not dist.same_support(old):
                return
        if dist.in_support(value):
            msg.value = value
            self.replayed.add(address)
        else:
            self.out_of_support.add(address)
