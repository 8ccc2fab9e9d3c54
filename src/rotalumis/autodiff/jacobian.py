"""Dense Jacobians of ``f: R^n -> R^m``: ``jacobian`` and ``jacobian_transpose``.

The Jacobian ``J[i, j] = d f_i / d x_j`` has shape ``f(x).shape + x.shape``. It is built row
by row in reverse mode (``m`` backward sweeps, vectorized) or column by column in forward mode
(``n`` tangents, vectorized), whichever is fewer: ``mode="auto"`` records one reverse pass,
which tells ``m``, and switches to forward mode when ``m > n`` (one extra evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import checked_function, guarded
from rotalumis.autodiff._validate import as_input
from rotalumis.autodiff.errors import AutodiffArgumentError

__all__ = [
    "JacobianMode",
    "jacobian",
    "jacobian_transpose",
    "jacobian_transpose_with_value",
    "jacobian_with_value",
    "value_and_jacobian",
]

Fn = Callable[[Tensor], Tensor]
JacobianMode = Literal["auto", "forward", "reverse"]


def _basis(k: int, shape: torch.Size, like: Tensor) -> Tensor:
    eye = torch.nn.functional.one_hot(torch.arange(k, device=like.device), k)
    return eye.to(dtype=like.dtype).reshape(k, *shape)


def _forward(g: Fn, x: Tensor) -> tuple[Tensor, Tensor]:
    n = x.numel()

    def push(e: Tensor) -> tuple[Tensor, Tensor]:
        value, tangent = _func.jvp(g, x, e)
        return tangent, value

    columns, value = _func.vmap_keep_aux(push)(_basis(n, x.shape, x))
    jac = columns.reshape(n, value.numel()).movedim(0, 1)
    return value, jac.reshape(*value.shape, *x.shape)


def value_and_jacobian(f: Fn, x: Tensor, mode: JacobianMode, op: str) -> tuple[Tensor, Tensor]:
    """``(f(x), J)`` with ``J`` of shape ``f(x).shape + x.shape`` (shared by vector calculus)."""
    if mode not in ("auto", "forward", "reverse"):
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: mode must be 'auto', 'forward' or 'reverse', got {mode!r}"
        )
    g = checked_function(f, op)
    if x.numel() == 0:
        value = g(x)
        return value, value.new_zeros(*value.shape, *x.shape)
    if mode == "forward":
        return _forward(g, x)
    value, pull = _func.vjp(g, x)
    m = value.numel()
    if m == 0:
        return value, value.new_zeros(*value.shape, *x.shape)
    if mode == "auto" and m > x.numel():
        return _forward(g, x)
    rows = _func.vmap(pull)(_basis(m, value.shape, value))
    return value, rows.reshape(*value.shape, *x.shape)


def _transpose(jac: Tensor, out_dims: int) -> Tensor:
    k = jac.dim()
    return jac.movedim(tuple(range(out_dims)), tuple(range(k - out_dims, k)))


@guarded("jacobian_with_value")
def jacobian_with_value(
    f: Fn, x: Tensor | float, *, mode: JacobianMode = "auto"
) -> tuple[Tensor, Tensor]:
    """Value and dense Jacobian of ``f`` at ``x``.

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        mode: ``"reverse"`` (``m`` backward sweeps), ``"forward"`` (``n`` tangents) or
            ``"auto"`` (the cheaper of the two, see the module docstring).

    Returns:
        ``(f(x), J)`` with ``J`` of shape ``f(x).shape + x.shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jacobian_with_value
        >>> jacobian_with_value(lambda x: x**2, torch.tensor([1.0, 2.0]))
        (tensor([1., 4.]), tensor([[2., 0.],
                [0., 4.]]))
    """
    t = as_input(x, "jacobian_with_value")
    return value_and_jacobian(f, t, mode, "jacobian_with_value")


@guarded("jacobian")
def jacobian(f: Fn, x: Tensor | float, *, mode: JacobianMode = "auto") -> Tensor:
    """Dense Jacobian of ``f`` at ``x``, of shape ``f(x).shape + x.shape``.

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        mode: ``"reverse"``, ``"forward"`` or ``"auto"`` (see :func:`jacobian_with_value`).

    Returns:
        The Jacobian ``J[i..., j...] = d f(x)[i...] / d x[j...]``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jacobian
        >>> jacobian(lambda x: torch.stack([x[0] * x[1], x[1]]), torch.tensor([2.0, 3.0]))
        tensor([[3., 2.],
                [0., 1.]])
    """
    t = as_input(x, "jacobian")
    return value_and_jacobian(f, t, mode, "jacobian")[1]


@guarded("jacobian_transpose_with_value")
def jacobian_transpose_with_value(
    f: Fn, x: Tensor | float, *, mode: JacobianMode = "auto"
) -> tuple[Tensor, Tensor]:
    """Value and dense transposed Jacobian ``J^T`` of ``f`` at ``x``.

    For many products with ``J^T`` prefer :func:`pullback`, which never builds the matrix.

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        mode: ``"reverse"``, ``"forward"`` or ``"auto"`` (see :func:`jacobian_with_value`).

    Returns:
        ``(f(x), J^T)`` with ``J^T`` of shape ``x.shape + f(x).shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jacobian_transpose_with_value
        >>> f = lambda x: torch.stack([x[0] * x[1], x[1]])
        >>> jacobian_transpose_with_value(f, torch.tensor([2.0, 3.0]))
        (tensor([6., 3.]), tensor([[3., 0.],
                [2., 1.]]))
    """
    t = as_input(x, "jacobian_transpose_with_value")
    value, jac = value_and_jacobian(f, t, mode, "jacobian_transpose_with_value")
    return value, _transpose(jac, value.dim())


@guarded("jacobian_transpose")
def jacobian_transpose(f: Fn, x: Tensor | float, *, mode: JacobianMode = "auto") -> Tensor:
    """Dense transposed Jacobian ``J^T`` of ``f`` at ``x``, of shape ``x.shape + f(x).shape``.

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        mode: ``"reverse"``, ``"forward"`` or ``"auto"`` (see :func:`jacobian_with_value`).

    Returns:
        ``J^T[j..., i...] = d f(x)[i...] / d x[j...]``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jacobian_transpose
        >>> jacobian_transpose(lambda x: x[:1] * x, torch.tensor([1.0, 2.0]))
        tensor([[2., 2.],
                [0., 1.]])
    """
    t = as_input(x, "jacobian_transpose")
    value, jac = value_and_jacobian(f, t, mode, "jacobian_transpose")
    return _transpose(jac, value.dim())
