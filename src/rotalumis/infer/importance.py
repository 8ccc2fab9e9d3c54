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
from rotalumis.core.parallel import check_parallel, map_in_workers
from rotalumis.core.rng import derive_seed
from rotalumis.data import Empirical, EmpiricalBuilder

from ._common import ObservationChecker, check_num_traces
from ._progress import ProgressBar

__all__ = ["importance_sampling", "prior_sampling", "sample_traces"]


CHUNK = 64  # traces per random stream: execution i draws from stream i // CHUNK
TASKS_PER_WORKER = 4  # contiguous runs of chunks handed to each worker (load balance)


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
    workers: int = 0,
) -> Any:
    """Run ``model`` ``num_traces`` times independently and collect the results.

    Each execution draws its latents from ``proposal`` (or the prior; a proposal object with
    a ``begin_trace()`` method is told when each execution starts), is conditioned on
    ``observe``, and gets the log importance weight ``log p(x, y) - log q(x)`` (or 0 when
    ``weighted`` is false). Executions ``k * CHUNK .. (k + 1) * CHUNK - 1`` draw from the
    stream ``derive_seed(seed, "chunk", k)``, so with ``workers`` processes, each running
    whole chunks, the result is the same as in this process.

    Args:
        workers: Worker processes (``0``: run here). Forked: the model and proposal need no
            pickling. A proposal with ``counters()`` / ``reset_counters()`` / ``absorb()``
            (the inference network's) gets its workers' counts added up.

    Returns:
        An ``Empirical`` of results, with the named latents of every trace.

    Raises:
        ObservationError: for an observation name the model never observes.
        InferenceError: when every weight is zero (the data are impossible under all traces).
        ModelError: when an execution raises (the message names the trace and the run's
            seed; rotalumis errors raised inside the model keep their type).
    """
    check_num_traces(num_traces)
    check_parallel(model, workers)
    root = RNG(seed).seed  # a fresh seed when None, recorded
    run = _Sampler(
        model, observe, proposal, weighted, keep_traces, model_args, extra_handlers, root
    )
    with ProgressBar(num_traces, description, progress) as bar:
        if workers == 0:
            empirical = run(0, num_traces, bar)
        else:
            # contiguous runs of whole chunks, as many as keep the workers evenly busy; how
            # the chunks are grouped does not change what they draw
            chunks = -(-num_traces // CHUNK)
            tasks = min(chunks, workers * TASKS_PER_WORKER)
            bounds = [CHUNK * (chunks * t // tasks) for t in range(tasks + 1)]
            done = 0

            def piece(t: int) -> Any:
                return run.in_worker(bounds[t], min(num_traces, bounds[t + 1]))

            def arrived(k: int, out: Any) -> None:
                nonlocal done
                done += len(out[0])
                bar.update(done)

            parts = map_in_workers(piece, tasks, workers, arrived)
            empirical = Empirical.combine([emp for emp, _ in parts])
            absorb = getattr(proposal, "absorb", None)
            if absorb is not None:
                for _, counts in parts:
                    absorb(counts)
    empirical.metadata["engine"] = engine_name
    if weighted and not math.isfinite(float(empirical.log_weights.max())):
        evidence = (
            f"the observations {sorted(observe)}"
            if observe
            else "the model's own observations and factor() calls"
        )
        raise InferenceError(
            f"all {num_traces} importance weights are zero (log weight -inf): "
            f"{evidence} are impossible under every sampled trace of model {model.name!r}"
        )
    return empirical


class _Sampler:
    """Executions ``start .. stop - 1`` of an importance-sampling run, into an Empirical."""

    def __init__(
        self,
        model: Model,
        observe: Mapping[str, Any] | None,
        proposal: Proposal | None,
        weighted: bool,
        keep_traces: bool,
        model_args: tuple[Any, ...],
        extra_handlers: tuple[Handler, ...],
        root_seed: int,
    ) -> None:
        self.model, self.observe, self.proposal = model, observe, proposal
        self.weighted, self.keep_traces, self.model_args = weighted, keep_traces, model_args
        self.extra_handlers, self.root_seed = extra_handlers, root_seed

    def in_worker(self, start: int, stop: int) -> tuple[Any, Any]:
        """Run a chunk in a worker; also return the proposal's counts for this chunk."""
        proposal = self.proposal
        reset = getattr(proposal, "reset_counters", None)
        if reset is not None:
            reset()
        empirical = self(start, stop, None)
        counters = getattr(proposal, "counters", None)
        return empirical, (counters() if counters is not None else None)

    def __call__(self, start: int, stop: int, bar: ProgressBar | None) -> Any:
        assert start % CHUNK == 0, "runs start at a chunk boundary"
        model, root, keep_traces, weighted = (
            self.model,
            self.root_seed,
            self.keep_traces,
            self.weighted,
        )
        rng = RNG(derive_seed(root, "chunk", start // CHUNK))
        tracer = TraceHandler()
        checker = ObservationChecker(model, self.observe)
        builder = EmpiricalBuilder(name=model.name)
        append = builder.append
        model_args = self.model_args
        # A stateful proposal (e.g. the inference-compilation network's LSTM) may want to
        # know where one execution ends and the next begins.
        begin_trace = getattr(self.proposal, "begin_trace", None)
        with ExitStack() as stack:
            stack.enter_context(tracer)
            if self.observe:  # an empty condition handler would only cost a call per site
                stack.enter_context(ConditionHandler(self.observe))
            if self.proposal is not None:
                stack.enter_context(ProposeHandler(self.proposal))
            for h in self.extra_handlers:
                stack.enter_context(h)
            execute = stack.enter_context(
                model.executions(rng, lambda k: f"trace {start + k} of the run with seed {root}")
            )
            for first in range(start, stop, CHUNK):  # start is a chunk boundary
                if first != start:
                    rng.reseed(derive_seed(root, "chunk", first // CHUNK))
                for i in range(first, min(first + CHUNK, stop)):
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
                    if bar is not None:
                        bar.update(i + 1)
        checker.finish()
        return builder.build()


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

    Options: ``keep_traces``, ``progress``, ``model_args``, ``workers`` (see
    :func:`sample_traces`).
    """
    options.setdefault("description", "importance sampling")
    return sample_traces(model, num_traces, observe=observe, seed=seed, weighted=True, **options)
