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
    "fill",
    "filled",
    "float_dtype",
    "make_site",
    "memo_key",
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
        if device is None:  # parsing device=None costs torch ~0.4 us
            if shape:
                return torch.full(shape, value, dtype=dtype)
            return torch.scalar_tensor(value, dtype=dtype)
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

    return dist, lambda value: fill(tensor, value, shape), shape


def fill(tensor: torch.Tensor, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """Write the engine's value into ``tensor`` (an in-place draw of ``shape``)."""
    if isinstance(value, torch.Tensor):
        return tensor.copy_(value.reshape(shape))
    return tensor.fill_(value)


_KEYWORD_TYPES = frozenset(
    {int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout}
)


def memo_key(
    args: tuple[Any, ...], kwargs: dict[str, Any], head: tuple[Any, ...]
) -> tuple[Any, ...] | None:
    """The key of a torch call's arguments in its wrapper's site memo: ``(*head, kind,
    *args, *keywords)``, or ``None`` (not memoised).

    A site built from plain numbers, sizes (tuples of integers) and keywords of plain types
    (dtypes, devices, numbers, ...) depends on those values, their types and ``head`` only
    (torch's default dtype for a function; the tensor's dtype and shape for an in-place
    method). Positional numbers must be all ``int`` or all ``float``: ``kind`` says which
    (``None``: no number), since ``1 == 1.0`` and ``torch.randint(0, 5.0, ...)`` is not
    ``torch.randint(0, 5, ...)``; keywords carry their types. The compiled wrappers build
    the same key for calls without keywords (``_accel.c``, ``torch_vectorcall``).
    """
    kind: type | None = None
    for a in args:
        t = type(a)
        if t is tuple or t is torch.Size:
            for n in a:
                if type(n) is not int:
                    return None
        elif t is int or t is float:
            if kind is None:
                kind = t
            elif kind is not t:
                return None
        else:
            return None
    if not kwargs:
        return (*head, kind, *args)
    items: list[Any] = []
    for name, v in kwargs.items():
        t = type(v)
        if t not in _KEYWORD_TYPES:
            return None
        items += (name, t, v)
    return (*head, kind, *args, *items)


def float_dtype(dtype: Any) -> Any:
    dt = torch.get_default_dtype() if dtype is None else dtype
    return dt if dt.is_floating_point else None
