"""The :class:`Model`: a simulator seen as a probabilistic program.

Write a model by subclassing :class:`Model` and implementing ``forward``, or by decorating
a plain function with :func:`model`. ``model.posterior(engine=...)`` is sugar over the engine
objects of :mod:`rotalumis.infer`, looked up by name in :mod:`.engines` (the core knows no
engine and imports none).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import CodeType
from typing import Any, ClassVar, Protocol, runtime_checkable

from .engines import create_engine
from .errors import EscapedRandomnessWarning, ModelError, RotalumisError, execution_error
from .escapes import probe_escapes
from .handlers import ConditionHandler
from .limits import LIMIT_OPTIONS, TraceLimits, limit_traces, limits_for, watch_time
from .rng import RNG, derive_seed
from .runtime import (
    Execution,
    Handler,
    current_execution,
    enter_execution,
    exit_execution,
    release_holds,
)
from .simulate import simulate
from .trace import Trace

__all__ = ["Engine", "FunctionModel", "Model", "model"]

log = logging.getLogger(__name__)


@runtime_checkable
class Engine(Protocol):
    """An inference engine: configured once, run on a model.

    Engines are made by a factory (usually the engine class itself) from keyword options,
    e.g. ``ImportanceSampling(workers=4)`` or ``MCMC(MHKernel(random_walk=True),
    burn_in=500)``; :meth:`run` then runs any model with them.
    """

    def run(
        self,
        model: Model,
        *,
        num_traces: int,
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> Any:
        """Approximate the posterior of ``model`` given ``observe``.

        Args:
            model: The model.
            num_traces: Traces (importance sampling) or kept samples per chain (MCMC).
            observe: Observed values by observation name.
            seed: Seed (``None``: a fresh one, recorded in the result).
            model_args: Arguments of ``model.forward``.

        Returns:
            An ``Empirical`` (:class:`rotalumis.data.Empirical`) whose ``info`` says how it
            was made.
        """
        ...


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

    #: Limits of each execution of this model (``None``: the defaults, see
    #: :mod:`rotalumis.core.limits`); engine options and ``limit_traces`` take precedence.
    trace_limits: TraceLimits | None = None

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

    def _new_execution(self, rng: RNG) -> tuple[Execution, TraceLimits]:
        limits = limits_for(self)
        execution = Execution(rng, self.entry_code, self.name, limits.max_choices)
        return execution, limits

    def execute(self, rng: RNG, *args: Any, **kwargs: Any) -> Any:
        """Run :meth:`forward` once as a fresh execution drawing from ``rng``.

        An execution that intercepted a simulator (see :mod:`rotalumis.intercept`) is
        followed, the first time only, by the escape check of :meth:`check_escapes`.
        An exception raised by ``forward`` propagates unchanged (one execution: the caller
        knows which), with a note naming the model and the seed of ``rng`` (Python 3.11+).

        Raises:
            TraceLimitError: if the execution exceeds its limits per trace.
        """
        execution, limits = self._new_execution(rng)
        token = enter_execution(execution)
        try:
            with watch_time(execution, limits.max_seconds):
                execution.serial = 1
                try:
                    result = self.forward(*args, **kwargs)
                except Exception as exc:
                    if hasattr(exc, "add_note"):
                        exc.add_note(
                            f"rotalumis: in an execution of model {self.name!r} drawing from "
                            f"the random stream with seed {rng.seed}"
                        )
                    raise
                finally:
                    execution.serial = 2
        finally:
            exit_execution(token)
            release_holds(execution)
        if execution.check_escapes:
            self._escape_check(execution, args, kwargs)
        return result

    @contextlib.contextmanager
    def executions(
        self, rng: RNG, where: Callable[[int], str] | None = None, own_errors: bool = False
    ) -> Iterator[Callable[..., Any]]:
        """Many executions in a row drawing from ``rng`` (what engines use).

        Yields a function that runs :meth:`forward` once as a fresh execution; the
        execution state is set up once for the whole block, which keeps the per-execution
        cost down on the hot path. The limits per trace (:mod:`.limits`) in force when the
        block starts apply to each execution.

        Args:
            rng: The random stream of the executions.
            where: ``where(k)`` says which trace execution ``k`` of the block is and how to
                reproduce it (e.g. ``"trace 70 of the run with seed 3"``); an exception
                raised by ``forward`` is raised again with it (see
                :func:`~.errors.execution_error`). Default: execution ``k`` of the stream
                with ``rng``'s seed when the block started (or the seed and index it was
                spawned from).
            own_errors: Raise what ``forward`` raised unchanged instead, with that text
                as a note (Python 3.11+): for a single execution, whose caller knows which.
        """
        execution, limits = self._new_execution(rng)
        counters, sites = execution.counters, execution.sites
        forward = self.forward
        if rng.parent is None:
            stream = f"the random stream with seed {rng.seed}"
        else:
            stream = f"random stream {rng.parent[1]!r} spawned from seed {rng.parent[0]}"

        def run(*args: Any, **kwargs: Any) -> Any:
            counters.clear()
            if sites:
                sites.clear()  # it holds frames of the last execution
            execution.choices = 0
            execution.deferred = None  # draws of the last execution, counted there
            execution.serial += 1  # odd: running (what the time limit watches)
            try:
                result = forward(*args, **kwargs)
            except Exception as exc:
                k = execution.serial // 2
                text = where(k) if where is not None else f"execution {k} of {stream}"
                if own_errors:
                    if hasattr(exc, "add_note"):
                        exc.add_note(f"rotalumis: in model {self.name!r}, {text}")
                    raise
                error = _failure(self, exc, text)
                if error is exc:
                    raise
                raise error from exc
            finally:
                execution.serial += 1
            if execution.check_escapes:
                self._escape_check(execution, args, kwargs)
            return result

        token = enter_execution(execution)
        try:
            with watch_time(execution, limits.max_seconds):
                yield run
        finally:
            try:
                # a block left open is closed by the collector: maybe during another
                # execution, which stays current, or in another thread (another context)
                if current_execution() is execution:
                    exit_execution(token)
            except ValueError:  # the token belongs to another context
                pass
            finally:
                release_holds(execution)  # e.g. interception's patches (Execution.holds)

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
        # one execution: the model's own exception, with a note naming the seed
        loop = simulate(
            self,
            1,
            RNG(seed),
            handlers=(ConditionHandler(observe or {}),),
            model_args=model_args,
            own_errors=True,
        )
        with contextlib.closing(loop):
            return next(loop)

    def traces(
        self,
        num_traces: int,
        seed: int | None = None,
        *,
        handlers: Sequence[Handler] = (),
        model_args: tuple[Any, ...] = (),
    ) -> Generator[Trace, None, None]:
        """Run the model ``num_traces`` times from ``seed`` under ``handlers``; yield traces.

        The simulation loop every engine uses (see :func:`rotalumis.core.simulate.simulate`,
        which also takes a random stream and a description of each execution for errors).
        The handlers stay installed while the iterator is suspended: consume it or close it.

        Example:
            >>> from rotalumis.core import Normal, sample
            >>> @model
            ... def gauss():
            ...     return sample(Normal(0.0, 1.0), name="x")
            >>> [len(t) for t in gauss.traces(2, seed=0)]
            [1, 1]
        """
        return simulate(self, num_traces, RNG(seed), handlers=handlers, model_args=model_args)

    def prior(
        self,
        num_traces: int,
        seed: int | None = None,
        observe: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Draw ``num_traces`` executions from the prior (the ``"prior"`` engine).

        ``observe`` is allowed (observations then take the given values) but does not
        weight. ``options`` as for :meth:`posterior`.

        Returns:
            An ``Empirical`` of results (with named latents), equally weighted.
        """
        return self.posterior(num_traces, engine="prior", observe=observe, seed=seed, **options)

    def posterior(
        self,
        num_traces: int,
        engine: str | Engine = "is",
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> Any:
        """Approximate the posterior given ``observe`` with an engine.

        ``model.posterior(n, engine="rmh", burn_in=500)`` is sugar for
        ``rotalumis.infer.engines.rmh(burn_in=500).run(model, num_traces=n)``; an engine
        object (e.g. ``MCMC(MHKernel(random_walk=True), burn_in=500)``) can be given
        directly, with no options.

        Args:
            num_traces: Traces (importance sampling) or kept samples per chain (MCMC).
            engine: An engine name (``"is"``, ``"lmh"``, ``"rmh"``, ``"pmmh"``, ``"ic"``,
                ``"prior"``, or one registered with
                :func:`~rotalumis.core.engines.register_engine`) or an engine object.
            observe: Observed values by observation name.
            seed: Seed for reproducible results.
            **options: The named engine's options (e.g. ``burn_in``, ``thin``,
                ``num_chains``), ``model_args`` (arguments of ``forward``), and the limits
                per trace ``max_choices`` / ``max_seconds`` (``None``: no limit; see
                :mod:`rotalumis.core.limits`).

        Returns:
            An ``Empirical`` (weighted for importance sampling), with ``info`` saying how it
            was made.

        Raises:
            ValueError: for an unknown engine name.
            TypeError: for an option the engine does not take (the message names the
                engine and lists its options).
        """
        model_args = tuple(options.pop("model_args", ()))
        limits = {k: options.pop(k) for k in LIMIT_OPTIONS if k in options}
        if isinstance(engine, str):
            runner = create_engine(engine, options)
            if not isinstance(runner, Engine):
                raise TypeError(f"engine {engine!r}: its factory made {runner!r}, not an engine")
        elif options:
            raise TypeError(
                f"options {', '.join(sorted(options))} given with an engine object: pass "
                "them to the engine's constructor"
            )
        else:
            runner = engine
        with limit_traces(**limits) if limits else contextlib.nullcontext():
            return runner.run(
                self, num_traces=num_traces, observe=observe, seed=seed, model_args=model_args
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _failure(model: Model, exc: Exception, where: str) -> Exception:
    """What to raise for an exception of an execution (once: an error raised by an inner
    execution already says where it happened)."""
    if isinstance(exc, RotalumisError) and getattr(exc, "where", None) is not None:
        return exc
    error = execution_error(model.name, exc, f"in {where}; rerun with that seed to reproduce it")
    error.where = where  # type: ignore[attr-defined]
    return error


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
