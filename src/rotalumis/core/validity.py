"""Invalid simulations: runs that raise or produce NaN/inf, dropped and counted (or fatal).

Simulators fail: a numerical routine returns NaN, a solver diverges, a parameter draw falls
where the code divides by zero. Training an inference network on such a trace would put
NaN into its loss and weights; a dataset holding it would poison every later epoch. The
simulation loops of training and dataset generation therefore check each run:

* it raised an exception (any ``Exception`` except a broken remote connection or a run over
  its limits, which are fatal: :class:`~rotalumis.core.errors.RemoteSimulatorError`,
  :class:`~rotalumis.core.errors.ProtocolError`, :class:`~rotalumis.core.errors.TraceLimitError`);
* a latent or observed value, a log-probability or the (numeric) result is NaN or infinite.

Under :class:`InvalidPolicy` ``"drop"`` (the default) the run is discarded, counted by reason
in a :class:`SimulationCounter`, and the loop runs the simulator again, from the same random
stream, until it has the traces it needs; so the output stays reproducible from the seed.
When more than ``max_fraction`` of the runs so far failed (checked once ``min_runs`` runs
were made, so a few unlucky early failures never stop a run), a :class:`ModelError` reports
the share and the first failure. Under ``"raise"`` the first invalid run is the error.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ModelError, ProtocolError, RemoteSimulatorError, TraceLimitError
from .rng import RNG
from .runtime import Handler
from .simulate import Executable, simulate
from .trace import Trace

__all__ = ["InvalidPolicy", "SimulationCounter", "invalid_reason", "simulate_valid"]

_FATAL = (RemoteSimulatorError, ProtocolError, TraceLimitError)  # never dropped
POLICIES = ("drop", "raise")


@dataclass(frozen=True)
class InvalidPolicy:
    """What to do with a simulation that raised or produced NaN/inf.

    Attributes:
        on_invalid: ``"drop"`` (discard, count, simulate again) or ``"raise"``.
        max_fraction: With ``"drop"``: the largest tolerated share of invalid runs.
        min_runs: Runs made before the share is checked against ``max_fraction``.
    """

    on_invalid: str = "drop"
    max_fraction: float = 0.5
    min_runs: int = 100

    def __post_init__(self) -> None:
        if self.on_invalid not in POLICIES:
            raise ValueError(f"on_invalid must be one of {POLICIES}, got {self.on_invalid!r}")
        if not 0.0 <= self.max_fraction < 1.0:
            raise ValueError(f"max_fraction must be in [0, 1), got {self.max_fraction!r}")
        if self.min_runs < 1:
            raise ValueError(f"min_runs must be positive, got {self.min_runs!r}")


@dataclass
class SimulationCounter:
    """Runs made and runs dropped, by reason (adds up across batches, shards, workers).

    Attributes:
        runs: Simulator runs made (valid and invalid).
        invalid: Runs dropped.
        reasons: Dropped runs by reason (e.g. ``"raised ZeroDivisionError"``).
        first_error: Description of the first invalid run.
    """

    runs: int = 0
    invalid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    @property
    def invalid_fraction(self) -> float:
        """Share of the runs that were dropped (0 when none were made)."""
        return self.invalid / self.runs if self.runs else 0.0

    def add(self, other: SimulationCounter) -> None:
        """Add the counts of ``other`` (e.g. from a worker process)."""
        self.runs += other.runs
        self.invalid += other.invalid
        self.reasons.update(other.reasons)
        if self.first_error is None:
            self.first_error = other.first_error

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "runs": self.runs,
            "invalid": self.invalid,
            "reasons": dict(self.reasons),
            "first_error": self.first_error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulationCounter:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d.get("runs", 0)),
            int(d.get("invalid", 0)),
            Counter({str(k): int(v) for k, v in dict(d.get("reasons", {})).items()}),
            d.get("first_error"),
        )

    def summary(self) -> str:
        """One line: ``"3 of 1,000 simulations invalid (0.3%), dropped: 3 raised ..."``."""
        if not self.invalid:
            return f"0 of {self.runs:,} simulations invalid"
        reasons = ", ".join(f"{n} {r}" for r, n in self.reasons.most_common(3))
        return (
            f"{self.invalid:,} of {self.runs:,} simulations invalid "
            f"({100 * self.invalid_fraction:.2g}%), dropped: {reasons}"
        )


def _finite(x: Any) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, (int, bool)) or x is None:
        return True
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() or bool(torch.isfinite(x).all())
    try:
        import numpy as np

        arr = np.asarray(x)
    except (TypeError, ValueError):
        return True
    if arr.dtype.kind not in "fc":
        return True  # integers, booleans, strings, objects: nothing to check
    return bool(np.isfinite(arr).all())


def _site(v: Any) -> str:
    return f"{v.name!r}" if v.name is not None else v.address


def invalid_reason(trace: Trace) -> str | None:
    """Why ``trace`` is unusable (NaN/inf somewhere), or ``None`` if it is fine.

    Log-probabilities of ``-inf`` (a factor rejecting the run) are allowed; NaN and
    ``+inf`` are not.
    """
    for v in trace.variables:
        if v.kind in ("sample", "observe") and not _finite(v.value):
            return f"NaN/inf value at {_site(v)}"
    for what in ("log_prior", "log_likelihood"):
        lp = float(getattr(trace, what))
        if math.isnan(lp) or lp == math.inf:
            return f"{'NaN' if math.isnan(lp) else '+inf'} {what.replace('_', '-')}"
    if not _finite(trace.result):
        return "NaN/inf result"
    return None


def simulate_valid(
    model: Executable,
    rng: RNG,
    size: int,
    policy: InvalidPolicy,
    counter: SimulationCounter,
    *,
    handlers: Sequence[Handler] = (),
    model_args: tuple[Any, ...] = (),
    where: Callable[[int], str] | None = None,
    on_trace: Callable[[int], None] | None = None,
) -> list[Trace]:
    """Run ``model`` (drawing from ``rng``) until ``size`` valid traces are recorded.

    The runs go through the one simulation loop (:func:`~.simulate.simulate`); a run that
    raises, or whose trace holds NaN/inf (:func:`invalid_reason`), is dropped and counted
    per ``policy``, and the loop draws on.

    Args:
        model: The model (anything with ``executions``).
        rng: The random stream of the runs (one after another).
        size: Valid traces wanted.
        policy: What to do with invalid runs.
        counter: Updated with every run and every dropped one.
        handlers: Handlers installed around the runs (see :func:`~.simulate.simulate`).
        model_args: Arguments of ``model.forward``.
        where: Names run ``k`` in errors (see :meth:`~.model.Model.executions`).
        on_trace: Called with the number of valid traces so far, after each.

    Raises:
        ModelError: under ``"raise"`` at the first invalid run; under ``"drop"`` when the
            share of invalid runs exceeds ``policy.max_fraction``.
    """
    traces: list[Trace] = []
    if size <= 0:
        return traces

    def dropped(reason: str, error: str, cause: BaseException | None) -> None:
        counter.invalid += 1
        counter.reasons[reason] += 1
        if counter.first_error is None:
            counter.first_error = error
        if policy.on_invalid == "raise":
            raise ModelError(
                f"simulation {counter.runs} is invalid ({error}); use on_invalid='drop' to "
                "drop and count such runs"
            ) from cause
        if counter.runs >= policy.min_runs and counter.invalid_fraction > policy.max_fraction:
            raise ModelError(
                f"{counter.summary()}: more than the tolerated "
                f"{100 * policy.max_fraction:.3g}%; first: {counter.first_error}"
            ) from cause

    def raised(exc: Exception) -> None:
        if isinstance(exc, _FATAL):
            raise exc
        # the simulator's own failure: its type names it
        cause: BaseException = exc
        if isinstance(exc, ModelError) and isinstance(exc.__cause__, Exception):
            cause = exc.__cause__  # the execution's wrapper (it says which run)
        error = str(exc) if cause is not exc else f"{type(exc).__name__}: {exc}"
        dropped(f"raised {type(cause).__name__}", error, cause)

    def one_more_run() -> None:
        counter.runs += 1

    loop = simulate(
        model,
        None,
        rng,
        handlers=handlers,
        model_args=model_args,
        where=where,
        before_each=one_more_run,
        on_error=raised,
    )
    with contextlib.closing(loop):
        for trace in loop:
            found = invalid_reason(trace)
            if found is not None:
                dropped(found, found, None)
                continue
            traces.append(trace)
            if on_trace is not None:
                on_trace(len(traces))
            if len(traces) >= size:
                break
    return traces
