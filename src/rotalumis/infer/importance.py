"""Prior sampling and importance sampling (the prior or a learned proposal as proposal).

:class:`Prior` and :class:`ImportanceSampling` are the engine objects; :func:`sample_traces`
is the loop they share (chunks of traces with their own random streams, run here or in
worker processes). :func:`proposal_log_density` scores a recorded trace under a proposal.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rotalumis.core import (
    RNG,
    ConditionHandler,
    Distribution,
    Handler,
    InferenceError,
    Model,
    ProposeHandler,
)
from rotalumis.core.escapes import values_equal
from rotalumis.core.progress import ProgressBar
from rotalumis.core.proposal import Proposal, ProposalFunction, ProposalStats, as_proposal
from rotalumis.core.rng import derive_seed
from rotalumis.core.simulate import simulate
from rotalumis.data import Empirical, EmpiricalBuilder, RunInfo
from rotalumis.distributed import open_executor

from ._common import ObservationChecker, check_num_traces

__all__ = ["ImportanceSampling", "Prior", "proposal_log_density", "sample_traces"]


CHUNK = 64  # traces per random stream: execution i draws from stream i // CHUNK
TASKS_PER_WORKER = 4  # contiguous runs of chunks handed to each worker (load balance)


def sample_traces(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    proposal: Proposal | ProposalFunction | None = None,
    weighted: bool = True,
    keep_traces: bool = False,
    progress: bool | None = None,
    model_args: tuple[Any, ...] = (),
    description: str = "sampling",
    engine_name: str = "is",
    extra_handlers: tuple[Handler, ...] = (),
    workers: int = 0,
    cluster: Any = None,
    options: Mapping[str, Any] | None = None,
) -> Empirical:
    """Run ``model`` ``num_traces`` times independently and collect the results.

    Each execution draws its latents from ``proposal`` (or the prior; a
    :class:`~rotalumis.core.proposal.Proposal` is told when each execution starts), is
    conditioned on
    ``observe``, and gets the log importance weight ``log p(x, y) - log q(x)`` (or 0 when
    ``weighted`` is false). Executions ``k * CHUNK .. (k + 1) * CHUNK - 1`` draw from the
    stream ``derive_seed(seed, "chunk", k)``, so with ``workers`` processes, each running
    whole chunks, the result is the same as in this process.

    Args:
        workers: Worker processes (``0``: run here). Forked: the model and proposal need no
            pickling. A proposal that keeps :attr:`~rotalumis.core.proposal.Proposal.stats`
            (the inference network's) gets its workers' counts added up.
        cluster: Run the chunks on a Dask cluster instead (a ``Client``, a scheduler
            address, ``"local"`` / ``"local:N"``, or a
            :class:`~rotalumis.distributed.DaskExecutor`); the same result.
        engine_name: The engine recorded in ``result.info``.
        options: The engine options recorded in ``result.info``.

    Returns:
        An ``Empirical`` of results, with the named latents of every trace; its ``info``
        records the engine, the options, the root seed and the proposal's statistics.

    Raises:
        ObservationError: for an observation name the model never observes.
        InferenceError: when every weight is zero (the data are impossible under all traces).
        ModelError: when an execution raises (the message names the trace and the run's
            seed; rotalumis errors raised inside the model keep their type).
    """
    check_num_traces(num_traces)
    root = RNG(seed).seed  # a fresh seed when None, recorded
    proposal = None if proposal is None else as_proposal(proposal)
    stats = None if proposal is None else proposal.stats
    if stats is not None:
        stats.reset()  # the counts of this run
    run = _Sampler(
        model, observe, proposal, weighted, keep_traces, model_args, extra_handlers, root
    )
    with (
        open_executor(model, workers, cluster) as executor,
        ProgressBar(num_traces, description, progress, show_rate=True, every_step=True) as bar,
    ):
        if executor is None:
            empirical = run(0, num_traces, bar)
        else:
            # contiguous runs of whole chunks, as many as keep the workers evenly busy; how
            # the chunks are grouped does not change what they draw
            chunks = -(-num_traces // CHUNK)
            tasks = min(chunks, executor.parallelism * TASKS_PER_WORKER)
            bounds = [CHUNK * (chunks * t // tasks) for t in range(tasks + 1)]
            done = 0

            # threads share this process: each unit gets its own copy of a (stateful)
            # proposal, as a worker process would
            private = executor.shares_memory and proposal is not None

            def piece(t: int) -> Any:
                sampler = run.with_own_proposal() if private else run
                return sampler.in_worker(bounds[t], min(num_traces, bounds[t + 1]))

            def describe(t: int) -> str:
                stop, first = min(num_traces, bounds[t + 1]), bounds[t] // CHUNK
                return (
                    f"work unit {t} of {tasks}: traces {bounds[t]}..{stop - 1} of the run "
                    f"with seed {root}, chunks {first}..{(stop - 1) // CHUNK}, the first "
                    f"drawing from the stream with seed {derive_seed(root, 'chunk', first)}"
                )

            def arrived(k: int, out: Any) -> None:
                nonlocal done
                done += len(out[0])
                bar.update(done)

            parts = executor.map(piece, tasks, describe, arrived)
            empirical = Empirical.combine([emp for emp, _ in parts])
            if proposal is not None and stats is not None:
                proposal.stats = stats
                for _, counts in parts:
                    if counts is not None:
                        stats.add(counts)
    empirical.info = RunInfo(
        engine_name,
        dict(options or {}),
        root,
        proposal=None if stats is None else replace(stats, unseen=set(stats.unseen)),
    )
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

    def with_own_proposal(self) -> _Sampler:
        """This sampler with a deep copy of the proposal (for a unit in a thread)."""
        twin = copy.copy(self)
        twin.proposal = copy.deepcopy(self.proposal)
        return twin

    def in_worker(self, start: int, stop: int) -> tuple[Empirical, ProposalStats | None]:
        """Run a chunk in a worker; also return the proposal's counts for this chunk."""
        proposal = self.proposal
        if proposal is None or proposal.stats is None:
            return self(start, stop, None), None
        # this chunk's counts in an object of their own (added up by the caller), which
        # leaves the run's total alone wherever the chunk runs
        proposal.stats = stats = ProposalStats()
        return self(start, stop, None), stats

    def __call__(self, start: int, stop: int, bar: ProgressBar | None) -> Empirical:
        assert start % CHUNK == 0, "runs start at a chunk boundary"
        model, root, keep_traces, weighted = (
            self.model,
            self.root_seed,
            self.keep_traces,
            self.weighted,
        )
        checker = ObservationChecker(model, self.observe)
        builder = EmpiricalBuilder(name=model.name)
        append = builder.append
        handlers: list[Handler] = []
        if self.observe:  # an empty condition handler would only cost a call per site
            handlers.append(ConditionHandler(self.observe))
        if self.proposal is not None:
            handlers.append(ProposeHandler(self.proposal))
        handlers.extend(self.extra_handlers)
        # A stateful proposal (e.g. the inference-compilation network's LSTM) is told where
        # one execution ends and the next begins.
        begin_trace = None if self.proposal is None else self.proposal.begin_trace
        for first in range(start, stop, CHUNK):  # start is a chunk boundary

            def where(k: int, first: int = first) -> str:
                return f"trace {first + k} of the run with seed {root}"

            loop = simulate(
                model,
                min(first + CHUNK, stop) - first,
                RNG(derive_seed(root, "chunk", first // CHUNK)),
                handlers=handlers,
                model_args=self.model_args,
                where=where,
                before_each=begin_trace,
            )
            with contextlib.closing(loop):  # the handlers go when a check raises
                for i, trace in enumerate(loop, first):
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


class ImportanceSampling:
    """Importance sampling: the ``"is"`` engine (the prior as proposal by default:
    likelihood weighting).

    Args:
        proposal: A :class:`~rotalumis.core.proposal.Proposal` (or a plain function
            ``Message -> Distribution | None``) to draw controlled choices from instead of
            their prior; ``None``: the prior.
        keep_traces: Keep full traces in the result.
        progress: Show a progress bar (default: when on a terminal).
        workers: Worker processes (``0``: run here); the result is the same for any number.
        cluster: Run on a Dask cluster instead (a ``dask.distributed.Client``, a scheduler
            address, or ``"local"``/``"local:N"``; see
            :func:`rotalumis.distributed.open_executor`); the same result.

    Example:
        >>> from rotalumis.infer import ImportanceSampling
        >>> posterior = ImportanceSampling(workers=4).run(
        ...     model, num_traces=10_000, observe={"y": 1.0}, seed=0)  # doctest: +SKIP
    """

    name = "is"
    _description = "importance sampling"
    _weighted = True

    def __init__(
        self,
        proposal: Proposal | ProposalFunction | None = None,
        *,
        keep_traces: bool = False,
        progress: bool | None = None,
        workers: int = 0,
        cluster: Any = None,
    ) -> None:
        self.proposal = None if proposal is None else as_proposal(proposal)
        self.keep_traces, self.progress, self.workers = keep_traces, progress, workers
        self.cluster = cluster

    def run(
        self,
        model: Model,
        *,
        num_traces: int,
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> Empirical:
        """Draw ``num_traces`` weighted executions of ``model`` given ``observe``.

        Args:
            model: The model.
            num_traces: Importance samples.
            observe: Observed values by name.
            seed: Seed (``None``: a fresh one, recorded in ``result.info.seed``).
            model_args: Arguments for ``model.forward``.

        Returns:
            A weighted ``Empirical``, log weights ``log p(x, y) - log q(x)`` (equally
            weighted for :class:`Prior`).

        Raises:
            ObservationError: for an observation name the model never observes.
            InferenceError: when every weight is zero.
            ModelError: when an execution raises (naming the trace and the seed).
        """
        return sample_traces(
            model, num_traces, observe=observe, seed=seed, proposal=self.proposal,
            weighted=self._weighted, keep_traces=self.keep_traces, progress=self.progress,
            model_args=model_args,
            description=self._description, engine_name=self.name, workers=self.workers,
            cluster=self.cluster,
            options=self._options(),
        )  # fmt: skip

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"workers": self.workers}
        if self.proposal is not None:
            options["proposal"] = repr(self.proposal)
        return options

    def __repr__(self) -> str:
        return f"{type(self).__name__}(proposal={self.proposal!r}, workers={self.workers})"


class Prior(ImportanceSampling):
    """Draws from the prior (equal weights): the ``"prior"`` engine.

    ``observe`` is allowed in :meth:`run` (observations then take the given values) but
    does not weight.

    Args:
        keep_traces: Keep full traces in the result.
        progress: Show a progress bar (default: when on a terminal).
        workers: Worker processes (``0``: run here); the result is the same for any number.
        cluster: Run on a Dask cluster instead (see :class:`ImportanceSampling`).
    """

    name = "prior"
    _description = "prior"
    _weighted = False

    def __init__(
        self,
        *,
        keep_traces: bool = False,
        progress: bool | None = None,
        workers: int = 0,
        cluster: Any = None,
    ) -> None:
        super().__init__(
            None, keep_traces=keep_traces, progress=progress, workers=workers, cluster=cluster
        )

    def __repr__(self) -> str:
        return f"Prior(workers={self.workers})"


class _Recorded(Distribution):
    """Draws a recorded value; scores it with ``q``."""

    __slots__ = ("q", "value")

    def __init__(self, q: Distribution, value: Any) -> None:
        self.q, self.value = q, value

    def sample(self, rng: RNG) -> Any:
        return self.value

    def log_prob_sum(self, value: Any) -> Any:
        return self.q.log_prob_sum(value)


class _Replayed(Proposal):
    """``proposal`` stepped through a recorded trace's values (see
    :func:`proposal_log_density`)."""

    stats = None

    def __init__(self, proposal: Proposal, values: Mapping[str, Any]) -> None:
        self.proposal, self.values = proposal, values

    def begin_trace(self) -> None:
        self.proposal.begin_trace()

    def __call__(self, msg: Any) -> Distribution | None:
        if msg.address not in self.values:
            raise InferenceError(f"the recorded trace has no choice at {msg.address!r}")
        q = self.proposal(msg)
        q = msg.distribution if q is None else q
        return None if q is None else _Recorded(q, self.values[msg.address])


def proposal_log_density(
    model: Model,
    trace: Any,
    proposal: Proposal | ProposalFunction,
    *,
    observe: Mapping[str, Any] | None = None,
    model_args: tuple[Any, ...] = (),
) -> float:
    """``log q(x | y)`` of a recorded trace ``x`` under ``proposal``, as importance sampling
    with that proposal would have recorded it: ``log p(x, y) - log w``.

    The model runs once more with every controlled choice set to its recorded value and
    scored by the proposal's density at it (its prior's where the proposal leaves the
    choice to the prior, the part that cancels in the weight). A stateful proposal (an
    inference network's LSTM) is stepped through the trace's choices in order, as when it
    drew them. Uses: checking that a proposal's weights are its density; weighting traces
    drawn by one proposal for another (multiple importance sampling).

    Args:
        model: The model that recorded ``trace``.
        trace: A :class:`~rotalumis.core.Trace` (e.g. from ``keep_traces=True``).
        proposal: A :class:`~rotalumis.core.proposal.Proposal` or a plain function (e.g.
            a :class:`~rotalumis.nn.NetworkProposal`).
        observe: The observations ``trace`` was conditioned on.
        model_args: Arguments for ``model.forward``.

    Raises:
        InferenceError: if the run does not reproduce the trace (a choice the engine
            leaves uncontrolled, or an address the trace lacks).
    """
    values = {v.address: v.value for v in trace.variables if v.kind == "sample"}
    replayed = _Replayed(as_proposal(proposal), values)
    again = sample_traces(
        model, 1, observe=observe, seed=0, proposal=replayed, keep_traces=True,
        progress=False, model_args=model_args,
    )  # fmt: skip
    assert again.traces is not None
    new = again.traces[0]
    if [v.address for v in new.variables] != [v.address for v in trace.variables] or any(
        a.value is not b.value and not values_equal(a.value, b.value)
        for a, b in zip(new.variables, trace.variables, strict=True)
    ):
        raise InferenceError(
            "proposal_log_density: the replayed run differs from the trace (a choice "
            "outside the proposal's control drew a new value?)"
        )
    return float(new.log_prob) - float(again.log_weights[0])
