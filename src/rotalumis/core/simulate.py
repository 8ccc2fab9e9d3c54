"""The simulation loop: run a model many times under a set of handlers, yield its traces.

Every place that simulates (importance sampling, dataset writing, online training,
``Model.get_trace``) runs this one loop; executors parallelise it by giving each work unit
its own seeded stream (see :mod:`.executor`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any, Protocol

from .handlers import TraceHandler
from .rng import RNG
from .runtime import Handler
from .trace import Trace


class Executable(Protocol):
    """What the loop needs of a model: :meth:`~rotalumis.core.model.Model.executions`
    (declared here, so that ``model`` can use this module without an import cycle)."""

    def executions(
        self, rng: RNG, where: Callable[[int], str] | None = ..., own_errors: bool = ...
    ) -> AbstractContextManager[Callable[..., Any]]: ...


__all__ = ["Executable", "simulate"]


def simulate(
    model: Executable,
    count: int | None,
    rng: RNG,
    *,
    handlers: Sequence[Handler] = (),
    model_args: tuple[Any, ...] = (),
    where: Callable[[int], str] | None = None,
    before_each: Callable[[], None] | None = None,
    own_errors: bool = False,
    on_error: Callable[[Exception], None] | None = None,
) -> Generator[Trace, None, None]:
    """Run ``model`` ``count`` times in a row, drawing from ``rng``; yield each trace.

    The handlers are installed (outermost first) inside a trace handler, for the whole
    loop: while the generator is suspended between traces they stay installed, so consume
    it to the end or close it (``contextlib.closing``) before running anything else.

    Args:
        model: The model.
        count: Number of executions yielded (``None``: until the generator is closed).
        rng: The random stream of the executions (one after another).
        handlers: Handlers that decide the values of the random choices (condition,
            propose, replay, ...), outermost first.
        model_args: Arguments of ``model.forward``.
        where: ``where(k)`` names execution ``k`` of the loop and its seed, for errors
            (see :meth:`Model.executions`).
        before_each: Called before each execution (a stateful proposal is told that a new
            trace begins).
        own_errors: Raise what the model raised unchanged, with a note (see
            :meth:`Model.executions`).
        on_error: Called with the exception when an execution raises one; if it returns,
            that execution is dropped (not yielded, not counted in ``count``) and the loop
            goes on; to stop, it raises. ``None``: the exception ends the loop.

    Yields:
        The trace of each execution, with its ``result`` set.

    Raises:
        ModelError: when an execution raises (the message says which, per ``where``).
    """
    tracer = TraceHandler()
    with ExitStack() as stack:
        stack.enter_context(tracer)
        for handler in handlers:
            stack.enter_context(handler)
        execute = stack.enter_context(model.executions(rng, where, own_errors))
        done = 0
        while count is None or done < count:
            if before_each is not None:
                before_each()
            trace = tracer.reset()
            if on_error is None:
                trace.result = execute(*model_args)
            else:
                try:
                    trace.result = execute(*model_args)
                except Exception as exc:
                    on_error(exc)  # raises to stop the loop, or drops this execution
                    continue
            done += 1
            yield trace
