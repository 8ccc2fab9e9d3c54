"""Prior sampling and importance sampling (the prior or a learned proposal as proposal)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from rotalumis.core import (
    RNG,
    ConditionHandler,
    Handler,
    InferenceError,
    Model,
    ProposeHandler,
    TraceHandler,
)
from rotalumis.core.handlers import Proposal
from rotalumis.data import EmpiricalBuilder

from ._common import ObservationChecker, check_num_traces
from ._progress import ProgressBar

__all__ = ["importance_sampling", "prior_sampling", "sample_traces"]


def sample_traces(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    proposal: Proposal | None = None,
    weighted: bool = True,
    keep_traces: bool = False,
    progress: bool | None = None,
    model_args: tuple[Any, ...] = (),
    description: str = "sampling",
    engine_name: str = "is",
    extra_handlers: tuple[Handler, ...] = (),
) -> Any:
    """Run ``model`` ``num_traces`` times independently and collect the results.

    Each execution draws its latents from ``proposal`` (or the prior; a proposal object with
    a ``begin_trace()`` method is told when each execution starts), is conditioned on
    ``observe``, and gets the log importance weight ``log p(x, y) - log q(x)`` (or 0 when
    ``weighted`` is false).

    Returns:
        An ``Empirical`` of results, with the named latents of every trace.

    Raises:
        ObservationError: for an observation name the model never observes.
        InferenceError: when every weight is zero (the data are impossible under all traces).
    """
    check_num_traces(num_traces)
    rng = RNG(seed)
    tracer = TraceHandler()
    checker = ObservationChecker(model, observe)
    builder = EmpiricalBuilder(name=model.name)
    append = builder.append
    # A stateful proposal (e.g. the inference-compilation network's LSTM) may want to know
    # where one execution ends and the next begins.
    begin_trace = getattr(proposal, "begin_trace", None)
    with ExitStack() as stack:
        stack.enter_context(tracer)
        stack.enter_context(ConditionHandler(observe or {}))
        if proposal is not None:
            stack.enter_context(ProposeHandler(proposal))
        for h in extra_handlers:
            stack.enter_context(h)
        execute = stack.enter_context(model.executions(rng))
        with ProgressBar(num_traces, description, progress) as bar:
            for i in range(num_traces):
                if begin_trace is not None:
                    begin_trace()
                trace = tracer.reset()
                trace.result = execute(*model_args)
                if checker.unseen:
                    checker.check(trace)
                lw = float(trace.log_importance_weight) if weighted else 0.0
                append(
                    trace.result,
                    lw,
                    latents=trace.named_latents,
                    trace=trace if keep_traces else None,
                )
                bar.update(i + 1)
    checker.finish()
    empirical = builder.build()
    empirical.metadata["engine"] = engine_name
    if weighted and observe and not math.isfinite(float(empirical.log_weights.max())):
        raise InferenceError(
            f"all {num_traces} importance weights are zero (log weight -inf): the "
            f"observations {sorted(observe)} are impossible under every sampled trace of "
            f"model {model.name!r}"
        )
    return empirical


def prior_sampling(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    **options: Any,
) -> Any:
    """Draw ``num_traces`` executions from the prior (equal weights).

    ``observe`` is allowed (observations then take the given values) but does not weight.
    """
    options.setdefault("description", "prior")
    options.setdefault("engine_name", "prior")
    return sample_traces(model, num_traces, observe=observe, seed=seed, weighted=False, **options)


def importance_sampling(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    **options: Any,
) -> Any:
    """Importance sampling with the prior as proposal (likelihood weighting).

    Options: ``keep_traces``, ``progress``, ``model_args`` (see :func:`sample_traces`).
    """
    options.setdefault("description", "importance sampling")
    return sample_traces(model, num_traces, observe=observe, seed=seed, weighted=True, **options)
