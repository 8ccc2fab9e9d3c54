"""Reading the RNG outside a model run changes no execution state (issue 11, defect 6)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rotalumis.core import Normal, TraceHandler, current_execution, current_rng, model, sample


@model
def one_draw() -> float:
    return sample(Normal(0.0, 1.0))


def _addresses() -> list[str]:
    with TraceHandler() as tracer:
        one_draw()  # a model called directly, under a handler
    return [site.address for site in tracer.trace.variables]


def _in_fresh_context(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new thread: it starts with an empty context (no execution, no RNG)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_current_rng_outside_a_model_installs_no_execution() -> None:
    def body() -> tuple[object, object, bool]:
        rng = current_rng()
        return current_execution(), current_execution() is None, current_rng() is rng

    execution, none_after, same_rng = _in_fresh_context(body)
    assert execution is None and none_after
    assert same_rng  # one unseeded stream per context, not a new one per read


def test_stray_sample_does_not_shift_the_next_model_run() -> None:
    def body() -> tuple[list[str], list[str], list[str]]:
        first = _addresses()
        sample(Normal(0.0, 1.0))  # a stray draw outside any model
        return first, _addresses(), _addresses()

    first, second, third = _in_fresh_context(body)
    assert first == second == third
    assert first[0].endswith("__Normal__1")
