"""Parameter validation and tensor plumbing shared by the distributions (the slow path).

Constructors check plain-number parameters inline (the fast path) and fall back to these
helpers for anything else; every failure raises :class:`DistributionError` naming the
distribution and the parameter, e.g. ``Gamma: parameter 'rate' must be > 0, got -1.0``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from ..errors import DistributionError
from ..rng import RNG
from .base import Param, Value, as_param

__all__ = [
    "as_tensors",
    "bound",
    "count",
    "fail",
    "nonnegative",
    "positive",
    "scalar_integer",
    "unit_interval",
]

INF = math.inf


def fail(dist: str, name: str, requirement: str, got: object) -> DistributionError:
    """The error for parameter ``name`` of ``dist`` violating ``requirement``."""
    return DistributionError(f"{dist}: parameter '{name}' {requirement}, got {got}")


def _first_bad(t: torch.Tensor, ok: torch.Tensor) -> str:
    bad = t.detach()[~ok]
    return f"{bad.flatten()[0].item()} (in a tensor of shape {tuple(t.shape)})"


def _checked(
    dist: str,
    name: str,
    value: object,
    requirement: str,
    scalar_ok: Callable[[float], bool],
    tensor_ok: Callable[[torch.Tensor], torch.Tensor],
) -> Param:
    p = as_param(dist, name, value)
    if isinstance(p, torch.Tensor):
        ok = tensor_ok(p.detach())
        if not bool(ok.all()):
            raise fail(dist, name, requirement, _first_bad(p, ok))
    elif not scalar_ok(p):
        raise fail(dist, name, requirement, p)
    return p


def positive(dist: str, name: str, value: object) -> Param:
    """A finite parameter that must be strictly positive."""
    return _checked(dist, name, value, "must be > 0", lambda x: x > 0.0, lambda t: t > 0)


def nonnegative(dist: str, name: str, value: object) -> Param:
    """A finite parameter that must be >= 0."""
    return _checked(dist, name, value, "must be >= 0", lambda x: x >= 0.0, lambda t: t >= 0)


def unit_interval(dist: str, name: str, value: object) -> Param:
    """A probability: a finite parameter in ``[0, 1]``."""
    return _checked(
        dist,
        name,
        value,
        "must be in [0, 1]",
        lambda x: 0.0 <= x <= 1.0,
        lambda t: (t >= 0) & (t <= 1),
    )


def count(dist: str, name: str, value: object) -> int | torch.Tensor:
    """A non-negative integer parameter: a Python ``int``, or a tensor of integral values."""
    requirement = "must be a non-negative integer"
    if isinstance(value, numbers.Real) and not isinstance(value, torch.Tensor):
        f = float(value)
        if not (math.isfinite(f) and f >= 0.0 and f.is_integer()):
            raise fail(dist, name, requirement, value)
        return int(f)
    p = _checked(
        dist, name, value, requirement, lambda x: False, lambda t: (t >= 0) & (t == t.floor())
    )
    assert isinstance(p, torch.Tensor)
    return p


def bound(dist: str, name: str, value: object) -> Param:
    """An interval end: like :func:`as_param` but ``±inf`` is allowed (``nan`` is not)."""
    if isinstance(value, numbers.Real) and not isinstance(value, torch.Tensor):
        f = float(value)
        if math.isnan(f):
            raise fail(dist, name, "must not be nan", f)
        return f
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if bool(torch.isnan(t.detach()).any()):
        raise fail(dist, name, "must not be nan", t)
    return t


def scalar_integer(value: object) -> bool:
    """Whether a non-tensor ``value`` is an integral real number (``3``, ``3.0``, ``True``)."""
    if type(value) is int:
        return True
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def _dtype_device(items: tuple[object, ...]) -> tuple[torch.dtype, torch.device | None]:
    dtype: torch.dtype | None = None
    device: torch.device | None = None
    for x in items:
        if isinstance(x, torch.Tensor):
            if device is None or x.device.type != "cpu":
                device = x.device
            if x.is_floating_point():
                dtype = x.dtype if dtype is None else torch.promote_types(dtype, x.dtype)
    return dtype or torch.get_default_dtype(), device


def as_tensors(*items: Value) -> tuple[torch.Tensor, ...]:
    """Parameters and values as floating tensors with one dtype and device (not broadcast).

    The dtype is the promotion of the floating tensors among ``items`` (the default dtype if
    none), the device that of the first non-CPU tensor (else CPU). Integer tensors such as
    count values are converted to that floating dtype.
    """
    dtype, device = _dtype_device(items)
    return tuple(torch.as_tensor(x, dtype=dtype, device=device) for x in items)


def broadcast_shapes(*shapes: tuple[int, ...] | torch.Size) -> torch.Size:
    """:func:`torch.broadcast_shapes`, typed."""
    out: torch.Size = torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call]
    return out


def broadcast_tensors(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """:func:`torch.broadcast_tensors`, typed."""
    return list(torch.broadcast_tensors(*tensors))  # type: ignore[no-untyped-call]


def broadcast_shape(*items: Value) -> torch.Size:
    """The broadcast shape of the tensors among ``items`` (``torch.Size([])`` if none)."""
    shapes = [x.shape for x in items if isinstance(x, torch.Tensor)]
    return broadcast_shapes(*shapes) if shapes else torch.Size()


def is_number(value: object) -> bool:
    """Whether ``value`` is a plain real number (Python or NumPy scalar), not a tensor."""
    return isinstance(value, numbers.Real)


# -- generator-driven tensor draws -------------------------------------------------------------
# The generator of an RNG lives on the CPU: draw there and move the result to the parameters'
# device, so a seed gives the same values whatever the device.


def _to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x if x.device == like.device else x.to(like.device)


def rand(rng: RNG, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Uniforms in ``[0, 1)`` of ``shape`` with the dtype and device of ``like``."""
    return _to(torch.rand(shape, generator=rng.torch, dtype=like.dtype), like)


def randn(rng: RNG, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Standard normals of ``shape`` with the dtype and device of ``like``."""
    return _to(torch.randn(shape, generator=rng.torch, dtype=like.dtype), like)


def std_exponential(rng: RNG, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Standard exponentials of ``shape`` with the dtype and device of ``like``."""
    e = torch.empty(shape, dtype=like.dtype).exponential_(generator=rng.torch)
    return _to(e, like)


def std_gamma(rng: RNG, shape: torch.Size, alpha: torch.Tensor) -> torch.Tensor:
    """``Gamma(alpha, 1)`` draws of ``shape``, differentiable in ``alpha``.

    Gradients are the implicit reparameterization gradients of ``torch._standard_gamma``.
    Draws that underflow to 0 (tiny ``alpha``) are raised to the smallest normal number.
    """
    a = alpha.expand(shape)
    g = torch._standard_gamma(a if a.device.type == "cpu" else a.cpu(), rng.torch)
    return _to(g, alpha).clamp_min(torch.finfo(alpha.dtype).tiny)
