"""The MCMC kernel interface: ``init(rng) -> state`` and ``step(state, rng) -> state``.

A kernel is one class holding its configuration (step sizes, site policy, ...) and, once
bound, the model and the observations; the chain's state is a separate object that the
kernel returns and takes back, so one kernel drives any number of chains. The
:class:`~.mcmc.MCMC` engine binds a kernel to a model (:meth:`Kernel.bind`: a copy, so one
configured kernel serves any model) and runs chains of it with :func:`~.mcmc.run_chains`
(burn-in, thinning, several chains, worker processes), collecting the samples into an
:class:`~rotalumis.data.Empirical` that knows its chains.

Kernels: :class:`~.mh_kernel.MHKernel` (single-site LMH and RMH, with a site-selection
policy) and :class:`~.pmmh.PseudoMarginalKernel` (pseudo-marginal MH over named
parameters). A new kernel is one class: subclass :class:`Kernel` (or :class:`ReplayKernel`
for kernels that re-run the model replaying values), with a :class:`KernelState` subclass
for its state.
"""

from __future__ import annotations

import contextlib
import copy
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
_K = TypeVar("_K", bound="Kernel[Any]")


class Kernel(Generic[State]):
    """Base class of MCMC kernels (NumPyro style): the configuration lives here, the chain's
    state (a :class:`KernelState` subclass, the type parameter) in what :meth:`init`
    returns and :meth:`step` advances.

    Args:
        model: The model (``None``: unbound; :meth:`bind` gives a bound copy).
        observe: Observed values by name.
        model_args: Arguments for ``model.forward``.
    """

    #: Engine label, used in progress bars, logs and ``result.info.engine`` (lower case).
    name = "MCMC"

    def __init__(
        self,
        model: Model | None = None,
        observe: Mapping[str, Any] | None = None,
        *,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        self._model = model
        self.observe: dict[str, Any] = dict(observe or {})
        self.model_args = model_args

    @property
    def model(self) -> Model:
        """The model this kernel is bound to.

        Raises:
            ValueError: if the kernel is not bound to a model.
        """
        if self._model is None:
            raise ValueError(
                f"{type(self).__name__} is not bound to a model: run it with "
                "MCMC(kernel).run(model, ...) or create it with the model"
            )
        return self._model

    @property
    def bound(self) -> bool:
        """Whether the kernel has a model."""
        return self._model is not None

    def bind(
        self: _K,
        model: Model,
        observe: Mapping[str, Any] | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> _K:
        """A copy of this kernel (same configuration) for ``model`` and ``observe``."""
        new = copy.copy(self)
        Kernel.__init__(new, model, observe, model_args=model_args)
        new._reset()
        return new

    def _reset(self) -> None:
        """Make fresh per-model working state in a copy made by :meth:`bind` (default:
        none; kernels that own handlers override it)."""

    def options(self) -> dict[str, Any]:
        """The kernel's configuration as JSON values (recorded in ``result.info.options``)."""
        return {}

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
        model: Model | None = None,
        observe: Mapping[str, Any] | None = None,
        *,
        model_args: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(model, observe, model_args=model_args)
        self._reset()

    def _reset(self) -> None:
        self._tracer = TraceHandler()
        self._condition = ConditionHandler(self.observe)
        self._replay = self._new_replay()
        self._active: ExitStack | None = None
        self._execute: Any = None
        self._session_rng: RNG | None = None

    def _new_replay(self) -> ReplayHandler:
        """The replay handler of a run (kernels with their own replay rules override it)."""
        return ReplayHandler({})

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
