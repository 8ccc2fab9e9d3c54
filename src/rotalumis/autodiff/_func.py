"""Typed adapters over the ``torch.func`` transforms used here (torch's stubs are loose).

Only single-tensor inputs are used in this package, which keeps every signature precise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import torch
from torch import Tensor

__all__ = ["grad_and_value", "jacfwd_aux", "jvp", "jvp_aux", "vjp", "vmap", "vmap_keep_aux"]

A = TypeVar("A")


def jvp(fn: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Forward mode: ``(fn(x), J v)``."""
    out = cast(tuple[Tensor, Tensor], torch.func.jvp(fn, (x,), (v,)))
    return out[0], out[1]


def jvp_aux(
    fn: Callable[[Tensor], tuple[Tensor, A]], x: Tensor, v: Tensor
) -> tuple[Tensor, Tensor, A]:
    """Forward mode of ``fn`` returning ``(output, aux)``: ``(output, J v, aux)``."""
    out = cast(tuple[Tensor, Tensor, A], torch.func.jvp(fn, (x,), (v,), has_aux=True))
    return out[0], out[1], out[2]


def vjp(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Reverse mode: ``(fn(x), u -> J^T u)``; the pullback may be called many times."""
    value, apply = cast(tuple[Tensor, Callable[[Tensor], tuple[Tensor]]], torch.func.vjp(fn, x))

    def pull(u: Tensor) -> Tensor:
        return apply(u)[0]

    return value, pull


def grad_and_value(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Reverse mode for a scalar ``fn``: ``x -> (grad fn(x), fn(x))``."""
    return cast(Callable[[Tensor], tuple[Tensor, Tensor]], torch.func.grad_and_value(fn))


def jacfwd_aux(fn: Callable[[Tensor], tuple[Tensor, A]]) -> Callable[[Tensor], tuple[Tensor, A]]:
    """Forward-mode Jacobian of ``fn`` returning ``(output, aux)``: ``x -> (J, aux)``."""
    return cast(Callable[[Tensor], tuple[Tensor, A]], torch.func.jacfwd(fn, has_aux=True))


def vmap(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Vectorize ``fn`` over the leading dimension of its input and output."""
    return cast(Callable[[Tensor], Tensor], torch.func.vmap(fn))


def vmap_keep_aux(
    fn: Callable[[Tensor], tuple[Tensor, Tensor]],
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Vectorize ``fn -> (output, aux)`` where ``aux`` does not depend on the input.

    ``aux`` comes back once, not batched. (``out_dims=None`` would say that directly, but torch
    rejects it when an enclosing ``vmap`` has batched ``aux``; an unbatched output is expanded,
    not copied, so taking the first row is free.)
    """
    batched = cast(Callable[[Tensor], tuple[Tensor, Tensor]], torch.func.vmap(fn))

    def call(xs: Tensor) -> tuple[Tensor, Tensor]:
        out, aux = batched(xs)
        return out, aux[0]

    return call
