"""Pseudo-marginal Metropolis-Hastings over named parameters (Andrieu & Roberts, 2009).

A simulator's parameters ``theta`` (chosen by name or address pattern) are the chain's
state; every other random choice ``z`` (the simulator's noise: hundreds or thousands of
draws) is left uncontrolled, drawn afresh from its prior in every run. Each step proposes
``theta'`` (from the parameters' priors, or by a Gaussian random walk), runs the simulator
``M = num_particles`` times with ``theta'`` fixed, and estimates the marginal density

    W(theta') = 1/M sum_i w_i,   w_i = p(theta', z_i, y) / p(z_i | theta') ,

i.e. the likelihood of each run times the parameters' prior density (in run ``i``, so a
prior that depends on earlier draws is handled too); ``z_i`` is drawn from its prior, so
``W`` is an unbiased estimate of ``p(theta', y)``. The likelihoods are averaged, not their
logarithms: the mean of logs would be biased. The move is accepted with probability

    min(1, W(theta') q(theta | theta') / (W(theta) q(theta' | theta))),

keeping ``W(theta)`` of the current state (never re-estimating it): the chain is then an
exact MH chain on an extended space whose ``theta``-marginal is the posterior, whatever
``M``. More particles lower the variance of ``W``, so the chain sticks less in states where
``W`` happened to be overestimated (at ``M`` times the cost per step; aim for a standard
deviation of ``log W`` of about 1-1.5, Doucet et al. 2015).

Each sample's trace is one of the ``M`` runs, picked with probability proportional to its
``w_i`` (as in particle MCMC), so the result and named latents other than the parameters
are draws from the joint posterior too.

**Correlated noise** (``refresh < 1``; Deligiannidis, Doucet & Pitt, 2018). When the
likelihood of one run varies a lot with the noise (the standard deviation of ``log W`` is
tens, not one: agent-based models observed over many days), no affordable ``M`` helps. Then
each particle keeps the noise of its previous run and redraws each element of each draw with
probability ``refresh`` (:mod:`._correlated`): ``W(theta')`` and ``W(theta)`` are estimated
with mostly the same noise, their ratio varies far less, and the noise still moves, a
fraction ``refresh`` per step. This is MH on parameters and noise together, so the ratio
gains the density ratio of the kept noise elements under ``theta'`` and ``theta``:

    log a = log W(theta') - log W(theta) + log q(theta | theta') - log q(theta' | theta)
            + sum over particles and kept elements z of [log p'(z) - log p(z)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotalumis.core import RNG, InferenceError, Message, Model, Trace

from ._correlated import NuisanceReplay
from ._proposals import check_scale, random_walk, random_walk_log_density
from .kernel import KernelState, ReplayKernel
from .sites import ParameterMatcher

__all__ = ["PMMHState", "PseudoMarginalKernel"]

_MAX_INIT_TRIES = 10_000
_PROPOSALS = ("random_walk", "prior")


@dataclass
class PMMHState(KernelState):
    """The state of a pseudo-marginal chain.

    Attributes:
        values: Address -> value of each parameter.
        sites: Address -> the parameter's site in :attr:`trace` (its distribution is what
            prior proposals draw from and random-walk steps are scaled by).
        log_weight: ``log W(theta)``, the log marginal-density estimate kept with the state.
        noise: Per particle, its nuisance sites by address (kept for correlated PMMH only).
    """

    values: dict[str, Any] = field(default_factory=dict)
    sites: dict[str, Message] = field(default_factory=dict)
    log_weight: float = -math.inf
    noise: list[dict[str, Message]] = field(default_factory=list)


class PseudoMarginalKernel(ReplayKernel[PMMHState]):
    """Pseudo-marginal MH over the parameters ``params``; see the module docstring.

    Args:
        model: The model (``None``: bound later by the :class:`~.mcmc.MCMC` engine).
        observe: Observed values by name.
        params: Names or address patterns of the parameters (see
            :class:`~.sites.ParameterMatcher`); every run must visit the same ones.
        num_particles: Simulator runs per step whose likelihoods are averaged.
        proposal: ``"random_walk"`` (Gaussian steps of ``scale`` prior standard deviations
            on continuous parameters, prior draws on discrete ones) or ``"prior"``
            (independent draws from the parameters' priors).
        scale: Random-walk step size relative to each parameter's prior standard deviation.
        refresh: Fraction of the noise redrawn per step: ``1`` (default) redraws all of it
            (standard PMMH); below 1, correlated PMMH (see the module docstring).
        model_args: Arguments for ``model.forward``.

    Raises:
        ValueError: for empty ``params``, a non-positive ``num_particles`` or ``scale``, an
            unknown ``proposal`` or ``refresh`` outside ``(0, 1]``.
    """

    name = "PMMH"

    def __init__(
        self,
        model: Model | None = None,
        observe: Mapping[str, Any] | None = None,
        *,
        params: str | Iterable[str],
        num_particles: int = 1,
        proposal: str = "random_walk",
        scale: float = 0.5,
        refresh: float = 1.0,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(model, observe, model_args=model_args)
        if isinstance(refresh, bool) or not (
            isinstance(refresh, (int, float)) and 0.0 < refresh <= 1.0
        ):
            raise ValueError(f"refresh must be in (0, 1], got {refresh!r}")
        if isinstance(num_particles, bool) or not isinstance(num_particles, int):
            raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
        if num_particles < 1:
            raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
        if proposal not in _PROPOSALS:
            raise ValueError(f"unknown proposal {proposal!r}; use one of {', '.join(_PROPOSALS)}")
        self.matcher = ParameterMatcher(params)
        self.num_particles = num_particles
        self.random_walk = proposal == "random_walk"
        self.scale = check_scale(scale)
        self.refresh = float(refresh)

    def _new_replay(self) -> NuisanceReplay:
        return NuisanceReplay()

    def options(self) -> dict[str, Any]:
        return {
            "params": list(self.matcher.params),
            "num_particles": self.num_particles,
            "proposal": "random_walk" if self.random_walk else "prior",
            "scale": self.scale,
            "refresh": self.refresh,
        }

    # -- the marginal-likelihood estimate ---------------------------------------------------
    def _params_of(self, trace: Trace) -> dict[str, Message]:
        matches = self.matcher.matches
        return {v.address: v for v in trace.controlled if matches(v)}

    def _run_weight(self, trace: Trace, values: dict[str, Any]) -> tuple[float, dict[str, Message]]:
        """``log w`` of one run with the parameters ``values`` replayed, and its parameter
        sites; ``-inf`` if a parameter fell outside its support in this run.

        Raises:
            InferenceError: if the run visits other parameters than ``values``.
        """
        sites = self._params_of(trace)
        replay = self._replay
        if sites.keys() != values.keys():
            extra = sorted(sites.keys() - values.keys())
            missing = sorted(values.keys() - sites.keys())
            raise InferenceError(
                f"pseudo-marginal MH needs the same parameters in every run of model "
                f"{self.model.name!r}; this run "
                + (f"visits new ones {extra}" if extra else f"does not visit {missing}")
            )
        log_w = float(trace.log_likelihood)
        for address, site in sites.items():
            if address in replay.out_of_support:
                return -math.inf, sites
            if address not in replay.replayed:
                raise InferenceError(
                    f"pseudo-marginal MH: parameter {address!r} of model {self.model.name!r} "
                    "changed shape between runs; parameters must keep theirs"
                )
            log_w += float(site.log_prob)
        return log_w, sites

    def _estimate(
        self, rng: RNG, values: dict[str, Any], noise: list[dict[str, Message]] | None = None
    ) -> tuple[float, Trace, dict[str, Message], list[dict[str, Message]], float]:
        """``log W`` over ``num_particles`` runs; one run picked in proportion to its weight
        (the first when every weight is zero) with its parameter sites; each particle's
        nuisance sites (correlated PMMH only) and the kept noise's log-density ratio.

        Args:
            noise: Per particle, the nuisance sites of its previous run to partly reuse.
        """
        nuisance = self._replay
        assert isinstance(nuisance, NuisanceReplay)
        nuisance.rng, nuisance.refresh = rng, self.refresh
        runs = []
        new_noise: list[dict[str, Message]] = []
        log_ratio = 0.0
        for j in range(self.num_particles):
            nuisance.old = noise[j] if noise else {}
            trace = self._run(rng, values)
            log_ratio += nuisance.log_ratio
            log_w, sites = self._run_weight(trace, values)
            if math.isnan(log_w):
                log_w = -math.inf
            runs.append((log_w, trace, sites))
            if self.refresh < 1.0:
                kept = {v.address: v for v in trace.controlled if v.address not in values}
                new_noise.append(kept)
        nuisance.old = {}
        top = max(r[0] for r in runs)
        if top == -math.inf:
            return top, runs[0][1], runs[0][2], new_noise, log_ratio
        weights = [math.exp(r[0] - top) for r in runs]
        total = math.fsum(weights)
        log_weight = top + math.log(total) - math.log(self.num_particles)
        u = rng.py.random() * total
        chosen = len(runs) - 1
        for i, w in enumerate(weights):
            u -= w
            if u < 0.0:
                chosen = i
                break
        _, trace, sites = runs[chosen]
        return log_weight, trace, sites, new_noise, log_ratio

    # -- the kernel -------------------------------------------------------------------------
    def init(self, rng: RNG, initial_trace: Trace | None = None) -> PMMHState:
        """A starting state: the parameters of ``initial_trace`` or of a prior draw, with a
        non-zero marginal-likelihood estimate.

        Raises:
            ValueError: if some entry of ``params`` matches no random choice.
            InferenceError: if no prior draw gives a non-zero estimate.
        """
        for _ in range(_MAX_INIT_TRIES):
            first = self._run(rng, {}) if initial_trace is None else initial_trace
            self.matcher.check(first, self.model.name)
            values = {a: v.value for a, v in self._params_of(first).items()}
            log_weight, trace, sites, noise, _ = self._estimate(rng, values)
            if log_weight > -math.inf:
                return PMMHState(trace, 0, 0, values, sites, log_weight, noise)
            if initial_trace is not None:
                raise InferenceError("the initial trace's parameters have zero probability")
        raise InferenceError(
            f"no parameters of model {self.model.name!r} with a non-zero likelihood estimate in "
            f"{_MAX_INIT_TRIES} prior draws: the observations look impossible"
        )

    def step(self, state: PMMHState, rng: RNG) -> PMMHState:
        """One pseudo-marginal move; returns the new (or the same) state."""
        state.steps += 1
        proposed: dict[str, Any] = {}
        log_q = 0.0  # log q(theta | theta') - log q(theta' | theta)
        for address, site in state.sites.items():
            dist = site.distribution
            assert dist is not None
            if self.random_walk and not dist.is_discrete:
                value = random_walk(site.value, dist, self.scale, rng)
                if not dist.in_support(value):
                    return state  # see _reverse_log_q: a symmetric rejection
                log_q -= random_walk_log_density(value, site.value, dist, self.scale)
            else:
                value = dist.sample(rng)
                log_q -= float(dist.log_prob_sum(value))
            proposed[address] = value
        log_weight, trace, sites, noise, log_ratio = self._estimate(rng, proposed, state.noise)
        if log_weight == -math.inf:
            return state
        log_q += self._reverse_log_q(state.values, sites)
        log_alpha = log_weight - state.log_weight + log_q + log_ratio
        if math.isnan(log_alpha):
            return state
        if log_alpha >= 0.0 or math.log(rng.py.random() or 1e-300) < log_alpha:
            accepted = state.accepted + 1
            return PMMHState(trace, accepted, state.steps, proposed, sites, log_weight, noise)
        return state

    def _reverse_log_q(self, values: dict[str, Any], sites: dict[str, Message]) -> float:
        """``log q(theta | theta')``: proposing the current values from the proposed state.

        A random-walk value outside the support of the current state's prior is rejected
        before running; the reverse move is rejected when the current value lies outside the
        support in the proposed state (``-inf`` here), which makes the rejection symmetric.
        """
        total = 0.0
        for address, site in sites.items():
            dist = site.distribution
            assert dist is not None
            value = values[address]
            if not dist.in_support(value):
                return -math.inf
            if self.random_walk and not dist.is_discrete:
                total += random_walk_log_density(value, site.value, dist, self.scale)
            else:
                total += float(dist.log_prob_sum(value))
        return total
