"""Detect randomness that escapes the engine: run a model twice with one seed, compare.

Every random choice an engine controls comes from the execution's seeded RNG (or from a
proposal or a replay), so two executions of a model from the prior with the same seed must
be identical. When they are not, the simulator draws randomness the engine neither records
nor controls: a C library drawing from a NumPy bit generator (``scipy.stats.sampling``),
torch's C++ kernels (dropout), a generator created before the model ran, a thread. Its
posterior is then silently wrong (frozen noise is over-confident; fresh noise is not
replayed by MCMC).

:func:`probe_escapes` runs the two executions, each in a fresh context (no engine handlers,
nothing of the caller's state), and names the first difference: the structure of the
random choices, a choice's value, an observation, or the result. Models that intercept a
simulator (:mod:`rotalumis.intercept`) are probed once, after their first execution (see
:meth:`rotalumis.core.Model.execute`); the probe costs two executions and does not touch
the engine's random stream.
"""

from __future__ import annotations

import contextvars
import math
from typing import Any

import torch

from .handlers.trace import TraceHandler
from .rng import RNG
from .trace import Trace

__all__ = ["first_difference", "probe_escapes", "values_equal"]

_ATOMS = (bool, int, float, complex, str, bytes, type(None))


def values_equal(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are equal, for the values a simulator returns or records (NaN
    equals NaN; tensors and arrays by shape, dtype and elements); objects of types without a
    value equality (or that cannot say) count as equal: only visible differences count."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, _ATOMS):
        return bool(a == b)
    if isinstance(a, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        x, y = a.detach().cpu(), b.detach().cpu()
        same = x == y
        if x.is_floating_point() or x.is_complex():
            same = same | (torch.isnan(x) & torch.isnan(y))
        return bool(same.all())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "tolist"):  # NumPy
        return bool(a.shape == b.shape) and values_equal(a.tolist(), b.tolist())
    return True


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def first_difference(a: Trace, b: Trace) -> str | None:
    """The first visible difference between two traces of one model, in words, or ``None``."""
    sites_a = [v for v in a.variables if v.kind in ("sample", "observe")]
    sites_b = [v for v in b.variables if v.kind in ("sample", "observe")]
    for i, (x, y) in enumerate(zip(sites_a, sites_b, strict=False)):
        if x.address != y.address:
            return (
                f"the random choices: choice {i + 1} is {x.address!r} in one, "
                f"{y.address!r} in the other"
            )
        if not values_equal(x.value, y.value):
            what = (
                f"observation {x.name!r}" if x.kind == "observe" else f"random choice {x.address!r}"
            )
            return f"{what}: {_show(x.value)} vs {_show(y.value)}"
    if len(sites_a) != len(sites_b):
        return (
            f"the random choices: {len(sites_a)} sites in one execution, "
            f"{len(sites_b)} in the other"
        )
    if not values_equal(a.result, b.result):
        return f"the result: {_show(a.result)} vs {_show(b.result)}"
    return None


def _trace(model: Any, seed: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Trace:
    tracer = TraceHandler()
    with tracer:
        tracer.trace.result = model.execute(RNG(seed), *args, **kwargs)
    return tracer.trace


def probe_escapes(
    model: Any, seed: int, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> str | None:
    """Run ``model`` twice from the prior with ``seed``; return the first difference, if any.

    Each execution runs in a fresh :class:`contextvars.Context`: the caller's handlers,
    execution and interception state are not visible to it, and the caller's RNG is not used.

    Args:
        model: A :class:`~rotalumis.core.Model`.
        seed: The seed of both executions.
        args: Positional arguments of the model.
        kwargs: Keyword arguments of the model.

    Returns:
        The first difference in words (see :func:`first_difference`), or ``None``.
    """
    kw = kwargs or {}
    first = contextvars.Context().run(_trace, model, seed, args, kw)
    second = contextvars.Context().run(_trace, model, seed, args, kw)
    return first_difference(first, second)
