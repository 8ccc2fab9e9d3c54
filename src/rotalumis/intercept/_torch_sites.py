"""Building blocks of the torch specs (:mod:`._torch_specs`): size arguments, the
site's distribution broadcast to the draw's shape, and the tensor torch would return."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

from rotalumis.core import Distribution

__all__ = [
    "STRIDED",
    "Maker",
    "Site",
    "distribution",
    "filled",
    "float_dtype",
    "make_site",
    "out_tensor",
    "shape_of",
]

Site = tuple[Distribution, Callable[[Any], Any], tuple[int, ...]]
Maker = Callable[..., Distribution]

STRIDED = (None, torch.strided)
_F64 = torch.float64


def shape_of(size: tuple[Any, ...]) -> tuple[int, ...] | None:
    """torch's size arguments: integers, or one sequence of integers."""
    if len(size) == 1 and type(size[0]) is not int:
        if not isinstance(size[0], (tuple, list, torch.Size)):
            return None
        size = tuple(size[0])
    try:
        return tuple(map(operator.index, size))
    except TypeError:
        return None


def _param(x: Any, shape: tuple[int, ...]) -> Any:
    """A parameter as the site's distribution wants it: a float for one element, else a
    float64 CPU tensor of ``shape`` (a copy, detached from the simulator's graph)."""
    t = type(x)
    if t is not float and t is not int and isinstance(x, torch.Tensor):
        if not shape and x.numel() == 1:
            return float(x)
        return x.detach().to("cpu", _F64).expand(shape).clone()
    x = float(x)
    return x if not shape else torch.full(shape, x, dtype=_F64)


def out_tensor(value: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> torch.Tensor:
    """The engine's value as the tensor torch would have returned (always a fresh tensor:
    the trace keeps its own value even if the simulator changes the result in place)."""
    t = type(value)
    if t is float or t is int:  # a scalar site: the common, fast case
        if shape:
            return torch.full(shape, value, dtype=dtype, device=device)
        return torch.scalar_tensor(value, dtype=dtype, device=device)
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=dtype, copy=True).reshape(shape)
    return torch.tensor(value, dtype=dtype, device=device).reshape(shape)


_CONSTANT: dict[tuple[Any, ...], Distribution] = {}


def distribution(make: Maker, params: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """``make(*params)`` broadcast to ``shape``: scalar for one element; ``None`` for none.

    Scalar distributions with plain-float parameters (``torch.randn(())``'s ``Normal(0, 1)``)
    are built once.
    """
    numel = 1
    for n in shape:
        numel *= n
    if numel == 1:
        constant = all(type(p) is float for p in params)
        if constant:
            key = (make, *params)
            dist = _CONSTANT.get(key)
            if dist is not None:
                return dist
        dist = make(*[_param(p, ()) for p in params])
        if constant and len(_CONSTANT) < 256:
            _CONSTANT[key] = dist
        return dist
    if numel == 0:
        return None
    return make(*[_param(p, shape) for p in params])


def make_site(
    make: Maker,
    params: tuple[Any, ...],
    shape: tuple[int, ...],
    dtype: Any,
    device: Any,
    requires_grad: bool = False,
) -> Site | None:
    """One site drawing a tensor of ``shape`` from ``make(*params)`` (broadcast)."""
    dist = distribution(make, params, shape)
    if dist is None:
        return None

    def convert(value: Any) -> torch.Tensor:
        out = out_tensor(value, shape, dtype, device)
        return out.requires_grad_() if requires_grad else out

    return dist, convert, shape


def filled(make: Maker, params: tuple[Any, ...], tensor: torch.Tensor) -> Site | None:
    """One site for an in-place draw into ``tensor``: the value is copied into it."""
    if tensor.layout is not torch.strided:
        return None
    shape = tuple(tensor.shape)
    dist = distribution(make, params, shape)
    if dist is None:
        return None

    def fill(value: Any) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return tensor.copy_(value.reshape(shape))
        return tensor.fill_(value)

    return dist, fill, shape


def float_dtype(dtype: Any) -> Any:
    dt = torch.get_default_dtype() if dtype is None else dtype
    return dt if dt.is_floating_point else None
