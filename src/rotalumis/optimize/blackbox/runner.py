"""Simulator calls of black-box optimization: seeded by position, counted, budgeted, parallel.

Call number ``k`` of a run (counted from 0 over the whole run) draws its randomness from
``RNG(derive_seed(seed, "call", k))``, whichever process runs it, so a run gives the same
result for any number of workers. The simulator is a rotalumis
:class:`~rotalumis.core.Model` (local, intercepted, or PPX-remote) or any callable; a plain
callable runs under :mod:`rotalumis.intercept`, so its ``random`` and ``numpy.random`` draws
come from that seeded stream too.

A call fails when the simulator raises an exception, returns a value with a NaN or an
infinity, or when the objective of its output is not finite. ``on_error="raise"`` (the
default) stops the run with a :class:`SimulatorCallError` naming the call and its ``psi``;
``on_error="skip"`` counts the call against the budget, records it as failed and leaves it
out of every estimate (each method says what it does with a step whose calls all failed).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rotalumis.core.errors import ModelError
from rotalumis.core.executor import Executor
from rotalumis.core.model import Model
from rotalumis.core.rng import RNG, derive_seed
from rotalumis.core.runtime import Handler, Message
from rotalumis.distributed import check_executor, open_executor
from rotalumis.intercept import InterceptedModel

from ..errors import OptimizationError
from ._common import short

__all__ = ["ON_ERROR", "PASS_AS", "CallBatch", "Objective", "SimulatorCallError", "SimulatorRunner"]

ON_ERROR = ("raise", "skip")
PASS_AS = ("arguments", "sites")

Objective = Callable[[torch.Tensor], torch.Tensor]
"""Maps a batch of simulator outputs, shape ``(n, *output_shape)``, to ``n`` values."""


class SimulatorCallError(OptimizationError):
    """A simulator call failed (raised, or gave a non-finite output or objective).

    Attributes:
        call: The call's position in the run (from 0).
        psi: The parameters it was called with.
    """

    def __init__(self, message: str, call: int, psi: torch.Tensor) -> None:
        super().__init__(message)
        self.call = call
        self.psi = psi


@dataclass(frozen=True)
class _Failure:
    message: str
    always_raise: bool = False  # a mistake in the set-up, not a failure of one call
    exception: BaseException | None = None  # kept only in this process (not pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {"message": self.message, "always_raise": self.always_raise, "exception": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)


@dataclass(frozen=True)
class CallBatch:
    """The calls of one step.

    Attributes:
        psi: Where the simulator was called, shape ``(n, dim)``.
        outputs: Its outputs, shape ``(n, *output_shape)``; rows of failed calls are NaN.
        values: The objective of each output, shape ``(n,)``; NaN for failed calls.
        ok: Which calls succeeded, shape ``(n,)``.
        first_call: Position of the batch's first call in the run.
    """

    psi: torch.Tensor
    outputs: torch.Tensor
    values: torch.Tensor
    ok: torch.Tensor
    first_call: int

    @property
    def num_ok(self) -> int:
        """Number of successful calls."""
        return int(self.ok.sum())

    def mean_value(self) -> float:
        """Mean objective of the successful calls (NaN when none succeeded)."""
        return float(self.values[self.ok].mean()) if self.num_ok else float("nan")


class _SetSites(Handler):
    """Gives named ``sample`` sites the values of the design parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, torch.Tensor] = {}
        self.seen: set[str] = set()

    def process(self, msg: Message) -> None:
        name = msg.name
        if msg.kind == "sample" and name is not None and name in self.values:
            msg.value = self.values[name]
            self.seen.add(name)


def map_calls(
    run_range: Callable[[int, int], list[Any]], count: int, executor: Executor | None
) -> list[Any]:
    """``run_range(0, count)``, split into contiguous pieces run by ``executor``.

    The one place where black-box optimization uses an executor (forked workers or a Dask
    cluster; results by index, so the same for any).
    """
    if executor is None or count < 2:
        return run_range(0, count)
    pieces = min(count, 4 * executor.parallelism)
    edges = [count * p // pieces for p in range(pieces + 1)]

    def describe(p: int) -> str:
        return f"simulator calls {edges[p]}..{edges[p + 1] - 1} of the batch"

    parts = executor.map(lambda p: run_range(edges[p], edges[p + 1]), pieces, describe)
    return [outcome for part in parts for outcome in part]


class SimulatorRunner:
    """Runs the simulator at batches of parameter points for one optimization run.

    Args:
        simulator: A :class:`~rotalumis.core.Model` or a callable.
        objective: See :data:`Objective`.
        names: Parameter names when ``psi0`` was a mapping, else ``None``.
        budget: Most simulator calls the run may make.
        seed: Seed of the run.
        workers: Worker processes (0: run here).
        cluster: A Dask cluster instead (see :func:`rotalumis.distributed.open_executor`).
        on_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        pass_as: ``"arguments"``: ``psi`` goes to the simulator as its one positional
            argument (a 1-D tensor) or, with ``names``, as keyword arguments (0-d tensors);
            ``"sites"``: the simulator's ``sample`` sites with those names take the values
            (how a PPX simulator, whose executions take no arguments, gets its design).
        progress: Called with the number of calls made after each batch.
    """

    def __init__(
        self,
        simulator: Any,
        objective: Objective,
        names: Sequence[str] | None,
        budget: int,
        seed: int,
        workers: int,
        on_error: str,
        pass_as: str,
        progress: Callable[[int], None] | None = None,
        cluster: Any = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if pass_as not in PASS_AS:
            raise ValueError(f"pass_as must be 'arguments' or 'sites', got {pass_as!r}")
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {objective!r}")
        self.model = _as_model(simulator)
        check_executor(self.model, workers, cluster)
        if pass_as == "sites" and names is None:
            raise ValueError(
                "pass_as='sites' sets sample sites by name: give psi0 as a mapping "
                "{site name: initial value}"
            )
        if pass_as == "arguments" and _is_remote(self.model):
            raise ValueError(
                f"model {self.model.name!r} is a PPX simulator, whose executions take no "
                "arguments: use pass_as='sites' (psi0 as {site name: value}) so that its "
                "named sample sites take the design parameters"
            )
        self.objective = objective
        self.names = tuple(names) if names is not None else None
        self.budget = budget
        self.seed = seed
        self.workers = workers
        self.on_error = on_error
        self.pass_as = pass_as
        self.progress = progress
        self.calls = 0
        self.failed = 0
        self.output_shape: tuple[int, ...] | None = None
        self._executor_block = open_executor(self.model, workers, cluster)
        self.executor = self._executor_block.__enter__()  # closed by close()

    def close(self) -> None:
        """Release the executor (and a cluster it started)."""
        self._executor_block.__exit__(None, None, None)

    @property
    def remaining(self) -> int:
        """Calls left in the budget."""
        return self.budget - self.calls

    def run(self, psi: torch.Tensor) -> CallBatch:
        """Call the simulator once at each row of ``psi`` (shape ``(n, dim)``).

        Raises:
            SimulatorCallError: for a failed call under ``on_error="raise"``, an output of
                another shape than earlier ones, or a named site the simulator never samples.
            ValueError: if the batch does not fit in the budget (a method's mistake).
        """
        psi = psi.detach().to(torch.get_default_dtype())
        n = psi.shape[0]
        if n > self.remaining:
            raise ValueError(f"{n} calls do not fit in the {self.remaining} left of the budget")
        first = self.calls
        in_process = self.executor is None

        def run_range(lo: int, hi: int) -> list[Any]:
            return self._run_range(psi, first, lo, hi, in_process)

        outcomes = map_calls(run_range, n, self.executor)
        self.calls += n
        batch = self._collect(psi, first, outcomes)
        if self.progress is not None:
            self.progress(self.calls)
        return batch

    def evaluate(self, outputs: torch.Tensor) -> torch.Tensor:
        """The objective of a batch of outputs, checked to be ``n`` values."""
        values = self.objective(outputs)
        if not isinstance(values, torch.Tensor):
            raise OptimizationError(
                f"the objective must return a tensor of {outputs.shape[0]} values, got "
                f"{type(values).__name__}"
            )
        if values.numel() != outputs.shape[0]:
            raise OptimizationError(
                f"the objective must return one value per output: got shape "
                f"{tuple(values.shape)} for {outputs.shape[0]} outputs of shape "
                f"{tuple(outputs.shape[1:])}"
            )
        return values.reshape(outputs.shape[0])

    # -- one piece of a batch (here or in a worker) ------------------------------------------
    def _run_range(
        self, psi: torch.Tensor, first: int, lo: int, hi: int, in_process: bool
    ) -> list[Any]:
        rng = RNG(0)
        setter = _SetSites() if self.pass_as == "sites" else None
        outcomes: list[Any] = []
        with contextlib.ExitStack() as stack:
            if setter is not None:
                stack.enter_context(setter)
            run = stack.enter_context(self.model.executions(rng))
            for j in range(lo, hi):
                rng.reseed(derive_seed(self.seed, "call", first + j))
                outcomes.append(self._one(run, psi[j], setter, in_process))
        return outcomes

    def _one(
        self, run: Callable[..., Any], psi: torch.Tensor, setter: _SetSites | None, keep: bool
    ) -> Any:
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if setter is not None:
            assert self.names is not None
            setter.values = {n: psi[i].clone() for i, n in enumerate(self.names)}
            setter.seen = set()
        elif self.names is None:
            args = (psi.clone(),)
        else:
            kwargs = {n: psi[i].clone() for i, n in enumerate(self.names)}
        try:
            value = run(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, ModelError) and isinstance(exc.__cause__, Exception):
                exc = exc.__cause__  # the simulator's own error (this call names call and psi)
            return _Failure(f"raised {type(exc).__name__}: {exc}", exception=exc if keep else None)
        if setter is not None and setter.seen != set(setter.values):
            missing = ", ".join(repr(n) for n in setter.values if n not in setter.seen)
            return _Failure(
                f"the simulator sampled no site named {missing} (pass_as='sites' sets "
                "the sample sites of those names)",
                always_raise=True,
            )
        try:
            out = _as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            return _Failure(
                f"returned {type(value).__name__}, not numbers: {exc}", always_raise=True
            )
        if not bool(torch.isfinite(out).all()):
            return _Failure(f"returned a non-finite output ({short(out)})")
        return out

    # -- back here ---------------------------------------------------------------------------
    def _collect(self, psi: torch.Tensor, first: int, outcomes: list[Any]) -> CallBatch:
        n = psi.shape[0]
        ok = torch.ones(n, dtype=torch.bool)
        for j, outcome in enumerate(outcomes):
            if isinstance(outcome, _Failure):
                self._fail(first + j, psi[j], outcome)
                ok[j] = False
            elif self.output_shape is None:
                self.output_shape = tuple(outcome.shape)
            elif tuple(outcome.shape) != self.output_shape:
                raise SimulatorCallError(
                    f"simulator call {first + j} at psi={short(psi[j])} returned an output "
                    f"of shape {tuple(outcome.shape)}; earlier calls returned "
                    f"{self.output_shape}",
                    first + j,
                    psi[j],
                )
        shape = self.output_shape if self.output_shape is not None else (1,)
        outputs = torch.full((n, *shape), float("nan"))
        values = torch.full((n,), float("nan"))
        if bool(ok.any()):
            idx = ok.nonzero().flatten()
            outputs[idx] = torch.stack([outcomes[int(j)] for j in idx])
            with torch.no_grad():
                values[idx] = self.evaluate(outputs[idx]).to(values.dtype)
            for j in idx.tolist():
                if not bool(torch.isfinite(values[j])):
                    message = (
                        f"its output gives the objective {values[j].item()} "
                        f"(output {short(outputs[j])})"
                    )
                    self._fail(first + j, psi[j], _Failure(message))
                    ok[j] = False
        return CallBatch(psi, outputs, values, ok, first)

    def _fail(self, call: int, psi: torch.Tensor, failure: _Failure) -> None:
        if self.on_error == "raise" or failure.always_raise:
            hint = "" if failure.always_raise else " (on_error='skip' leaves such calls out)"
            raise SimulatorCallError(
                f"simulator call {call} at psi={short(psi)}: {failure.message}{hint}", call, psi
            ) from failure.exception
        self.failed += 1


def _as_model(simulator: Any) -> Model:
    if isinstance(simulator, Model):
        return simulator
    if callable(simulator):
        # no escape check: its two extra executions would be simulator calls outside the
        # budget (seeded calls that escape interception show as identical repeated outputs)
        return InterceptedModel(simulator, check_escapes=False)
    raise TypeError(
        f"simulator must be a rotalumis Model or a callable, got {type(simulator).__name__}"
    )


def _is_remote(model: Model) -> bool:
    # A RemoteModel can only exist once its module was imported: no import needed to ask.
    client = sys.modules.get("rotalumis.remote.client")
    return client is not None and isinstance(model, client.RemoteModel)


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        t = torch.from_numpy(np.asarray(value, dtype=np.float64))
    return t.to(torch.get_default_dtype()).reshape(t.shape)
