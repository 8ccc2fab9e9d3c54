"""The :class:`Model`: a simulator seen as a probabilistic program.

Write a model by subclassing :class:`Model` and implementing ``forward``, or by decorating
a plain function with :func:`model`. Engines are looked up by name in a registry that the
inference layer fills in (the core knows no engine).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import CodeType
from typing import Any, ClassVar, Protocol

from .errors import EscapedRandomnessWarning, ModelError
from .escapes import probe_escapes
from .handlers import ConditionHandler, TraceHandler
from .rng import RNG, derive_seed
from .runtime import Execution, current_execution, enter_execution, exit_execution
from .trace import Trace

__all__ = ["Engine", "FunctionModel", "Model", "available_engines", "model", "register_engine"]

log = logging.getLogger(__name__)


class Engine(Protocol):
    """An inference engine: runs ``model`` and returns an ``Empirical``."""

    def __call__(
        self,
        model: Model,
        num_traces: int,
        *,
        observe: Mapping[str, Any] | None,
        seed: int | None,
        **options: Any,
    ) -> Any: ...


_ENGINES: dict[str, Engine] = {}


def register_engine(name: str, engine: Engine) -> None:
    """Make ``engine`` available as ``model.posterior(..., engine=name)``."""
    _ENGINES[name] = engine


def available_engines() -> list[str]:
    """Names of the registered engines."""
    _load_engines()
    return sorted(_ENGINES)


def _load_engines() -> None:
    if not _ENGINES:
        import importlib

        importlib.import_module("rotalumis.infer")  # registers the built-in engines


def _get_engine(name: str) -> Engine:
    _load_engines()
    try:
        return _ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown engine {name!r}; available: {', '.join(sorted(_ENGINES))}"
        ) from None


class Model:
    """A stochastic simulator written with ``sample``/``observe``.

    Subclass and implement :meth:`forward`; it may take arguments, given to engines as
    ``model_args``.

    Example:
        >>> from rotalumis.core import Normal, observe, sample
        >>> class UnknownMean(Model):
        ...     def forward(self):
        ...         mu = sample(Normal(1.0, 5 ** 0.5), name="mu")
        ...         observe(Normal(mu, 2 ** 0.5), name="obs0")
        ...         return mu
        >>> posterior = UnknownMean().posterior(1000, observe={"obs0": 8.0}, seed=0)
    """

    #: Whether copies of the model in forked worker processes (parallel simulation for
    #: training) run independently; ``False`` for models bound to one external connection.
    supports_worker_processes: ClassVar[bool] = True

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One execution of the simulator; returns its result."""
        raise ModelError(f"{type(self).__name__} must implement forward()")

    @property
    def entry_code(self) -> CodeType | None:
        """Code object from which addresses are measured (the ``forward`` function)."""
        fwd = type(self).forward
        return getattr(fwd, "__code__", None)

    def execute(self, rng: RNG, *args: Any, **kwargs: Any) -> Any:
        """Run :meth:`forward` once as a fresh execution drawing from ``rng``.

        An execution that intercepted a simulator (see :mod:`rotalumis.intercept`) is
        followed, the first time only, by the escape check of :meth:`check_escapes`.
        """
        execution = Execution(rng, self.entry_code)
        token = enter_execution(execution)
        try:
            result = self.forward(*args, **kwargs)
        finally:
            exit_execution(token)
        if execution.check_escapes:
            self._escape_check(execution, args, kwargs)
        return result

    @contextlib.contextmanager
    def executions(self, rng: RNG) -> Iterator[Callable[..., Any]]:
        """Many executions in a row drawing from ``rng`` (what engines use).

        Yields a function that runs :meth:`forward` once as a fresh execution; the
        execution state is set up once for the whole block, which keeps the per-execution
        cost down on the hot path.
        """
        execution = Execution(rng, self.entry_code)
        counters = execution.counters
        forward = self.forward

        def run(*args: Any, **kwargs: Any) -> Any:
            counters.clear()
            result = forward(*args, **kwargs)
            if execution.check_escapes:
                self._escape_check(execution, args, kwargs)
            return result

        token = enter_execution(execution)
        try:
            yield run
        finally:
            exit_execution(token)

    def check_escapes(self, seed: int = 0, *args: Any, **kwargs: Any) -> str | None:
        """Run the model twice from the prior with ``seed``; name what differs, if anything.

        Two executions with one seed are identical unless the simulator draws randomness
        the engine does not control (see :mod:`rotalumis.core.escapes`). Engines run this
        check once, after the first execution of a model that intercepts a simulator, and
        warn with :class:`~rotalumis.core.errors.EscapedRandomnessWarning`; turn it off with
        ``intercept(check_escapes=False)`` (or ``InterceptedModel(..., check_escapes=False)``).

        Args:
            seed: The seed of both executions.
            *args: Positional arguments of the model.
            **kwargs: Keyword arguments of the model.

        Returns:
            The first difference in words, or ``None`` when the executions agree.
        """
        return probe_escapes(self, seed, args, kwargs)

    def _escape_check(
        self, execution: Execution, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        execution.check_escapes = False
        if self.__dict__.get("_escapes_checked"):
            return
        self.__dict__["_escapes_checked"] = True
        try:
            difference = self.check_escapes(
                derive_seed(execution.rng.seed, "escapes"), *args, **kwargs
            )
        except Exception as exc:  # the check must never break the run it checks
            log.warning("model %r: escape check skipped, the model raised %r", self.name, exc)
            return
        if difference is not None:
            warnings.warn(
                EscapedRandomnessWarning(
                    f"model {self.name!r}: two executions with the same seed differ in "
                    f"{difference}. Some randomness escapes the engine (not intercepted: "
                    "e.g. a C library drawing from a NumPy bit generator, torch C++ "
                    "kernels such as dropout, a generator created outside the model, a "
                    "thread): it is neither recorded nor controlled, and the posterior can "
                    "be wrong. See the interception section of the README; "
                    "intercept(check_escapes=False) turns this check off."
                ),
                stacklevel=3,
            )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the model once; inside another model's execution, run as part of it."""
        if current_execution() is not None:
            return self.forward(*args, **kwargs)
        return self.execute(RNG(None), *args, **kwargs)

    def get_trace(
        self,
        seed: int | None = None,
        observe: Mapping[str, Any] | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> Trace:
        """Run the model once from the prior (conditioned on ``observe``) and return its trace."""
        tracer = TraceHandler()
        with tracer, ConditionHandler(observe or {}):
            tracer.trace.result = self.execute(RNG(seed), *model_args)
        return tracer.trace

    def prior(self, num_traces: int, seed: int | None = None, **options: Any) -> Any:
        """Draw ``num_traces`` executions from the prior.

        Returns:
            An ``Empirical`` of results (with named latents), equally weighted.
        """
        observe = options.pop("observe", None)
        return _get_engine("prior")(self, num_traces, observe=observe, seed=seed, **options)

    def posterior(
        self,
        num_traces: int,
        engine: str = "is",
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> Any:
        """Approximate the posterior given ``observe`` with the named engine.

        Args:
            num_traces: Traces (importance sampling) or kept samples per chain (MCMC).
            engine: ``"is"``, ``"lmh"``, ``"rmh"``, ``"prior"``, or another registered one.
            observe: Observed values by observation name.
            seed: Seed for reproducible results.
            **options: Engine options (e.g. ``burn_in``, ``thin``, ``num_chains``).

        Returns:
            An ``Empirical`` (weighted for importance sampling).
        """
        return _get_engine(engine)(self, num_traces, observe=observe, seed=seed, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionModel(Model):
    """A model made from a plain function by :func:`model`."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        super().__init__(name or getattr(fn, "__name__", "model"))
        self.fn = fn
        functools.update_wrapper(self, fn)

    @property
    def entry_code(self) -> CodeType | None:
        return getattr(self.fn, "__code__", None)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def model(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Turn a plain function into a :class:`Model` (usable with or without parentheses).

    Example:
        >>> from rotalumis.core import Normal, sample
        >>> @model
        ... def coin():
        ...     return sample(Normal(0.0, 1.0), name="x")
        >>> coin.prior(10, seed=1)  # doctest: +SKIP
    """
    if fn is None:
        return lambda f: FunctionModel(f, name)
    return FunctionModel(fn, name)
