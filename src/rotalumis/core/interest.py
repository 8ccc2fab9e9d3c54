"""Parameters of interest: the random choices a user wants a posterior for.

Simulators draw many values nobody wants a posterior for (noise, shower fluctuations,
agents' moves). :class:`ParametersOfInterest` names the ones that matter, by site name or
by a pattern of the address, so an engine can treat the rest as uncontrolled nuisance,
redrawn from the simulator's own prior in every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ParametersOfInterest"]


@dataclass(frozen=True)
class ParametersOfInterest:
    """Which random choices are parameters of interest.

    A choice is of interest when its name is one of ``names`` or its address contains one
    of ``addresses`` (a call-site fragment such as ``"sample_momentum:"``, as the patterns
    of :mod:`rotalumis.intercept` are). With neither given, every choice is.

    Attributes:
        names: Site names (exact).
        addresses: Address fragments.

    Example:
        >>> poi = ParametersOfInterest(names=("mu",), addresses=("prior_draw:",))
        >>> poi.matches("mu", "forward:3__Normal__1"), poi.matches(None, "forward:9__Normal__1")
        (True, False)
    """

    names: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what in ("names", "addresses"):
            items = getattr(self, what)
            if isinstance(items, str) or not isinstance(items, Iterable):
                raise TypeError(f"ParametersOfInterest.{what} must be a tuple of strings")
            items = tuple(items)
            if not all(isinstance(x, str) and x for x in items):
                raise ValueError(
                    f"ParametersOfInterest.{what} must hold non-empty strings, got {items!r}"
                )
            object.__setattr__(self, what, items)

    @property
    def everything(self) -> bool:
        """Whether no selection was made (every choice is of interest)."""
        return not self.names and not self.addresses

    def matches(self, name: str | None, address: str) -> bool:
        """Whether the choice with this name and address is of interest."""
        if self.everything or (name is not None and name in self.names):
            return True
        return any(pattern in address for pattern in self.addresses)

    def describe(self) -> str:
        """A short description (``"names mu, sigma; addresses containing 'draw:'"``)."""
        if self.everything:
            return "every random choice"
        parts = []
        if self.names:
            parts.append("names " + ", ".join(self.names))
        if self.addresses:
            parts.append("addresses containing " + ", ".join(map(repr, self.addresses)))
        return "; ".join(parts)
