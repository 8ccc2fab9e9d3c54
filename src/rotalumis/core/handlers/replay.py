"""Replay the values of an earlier trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..runtime import Handler, Message
from ..trace import Trace

__all__ = ["ReplayHandler"]


class ReplayHandler(Handler):
    """Reuse the values of controlled ``sample`` sites from an earlier trace, by address.

    A site whose recorded value is outside the support of its distribution in this run, or
    no longer has the shape of one draw (its parents changed), is not replayed but drawn
    afresh. Addresses actually replayed in
    the current run are collected in :attr:`replayed` (MCMC needs them for its acceptance
    ratio); call :meth:`reset` between runs.

    Args:
        values: A :class:`Trace` or a mapping from address to value (a ``dict`` is used
            as is, not copied).
    """

    def __init__(self, values: Trace | Mapping[str, Any]) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self.replayed: set[str] = set()
        self.set_values(values)

    def set_values(self, values: Trace | Mapping[str, Any]) -> None:
        """Replace the values to replay."""
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
        """Forget which addresses were replayed (before the next run)."""
        self.replayed = set()

    def process(self, msg: Message) -> None:
        if msg.kind != "sample" or not msg.control or msg.value is not None:
            return
        values = self.values
        address = msg.address
        if address in values:
            value = values[address]
            dist = msg.distribution
            if dist is not None and dist.has_value_shape(value) and dist.in_support(value):
                msg.value = value
                self.replayed.add(address)
