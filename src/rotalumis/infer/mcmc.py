"""Single-site Metropolis-Hastings on traces: lightweight (LMH) and random-walk (RMH).

Each step picks one controlled latent of the current trace uniformly at random and proposes
a new value for it — from its prior (LMH, and RMH on discrete sites) or by a Gaussian random
walk around the current value (RMH on continuous sites). The model is then re-run, replaying
every other latent it visits again; latents that did not exist before are drawn from their
prior ("fresh"), latents that are no longer visited are dropped ("stale"). The acceptance
ratio accounts for this change of structure (Wingate, Stuhlmüller & Goodman, 2011):

    log a = log p(y | x') - log p(y | x)
            + sum over replayed sites r of [log p'(x_r) - log p(x_r)]
            + log |S(x)| - log |S(x')|
            + [log p'(x'_k) - log p(x_k)]         (random-walk moves only)

where ``S(x)`` are the controlled latents of ``x``; fresh and stale sites cancel between the
joint and the proposal. Uncontrolled sites (``control=False``) are always drawn fresh and
cancel too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from rotalumis.core import (
    RNG,
    ConditionHandler,
    InferenceError,
    Message,
    Model,
    ReplayHandler,
    Trace,
    TraceHandler,
)

__all__ = ["MHKernel", "MHState"]

log = logging.getLogger(__name__)

_MAX_INIT_TRIES = 10_000


@dataclass
class MHState:
    """The state of one chain: the current trace and its bookkeeping.

    Attributes:
        trace: The current trace.
        sites: Its controlled latents (the sites a move can pick).
        values: Address -> value of those latents (what the next run replays).
        log_probs: Address -> log-probability of those latents.
        accepted: Moves accepted so far.
        steps: Moves tried so far.
    """

    trace: Trace
    sites: list[Message]
    values: dict[str, Any]
    log_probs: dict[str, float]
    accepted: int = 0
    steps: int = 0

    @classmethod
    def from_trace(cls, trace: Trace, accepted: int = 0, steps: int = 0) -> MHState:
        """Build the state of ``trace`` (after it was accepted)."""
        sites = trace.controlled
        return cls(
            trace,
            sites,
            {v.address: v.value for v in sites},
            {v.address: float(v.log_prob) for v in sites},
            accepted,
            steps,
        )

    @property
    def acceptance_rate(self) -> float:
        """Fraction of moves accepted so far."""
        return self.accepted / self.steps if self.steps else 0.0


class MHKernel:
    """A single-site Metropolis-Hastings kernel: ``init(rng) -> state``, ``step(state, rng)``.

    Args:
        model: The model.
        observe: Observed values by name.
        random_walk: ``False`` for LMH (prior proposals everywhere); ``True`` for RMH.
        scale: RMH step size, as a multiple of the prior standard deviation of the site
            (or absolute, when the prior has no finite standard deviation).
        model_args: Arguments for ``model.forward``.
    """

    def __init__(
        self,
        model: Model,
        observe: Mapping[str, Any] | None = None,
        *,
        random_walk: bool = False,
        scale: float = 0.5,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
            raise ValueError(f"RMH scale must be a positive number, got {scale!r}")
        self.model = model
        self.random_walk = random_walk
        self.scale = float(scale)
        self.model_args = model_args
        self._tracer = TraceHandler()
        self._condition = ConditionHandler(observe or {})
        self._replay = ReplayHandler({})
        self._active: ExitStack | None = None
        self._execute: Any = None
        self._session_rng: RNG | None = None

    @contextmanager
    def session(self, rng: RNG) -> Iterator[MHKernel]:
        """Keep the kernel's handlers and execution state set up across many steps drawing
        from ``rng`` (saves setting them up at every step); steps work without this too."""
        with ExitStack() as stack:
            for h in (self._tracer, self._condition, self._replay):
                stack.enter_context(h)
            self._execute = stack.enter_context(self.model.executions(rng))
            self._active, self._session_rng = stack, rng
            try:
                yield self
            finally:
                self._active = self._execute = self._session_rng = None

    def _run(self, rng: RNG, values: dict[str, Any]) -> Trace:
        self._replay.set_values(values)
        self._replay.reset()
        trace = self._tracer.reset()
        if self._active is not None and rng is self._session_rng:
            trace.result = self._execute(*self.model_args)
            return trace
        with self._tracer, self._condition, self._replay:
            trace.result = self.model.execute(rng, *self.model_args)
        return trace

    def init(self, rng: RNG, initial_trace: Trace | None = None) -> MHState:
        """A starting state: ``initial_trace`` re-scored under the data, else a prior draw
        with non-zero likelihood.

        Raises:
            InferenceError: if no prior draw has a finite log-probability.
        """
        if initial_trace is not None:
            trace = self._run(rng, {v.address: v.value for v in initial_trace.controlled})
            if not math.isfinite(float(trace.log_prob)):
                raise InferenceError("the initial trace has zero probability under the data")
            return MHState.from_trace(trace)
        for _ in range(_MAX_INIT_TRIES):
            trace = self._run(rng, {})
            if math.isfinite(float(trace.log_prob)):
                return MHState.from_trace(trace)
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
        sd = dist.stddev
        if isinstance(value, torch.Tensor):
            sd_t = torch.as_tensor(sd, dtype=value.dtype)
            step = torch.where(torch.isfinite(sd_t), sd_t, torch.ones_like(sd_t)) * self.scale
            noise = torch.randn(value.shape, generator=rng.torch, dtype=value.dtype)
            return value + step * noise, True
        size = sd * self.scale if math.isfinite(sd) else self.scale
        return value + size * rng.py.gauss(0.0, 1.0), True

    def step(self, state: MHState, rng: RNG) -> MHState:
        """One Metropolis-Hastings move; returns the new (or the same) state."""
        state.steps += 1
        sites = state.sites
        if not sites:  # nothing to move: re-run so uncontrolled sites refresh
            trace = self._run(rng, {})
            return MHState.from_trace(trace, state.accepted + 1, state.steps)
        site = sites[rng.py.randrange(len(sites))]
        new_value, symmetric = self.propose_value(site, rng)
        dist = site.distribution
        assert dist is not None
        if symmetric and not dist.in_support(new_value):
            return state  # zero prior density: reject without running the model
        values = dict(state.values)
        address = site.address
        values[address] = new_value
        new = self._run(rng, values)
        log_alpha = float(new.log_likelihood) - float(state.trace.log_likelihood)
        if log_alpha == -math.inf or math.isnan(log_alpha):
            return state
        new_sites = new.controlled
        log_alpha += math.log(len(sites)) - math.log(len(new_sites))
        old_lp = state.log_probs
        replayed = self._replay.replayed
        new_k_lp = 0.0
        for v in new_sites:
            a = v.address
            if a == address:
                new_k_lp = float(v.log_prob)
            elif a in replayed:
                log_alpha += float(v.log_prob) - old_lp[a]
        if symmetric:
            log_alpha += new_k_lp - old_lp[address]
        if math.isnan(log_alpha):
            return state
        if log_alpha >= 0.0 or math.log(rng.py.random() or 1e-300) < log_alpha:
            return MHState.from_trace(new, state.accepted + 1, state.steps)
        return state
