"""Argument checks shared by the operations; every message names the operation and argument."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rotalumis.autodiff.errors import AutodiffArgumentError

__all__ = [
    "as_direction",
    "as_input",
    "as_scalar_input",
    "check_order",
    "fmt_shape",
    "scalar_valued",
]


def fmt_shape(shape: torch.Size | tuple[int, ...]) -> str:
    """Render a shape as ``(3,)``, ``()`` or ``(2, 5)``."""
    return str(tuple(shape))


def as_input(x: Any, op: str, name: str = "x") -> Tensor:
    """Return ``x`` as a floating-point tensor (Python numbers use the default dtype)."""
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.{op}: {name} must be a floating-point tensor to be "
                f"differentiated, got dtype {x.dtype} (use {name}.double() or {name}.float())"
            )
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.get_default_dtype())
    raise AutodiffArgumentError(
        f"rotalumis.autodiff.{op}: {name} must be a torch.Tensor or a real number, "
        f"got {type(x).__name__}"
    )


def as_scalar_input(x: Any, op: str, name: str = "x") -> Tensor:
    """Return ``x`` as a 0-dim floating tensor; other shapes are an error."""
    t = as_input(x, op, name)
    if t.dim() != 0:
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: {name} must be a scalar (0-dim tensor or number) because "
            f"{op} differentiates functions of one real variable, got shape {fmt_shape(t.shape)}; "
            "for vector inputs use grad, gradv, jvp or jacobian"
        )
    return t


def as_direction(v: Any, x: Tensor, op: str, name: str = "v") -> Tensor:
    """Check that the direction ``v`` is a tensor shaped like ``x``; cast it to ``x``'s dtype."""
    if not isinstance(v, Tensor):
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: {name} must be a torch.Tensor, got {type(v).__name__}"
        )
    if v.shape != x.shape:
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: {name} must have the shape of x {fmt_shape(x.shape)}, "
            f"got {fmt_shape(v.shape)}"
        )
    return v if v.dtype == x.dtype else v.to(dtype=x.dtype)


def scalar_valued(f: Callable[[Tensor], Tensor], op: str) -> Callable[[Tensor], Tensor]:
    """Wrap ``f`` so that its output must hold one element; it is returned as a 0-dim tensor."""

    def call(x: Tensor) -> Tensor:
        out = f(x)
        if out.numel() != 1:
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.{op}: f must return a scalar (one element) for {op}, got "
                f"shape {fmt_shape(out.shape)}; for vector-valued f use jacobian, jvp or vjp"
            )
        return out.reshape(())

    return call


def check_order(n: Any, op: str, name: str = "n") -> int:
    """Check a derivative order: a non-negative ``int``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: {name} must be a non-negative int, got {n!r}"
        )
    return int(n)
