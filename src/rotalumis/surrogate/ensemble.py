"""Several surrogates of one simulator used as one model: training randomness averages out.

Surrogates trained on different runs (or seeds) of a simulator err differently where the
training data are thin. :class:`SurrogateEnsemble` is the uniform mixture of ``K`` of them:
each execution runs one member, chosen uniformly from the execution's random stream, so a
trace's density is its member's, ``p_k(x)``, and the model it samples is
``p(x) = (1 / K) sum_k p_k(x)``. The member is an auxiliary random choice outside the trace
(like a simulator's nuisance draws): importance sampling is exact for the mixture (a weight
``p_k(x) / q(x)`` is an unbiased estimate of ``p(x) / q(x)``), and MCMC engines, which
re-run the model at every step, see an unbiased (pseudo-marginal) estimate of the density.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rotalumis.core import Model, current_rng

from .model import SurrogateModel, SurrogateStats

__all__ = ["SurrogateEnsemble"]


class SurrogateEnsemble(Model):
    """The uniform mixture of surrogates of one simulator, run as one model.

    Args:
        members: The surrogates (at least one), all of the same simulator.
        name: Model name (default: ``Ensemble(<imitated model>)``).

    Raises:
        ValueError: naming the member that is not a :class:`SurrogateModel` or that
            imitates another model than the first.

    Example:
        >>> ensemble = SurrogateEnsemble.load(["s1.pt", "s2.pt", "s3.pt"])  # doctest: +SKIP
        >>> ensemble.posterior(20000, engine="is", observe={"y": 1.0})  # doctest: +SKIP
    """

    def __init__(self, members: Sequence[SurrogateModel], name: str | None = None) -> None:
        members = list(members)
        if not members:
            raise ValueError("SurrogateEnsemble: needs at least one member")
        for i, m in enumerate(members):
            if not isinstance(m, SurrogateModel):
                raise ValueError(
                    f"SurrogateEnsemble: member {i} is a {type(m).__name__}, not a SurrogateModel"
                )
            if m.imitates != members[0].imitates:
                raise ValueError(
                    f"SurrogateEnsemble: member {i} imitates {m.imitates!r}, "
                    f"member 0 imitates {members[0].imitates!r}"
                )
        super().__init__(name or f"Ensemble({members[0].imitates or 'model'})")
        self.members = members

    @classmethod
    def load(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        simulator: Model | None = None,
        batch: int = 64,
    ) -> SurrogateEnsemble:
        """Load the surrogates saved in ``paths`` (see :meth:`SurrogateModel.load`)."""
        return cls([SurrogateModel.load(p, simulator, batch=batch) for p in paths])

    @property
    def imitates(self) -> str | None:
        """Name of the model the members imitate."""
        return self.members[0].imitates

    @property
    def stats(self) -> SurrogateStats:
        """Executions and fallbacks of all members together."""
        return SurrogateStats(
            sum(m.stats.executions for m in self.members),
            sum(m.stats.fallbacks for m in self.members),
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One execution of a member chosen uniformly; returns what the member returns."""
        k = current_rng().py.randrange(len(self.members)) if len(self.members) > 1 else 0
        return self.members[k].forward(*args, **kwargs)
