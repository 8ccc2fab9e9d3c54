"""Which random choices an MCMC move changes: parameter selection and site-selection policies.

Simulators draw hundreds or thousands of values per run, of which a few are the parameters
someone wants a posterior for. :class:`ParameterMatcher` picks those out by name or address
pattern. A :class:`SitePolicy` chooses the site a single-site MH move changes;
:class:`UniformSites` picks every controlled site with equal probability (classic LMH/RMH),
:class:`ParameterSites` picks a parameter with a set probability, so parameters move often
even in a simulator with a thousand nuisance draws.

The MH acceptance ratio needs the probability of picking the changed site ``k`` in the
current trace ``x`` and in the proposed trace ``x'`` (the reverse move picks it there):
``log a`` contains ``log pi(k | x') - log pi(k | x)``; a policy therefore gives both
:meth:`SitePolicy.select` (draw ``k`` with its log-probability) and
:meth:`SitePolicy.log_prob`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rotalumis.core import RNG, Message, Trace

__all__ = ["ParameterMatcher", "ParameterSites", "SitePolicy", "UniformSites"]


class ParameterMatcher:
    """The random choices named as parameters: by name, or by address pattern.

    An entry matches a site whose ``name`` equals it, or whose full address matches it as a
    shell-style pattern (:func:`fnmatch.fnmatchcase`: ``*`` is any run of characters), e.g.
    ``"beta"`` or ``"*simulate:30/np.random.normal*"``.

    Args:
        params: Names or address patterns (a single string is one entry).

    Raises:
        ValueError: if ``params`` is empty or holds something else than non-empty strings.
    """

    def __init__(self, params: str | Iterable[str]) -> None:
        entries = (params,) if isinstance(params, str) else tuple(params)
        if not entries or not all(isinstance(p, str) and p for p in entries):
            raise ValueError(
                f"params must be one or more names or address patterns, got {params!r}"
            )
        self.params = entries
        self._cache: dict[tuple[str, str | None], str | None] = {}

    def entry_for(self, site: Message) -> str | None:
        """The first entry that matches ``site``, or ``None`` (cached per address and name)."""
        key = (site.address, site.name)
        cache = self._cache
        if key in cache:
            return cache[key]
        hit = next(
            (p for p in self.params if p == site.name or fnmatch.fnmatchcase(site.address, p)),
            None,
        )
        cache[key] = hit
        return hit

    def matches(self, site: Message) -> bool:
        """Whether ``site`` is a parameter."""
        return self.entry_for(site) is not None

    def check(self, trace: Trace, model_name: str) -> None:
        """Raise if some entry matches no controlled choice of ``trace``.

        Raises:
            ValueError: naming the entries that match nothing and the named latents.
        """
        seen = {self.entry_for(v) for v in trace.controlled}
        missing = [p for p in self.params if p not in seen]
        if missing:
            names = sorted({v.name for v in trace.controlled if v.name is not None})
            raise ValueError(
                f"params {', '.join(map(repr, missing))} match no random choice of model "
                f"{model_name!r} (names of its choices: {', '.join(names) or 'none'}; "
                "address patterns use * wildcards)"
            )


class SitePolicy:
    """How a single-site MH move picks the site it changes.

    :meth:`prepare` digests a trace's controlled sites once (the kernel keeps the result with
    the state); :meth:`select` draws a site; :meth:`log_prob` is the log-probability of
    picking the site at ``address`` from prepared sites.
    """

    def prepare(self, sites: list[Message]) -> Any:
        """Per-trace data for :meth:`select` and :meth:`log_prob` (default: the sites)."""
        return sites

    def select(self, prepared: Any, rng: RNG) -> tuple[Message, float]:
        """A site to change and the log-probability of having picked it."""
        raise NotImplementedError

    def log_prob(self, prepared: Any, site: Message) -> float:
        """Log-probability of picking ``site`` (one of the prepared sites)."""
        raise NotImplementedError

    def check(self, trace: Trace, model_name: str) -> None:
        """Validate the policy against a model's first trace (default: nothing to check)."""


class UniformSites(SitePolicy):
    """Every controlled site with the same probability ``1 / |sites|``."""

    def select(self, prepared: list[Message], rng: RNG) -> tuple[Message, float]:
        n = len(prepared)
        return prepared[rng.py.randrange(n)], -math.log(n)

    def log_prob(self, prepared: list[Message], site: Message) -> float:
        return -math.log(len(prepared))

    def __repr__(self) -> str:
        return "UniformSites()"


class ParameterSites(SitePolicy):
    """Pick one of the parameters with probability ``probability``, else one of the other
    sites (uniformly within each group; a trace with only one group always uses it).

    Args:
        params: Names or address patterns of the parameters (see :class:`ParameterMatcher`).
        probability: Probability of moving a parameter, strictly between 0 and 1.

    Raises:
        ValueError: for an empty ``params`` or a probability outside ``(0, 1)``.
    """

    def __init__(self, params: str | Sequence[str], probability: float = 0.5) -> None:
        if not (
            isinstance(probability, (int, float))
            and not isinstance(probability, bool)
            and 0.0 < probability < 1.0
        ):
            raise ValueError(
                f"the probability of moving a parameter must be in (0, 1), got {probability!r}"
            )
        self.matcher = ParameterMatcher(params)
        self.probability = float(probability)
        self._log_p = math.log(self.probability)
        self._log_q = math.log1p(-self.probability)

    def prepare(self, sites: list[Message]) -> tuple[list[Message], list[Message]]:
        matches = self.matcher.matches
        params = [v for v in sites if matches(v)]
        others = [v for v in sites if not matches(v)] if params else sites
        return params, others

    def select(
        self, prepared: tuple[list[Message], list[Message]], rng: RNG
    ) -> tuple[Message, float]:
        params, others = prepared
        if params and (not others or rng.py.random() < self.probability):
            group, log_group = params, (self._log_p if others else 0.0)
        else:
            group, log_group = others, (self._log_q if params else 0.0)
        n = len(group)
        return group[rng.py.randrange(n)], log_group - math.log(n)

    def log_prob(self, prepared: tuple[list[Message], list[Message]], site: Message) -> float:
        params, others = prepared
        if self.matcher.matches(site):
            return (self._log_p if others else 0.0) - math.log(len(params))
        return (self._log_q if params else 0.0) - math.log(len(others))

    def check(self, trace: Trace, model_name: str) -> None:
        self.matcher.check(trace, model_name)

    def __repr__(self) -> str:
        return f"ParameterSites({list(self.matcher.params)!r}, probability={self.probability})"
