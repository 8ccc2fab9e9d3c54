"""Single-site Metropolis-Hastings on traces: lightweight (LMH) and random-walk (RMH).

Each step picks one controlled latent ``k`` of the current trace ``x`` with a site-selection
policy ``pi(k | x)`` (uniform by default; see :mod:`.sites`) and proposes a new value for it:
from its prior (LMH, and RMH on discrete sites) or by a Gaussian random walk around the
current value (RMH on continuous sites). The model is then re-run, replaying every other
latent it visits again; latents that did not exist before are drawn from their prior
("fresh"), latents that are no longer visited are dropped ("stale"). The acceptance ratio
accounts for this change of structure (Wingate, Stuhlmüller & Goodman, 2011):

    log a = log p(y | x') - log p(y | x)
            + sum over replayed sites r of [log p'(x_r) - log p(x_r)]
            + log pi(k | x') - log pi(k | x)
            + [log p'(x'_k) - log p(x_k)]         (random-walk moves only)

Fresh and stale sites cancel between the joint and the proposal. Uncontrolled sites
(``control=False``) are always drawn fresh and cancel too; with such sites in the trace the
distribution of ``k`` may differ between ``x`` and ``x'``, and the proposal densities of the
move and of its reverse enter the ratio explicitly instead of cancelling.

**Replayed values and support changes.** A replayed site's distribution may differ from the
one it was drawn from, because an earlier choice changed (``j = randrange(n)`` after ``n``
moved, the bounds of a uniform that depend on another draw). Whatever the kernel does there
must be symmetric between the move and its reverse, or detailed balance fails: drawing such
a value afresh only when it falls outside the new support (what rotalumis did before) is not,
because the reverse move finds the fresh value inside the old support and replays it, so it
can never return. Two rules are correct:

* *keep*: replay the value; if it lies outside the new support the proposed trace has
  probability zero and the move is rejected;
* *redraw*: when the support changed (:meth:`~rotalumis.core.Distribution.same_support`,
  a symmetric test that ignores the value), the site is a different variable: draw it
  afresh; its proposal density cancels with its prior as for any fresh site.

Neither mixes well everywhere: *keep* moves an index ``j`` with ``n`` only when ``j`` stays
valid (on ``n - j`` observed, the chain can hardly leave a state), while *redraw* throws
away counts and positions that the data pin down. So each move picks one rule at random,
*redraw* with probability ``redraw_probability`` (½ by default) for all its sites: a mixture
of two kernels that each leave the posterior invariant. A changed shape is a different
variable under both rules (drawn afresh both ways, which is symmetric).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotalumis.core import RNG, Distribution, InferenceError, Message, Model, Trace

from ._proposals import check_scale, random_walk, random_walk_log_density
from .kernel import KernelState, ReplayKernel
from .sites import SitePolicy, UniformSites

__all__ = ["MHKernel", "MHState"]

log = logging.getLogger(__name__)

_MAX_INIT_TRIES = 10_000


@dataclass
class MHState(KernelState):
    """The state of one single-site MH chain: the current trace and its bookkeeping.

    Attributes:
        sites: Its controlled latents (the sites a move can pick).
        values: Address -> value of those latents (what the next run replays).
        log_probs: Address -> log-probability of those latents.
        distributions: Address -> the distribution each was drawn from, for the sites whose
            support depends on parameters (the others cannot see their support change).
        choice: The site-selection policy's digest of ``sites``.
        uncontrolled: Whether the trace has uncontrolled sample sites.
    """

    sites: list[Message] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    log_probs: dict[str, float] = field(default_factory=dict)
    distributions: dict[str, Distribution] = field(default_factory=dict)
    choice: Any = None
    uncontrolled: bool = False

    @classmethod
    def from_trace(
        cls,
        trace: Trace,
        policy: SitePolicy | None = None,
        accepted: int = 0,
        steps: int = 0,
        sites: list[Message] | None = None,
        choice: Any = None,
        uncontrolled: bool | None = None,
    ) -> MHState:
        """The state of ``trace`` (after it was accepted); ``sites``, ``choice`` and
        ``uncontrolled`` are computed from the trace unless the caller knows them."""
        if sites is None:
            sites = trace.controlled
        if uncontrolled is None:
            uncontrolled = any(
                v.kind == "sample" and not v.control and not v.observed for v in trace.variables
            )
        if choice is None:
            choice = sites if policy is None else policy.prepare(sites)
        return cls(
            trace,
            accepted,
            steps,
            sites,
            {v.address: v.value for v in sites},
            {v.address: float(v.log_prob) for v in sites},
            _varying_supports(sites),
            choice,
            uncontrolled,
        )


def _varying_supports(sites: list[Message]) -> dict[str, Distribution]:
    """Address -> distribution of the sites whose support depends on parameters."""
    out = {}
    for v in sites:
        d = v.distribution
        if d is not None and not d.fixed_support:
            out[v.address] = d
    return out


class MHKernel(ReplayKernel[MHState]):
    """A single-site Metropolis-Hastings kernel: ``init(rng) -> state``, ``step(state, rng)``.

    Args:
        model: The model (``None``: bound later by the :class:`~.mcmc.MCMC` engine).
        observe: Observed values by name.
        random_walk: ``False`` for LMH (prior proposals everywhere); ``True`` for RMH.
        scale: RMH step size, as a multiple of the prior standard deviation of the site
            (or absolute, when the prior has no finite standard deviation).
        site_policy: How a move picks its site (default :class:`~.sites.UniformSites`).
        redraw_probability: Probability that a move redraws, rather than keeps, the
            replayed sites whose support changed (see the module docstring).
        model_args: Arguments for ``model.forward``.
    """

    def __init__(
        self,
        model: Model | None = None,
        observe: Mapping[str, Any] | None = None,
        *,
        random_walk: bool = False,
        scale: float = 0.5,
        site_policy: SitePolicy | None = None,
        redraw_probability: float = 0.5,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(model, observe, model_args=model_args)
        self.scale = check_scale(scale, "RMH scale")
        if site_policy is not None and not isinstance(site_policy, SitePolicy):
            raise TypeError(f"site_policy must be a SitePolicy, got {site_policy!r}")
        if not (isinstance(redraw_probability, (int, float)) and 0.0 <= redraw_probability <= 1.0):
            raise ValueError(f"redraw_probability must be in [0, 1], got {redraw_probability!r}")
        self.random_walk = random_walk
        self.policy = site_policy or UniformSites()
        self.redraw_probability = float(redraw_probability)
        self.name = "RMH" if random_walk else "LMH"

    def options(self) -> dict[str, Any]:
        return {
            "random_walk": self.random_walk,
            "scale": self.scale,
            "site_policy": repr(self.policy),
            "redraw_probability": self.redraw_probability,
        }

    def _state(self, trace: Trace, accepted: int = 0, steps: int = 0) -> MHState:
        uncontrolled = self._replay.uncontrolled  # of the run that made ``trace``
        return MHState.from_trace(trace, self.policy, accepted, steps, uncontrolled=uncontrolled)

    def init(self, rng: RNG, initial_trace: Trace | None = None) -> MHState:
        """A starting state: ``initial_trace`` re-scored under the data, else a prior draw
        with non-zero likelihood.

        Raises:
            InferenceError: if no prior draw has a finite log-probability.
            ValueError: if the site policy does not fit the model (e.g. unknown params).
        """
        if initial_trace is not None:
            trace = self._run(rng, {v.address: v.value for v in initial_trace.controlled})
            if not math.isfinite(float(trace.log_prob)):
                raise InferenceError("the initial trace has zero probability under the data")
            self.policy.check(trace, self.model.name)
            return self._state(trace)
        for _ in range(_MAX_INIT_TRIES):
            trace = self._run(rng, {})
            if math.isfinite(float(trace.log_prob)):
                self.policy.check(trace, self.model.name)
                return self._state(trace)
        raise InferenceError(
            f"no initial trace of model {self.model.name!r} with non-zero probability in "
            f"{_MAX_INIT_TRIES} prior draws: the observations look impossible"
        )

    def propose_value(self, site: Message, rng: RNG) -> tuple[Any, bool]:
        """A new value for ``site`` and whether the move is a symmetric random walk."""
        dist = site.distribution
        assert dist is not None
        if not self.random_walk or dist.is_discrete:
            return dist.sample(rng), False
        value = site.value
        if type(value) is float:  # the scalar fast path of random_walk, inlined
            sd = dist.stddev
            size = sd * self.scale if math.isfinite(sd) else self.scale
            return value + size * rng.py.gauss(0.0, 1.0), True
        return random_walk(value, dist, self.scale, rng), True

    def step(self, state: MHState, rng: RNG) -> MHState:
        """One Metropolis-Hastings move; returns the new (or the same) state."""
        state.steps += 1
        if not state.sites:  # nothing to move: re-run so uncontrolled sites refresh
            trace = self._run(rng, {})
            return self._state(trace, state.accepted + 1, state.steps)
        policy = self.policy
        uniform = type(policy) is UniformSites  # the common case, inlined: the hot path
        if uniform:
            site = state.sites[rng.py.randrange(len(state.sites))]
        else:
            site, log_pick = policy.select(state.choice, rng)
        new_value, symmetric = self.propose_value(site, rng)
        dist = site.distribution
        assert dist is not None
        if symmetric and not dist.in_support(new_value):
            return state  # zero prior density: reject without running the model
        values = dict(state.values)
        address = site.address
        values[address] = new_value
        replay = self._replay
        varying = state.distributions  # only sites whose support can change need a rule
        if varying:
            p = self.redraw_probability
            replay.redraw_changed_support = p == 1.0 or (p > 0.0 and rng.py.random() < p)
        new = self._run(rng, values, varying or None)
        replayed = replay.replayed
        if replay.out_of_support or address not in replayed:
            return state  # a kept value outside its new support: probability zero
        log_alpha = float(new.log_likelihood) - float(state.trace.log_likelihood)
        if log_alpha == -math.inf or math.isnan(log_alpha):
            return state
        new_sites = new.controlled
        old_lp = state.log_probs
        new_k = site
        for v in new_sites:
            a = v.address
            if a == address:
                new_k = v
            elif a in replayed:
                log_alpha += float(v.log_prob) - old_lp[a]
        if uniform:
            choice: Any = new_sites
            log_alpha += math.log(len(state.sites)) - math.log(len(new_sites))
        else:
            choice = policy.prepare(new_sites)
            log_alpha += policy.log_prob(choice, new_k) - log_pick
        if symmetric or state.uncontrolled:
            log_alpha += float(new_k.log_prob) - old_lp[address]
        if state.uncontrolled:  # k's distribution may have changed: exact proposal terms
            log_alpha += self._proposal_log_ratio(site, new_k, symmetric)
        if math.isnan(log_alpha):
            return state
        if log_alpha >= 0.0 or math.log(rng.py.random() or 1e-300) < log_alpha:
            accepted = state.accepted + 1
            uncontrolled = replay.uncontrolled
            return MHState.from_trace(
                new, policy, accepted, state.steps, new_sites, choice, uncontrolled
            )
        return state

    def _proposal_log_ratio(self, old: Message, new: Message, symmetric: bool) -> float:
        """``log q(x_k | x') - log q(x'_k | x)`` for the move of site ``k`` from ``old``
        (in ``x``) to ``new`` (in ``x'``)."""
        p, p_new = old.distribution, new.distribution
        assert p is not None and p_new is not None
        if symmetric:
            return random_walk_log_density(
                old.value, new.value, p_new, self.scale
            ) - random_walk_log_density(new.value, old.value, p, self.scale)
        if not p_new.in_support(old.value):
            return -math.inf
        return float(p_new.log_prob_sum(old.value)) - float(p.log_prob_sum(new.value))
