"""The MCMC kernel interface: ``init(rng) -> state`` and ``step(state, rng) -> state``.

A kernel is one class holding its configuration (the model, the observations, step sizes);
the chain's state is a separate object that the kernel returns and takes back, so one kernel
drives any number of chains. :func:`~.mh.run_chains` runs chains of any kernel (burn-in,
thinning, several chains, worker processes) and collects the samples into an
:class:`~rotalumis.data.Empirical` that knows its chains.

Kernels: :class:`~.mcmc.MHKernel` (single-site LMH and RMH, with a site-selection policy)
and :class:`~.pmmh.PseudoMarginalKernel` (pseudo-marginal MH over named parameters).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rotalumis.core import (
    RNG,
    ConditionHandler,
    Distribution,
    Model,
    ReplayHandler,
    Trace,
    TraceHandler,
)

__all__ = ["Kernel", "KernelState", "ReplayKernel", "State"]


@dataclass
class KernelState:
    """What every kernel's state has.

    Attributes:
        trace: The current trace (its result and named latents are the chain's sample).
        accepted: Moves accepted so far.
        steps: Moves tried so far.
    """

    trace: Trace
    accepted: int = 0
    steps: int = 0

    @property
    def acceptance_rate(self) -> float:
        """Fraction of moves accepted so far."""
        return self.accepted / self.steps if self.steps else 0.0


State = TypeVar("State", bound=KernelState)


class Kernel(Generic[State]):
    """Base class of MCMC kernels (NumPyro style): the configuration lives here, the chain's
    state (a :class:`KernelState` subclass, the type parameter) in what :meth:`init`
    returns and :meth:`step` advances.

    Args:
        model: The model.
        observe: Observed values by name.
        model_args: Arguments for ``model.forward``.
    """

    #: Engine label, used in progress bars, logs and ``result.metadata["engine"]``.
    name = "MCMC"

    def __init__(
        self,
        model: Model,
        observe: Mapping[str, Any] | None = None,
        *,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        self.model = model
        self.observe: dict[str, Any] = dict(observe or {})
        self.model_args = model_args

    @contextlib.contextmanager
    def session(self, rng: RNG) -> Iterator[Kernel[State]]:
        """Keep per-chain set-up alive across many steps drawing from ``rng`` (optional:
        steps work without it; kernels override it to save work per step)."""
        yield self

    def init(self, rng: RNG, initial_trace: Trace | None = None) -> State:
        """A starting state (from ``initial_trace`` when given)."""
        raise NotImplementedError

    def step(self, state: State, rng: RNG) -> State:
        """One move: the new state, or ``state`` itself (its counters updated) if rejected."""
        raise NotImplementedError


class ReplayKernel(Kernel[State]):
    """A kernel that re-runs the model replaying some values: it owns a trace, a condition
    and a replay handler, and keeps them (and the model's execution state) set up for a
    whole chain in :meth:`session`."""

    def __init__(
        self,
        model: Model,
        observe: Mapping[str, Any] | None = None,
        *,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(model, observe, model_args=model_args)
        self._tracer = TraceHandler()
        self._condition = ConditionHandler(self.observe)
        self._replay = ReplayHandler({})
        self._active: ExitStack | None = None
        self._execute: Any = None
        self._session_rng: RNG | None = None

    @contextlib.contextmanager
    def session(self, rng: RNG) -> Iterator[Kernel[State]]:
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

    def _run(
        self,
        rng: RNG,
        values: dict[str, Any],
        distributions: Mapping[str, Distribution] | None = None,
    ) -> Trace:
        """One run of the model replaying ``values`` (see :class:`ReplayHandler`)."""
        self._replay.set_values(values, distributions)
        self._replay.reset()
        trace = self._tracer.reset()
        if self._active is not None and rng is self._session_rng:
            trace.result = self._execute(*self.model_args)
            return trace
        with self._tracer, self._condition, self._replay:
            trace.result = self.model.execute(rng, *self.model_args)
        return trace
