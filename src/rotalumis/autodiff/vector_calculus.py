"""Vector calculus of vector fields: ``curl`` (R^3 -> R^3), ``div`` (R^n -> R^n), both at once.

``curl`` needs the full 3x3 Jacobian, built in forward mode from 3 tangents (vectorized).
``div`` is the trace of the Jacobian, accumulated from ``e_i . (J e_i)`` over the basis in
vectorized forward-mode chunks, so the ``n x n`` Jacobian is never built: time ``O(n)``
evaluations, memory ``O(chunk_size)`` copies of ``f``'s intermediates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import checked_function, guarded
from rotalumis.autodiff._trace import trace_over_basis
from rotalumis.autodiff._validate import as_input, fmt_shape
from rotalumis.autodiff.errors import AutodiffArgumentError
from rotalumis.autodiff.jacobian import value_and_jacobian

__all__ = [
    "curl",
    "curl_and_div",
    "curl_and_div_with_value",
    "curl_with_value",
    "div",
    "div_with_value",
]

Fn = Callable[[Tensor], Tensor]


def _vector_field(f: Fn, x: Tensor, op: str) -> Fn:
    """Wrap ``f`` to check that ``f(x)`` has the shape of ``x``."""
    g = checked_function(f, op)

    def call(t: Tensor) -> Tensor:
        out = g(t)
        if out.shape != t.shape:
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.{op}: f must map x to a vector field of the same shape, "
                f"got f(x) of shape {fmt_shape(out.shape)} for x of shape {fmt_shape(t.shape)}"
            )
        return out

    return call


def _three_vector(x: Tensor | float, op: str) -> Tensor:
    t = as_input(x, op)
    if t.shape != (3,):
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: x must be a 3-vector (shape (3,)) because the curl is "
            f"defined for fields R^3 -> R^3, got shape {fmt_shape(t.shape)}"
        )
    return t


def _curl_from_jacobian(j: Tensor) -> Tensor:
    return torch.stack([j[2, 1] - j[1, 2], j[0, 2] - j[2, 0], j[1, 0] - j[0, 1]])


def _value_jacobian_3d(f: Fn, x: Tensor | float, op: str) -> tuple[Tensor, Tensor]:
    t = _three_vector(x, op)
    return value_and_jacobian(_vector_field(f, t, op), t, "forward", op)


@guarded("curl_with_value")
def curl_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Value and curl of a vector field ``f: R^3 -> R^3`` at ``x`` (forward mode).

    Args:
        f: function mapping a tensor of shape ``(3,)`` to one of shape ``(3,)``.
        x: the point, shape ``(3,)``.

    Returns:
        ``(f(x), curl f(x))``, both of shape ``(3,)``.

    Raises:
        AutodiffArgumentError: ``x`` or ``f(x)`` is not a 3-vector.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import curl_with_value
        >>> spin = lambda p: torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), p)
        >>> curl_with_value(spin, torch.tensor([1.0, 2.0, 3.0]))
        (tensor([-2.,  1.,  0.]), tensor([0., 0., 2.]))
    """
    value, j = _value_jacobian_3d(f, x, "curl_with_value")
    return value, _curl_from_jacobian(j)


@guarded("curl")
def curl(f: Fn, x: Tensor | float) -> Tensor:
    """Curl of a vector field ``f: R^3 -> R^3`` at ``x`` (forward mode).

    Args:
        f: function mapping a tensor of shape ``(3,)`` to one of shape ``(3,)``.
        x: the point, shape ``(3,)``.

    Returns:
        ``curl f(x)``, shape ``(3,)``.

    Raises:
        AutodiffArgumentError: ``x`` or ``f(x)`` is not a 3-vector.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import curl
        >>> curl(lambda p: torch.stack([p[1] * p[2], 0 * p[0], 0 * p[0]]), torch.ones(3))
        tensor([ 0.,  1., -1.])
    """
    return _curl_from_jacobian(_value_jacobian_3d(f, x, "curl")[1])


@guarded("curl_and_div_with_value")
def curl_and_div_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
    """Value, curl and divergence of ``f: R^3 -> R^3`` from one Jacobian (forward mode).

    Args:
        f: function mapping a tensor of shape ``(3,)`` to one of shape ``(3,)``.
        x: the point, shape ``(3,)``.

    Returns:
        ``(f(x), curl f(x), div f(x))``; the divergence is 0-dim.

    Raises:
        AutodiffArgumentError: ``x`` or ``f(x)`` is not a 3-vector.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import curl_and_div_with_value
        >>> curl_and_div_with_value(lambda p: 2 * p, torch.ones(3))
        (tensor([2., 2., 2.]), tensor([0., 0., 0.]), tensor(6.))
    """
    value, j = _value_jacobian_3d(f, x, "curl_and_div_with_value")
    return value, _curl_from_jacobian(j), torch.trace(j)


@guarded("curl_and_div")
def curl_and_div(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Curl and divergence of ``f: R^3 -> R^3`` from one Jacobian (forward mode).

    Args:
        f: function mapping a tensor of shape ``(3,)`` to one of shape ``(3,)``.
        x: the point, shape ``(3,)``.

    Returns:
        ``(curl f(x), div f(x))``; the divergence is 0-dim.

    Raises:
        AutodiffArgumentError: ``x`` or ``f(x)`` is not a 3-vector.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import curl_and_div
        >>> curl_and_div(lambda p: p * p, torch.tensor([1.0, 2.0, 3.0]))
        (tensor([0., 0., 0.]), tensor(12.))
    """
    j = _value_jacobian_3d(f, x, "curl_and_div")[1]
    return _curl_from_jacobian(j), torch.trace(j)


def _value_div(f: Fn, x: Tensor, chunk_size: int | None, op: str) -> tuple[Tensor, Tensor]:
    g = _vector_field(f, x, op)

    def stretch(e: Tensor) -> tuple[Tensor, Tensor]:
        value, tangent = _func.jvp(g, x, e)
        return (tangent * e).sum(), value

    div_, value = trace_over_basis(stretch, x, chunk_size, op)
    return value, div_


@guarded("div_with_value")
def div_with_value(
    f: Fn, x: Tensor | float, *, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """Value and divergence ``sum_i d f_i / d x_i`` of a vector field, without building ``J``.

    Args:
        f: function mapping a tensor to a tensor of the same shape (a field ``R^n -> R^n``).
        x: the point, a floating tensor of any shape.
        chunk_size: basis directions per vectorized forward pass; ``None`` means
            ``min(n, 1024, 2^20 // n)``.

    Returns:
        ``(f(x), div f(x))``; the divergence is 0-dim.

    Raises:
        AutodiffArgumentError: ``f(x)`` does not have the shape of ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import div_with_value
        >>> div_with_value(lambda x: x**2, torch.tensor([1.0, 2.0]))
        (tensor([1., 4.]), tensor(6.))
    """
    t = as_input(x, "div_with_value")
    return _value_div(f, t, chunk_size, "div_with_value")


@guarded("div")
def div(f: Fn, x: Tensor | float, *, chunk_size: int | None = None) -> Tensor:
    """Divergence ``sum_i d f_i / d x_i`` of a vector field ``R^n -> R^n``, without building ``J``.

    Args:
        f: function mapping a tensor to a tensor of the same shape.
        x: the point, a floating tensor of any shape.
        chunk_size: basis directions per vectorized forward pass; ``None`` means
            ``min(n, 1024, 2^20 // n)``.

    Returns:
        ``div f(x)``, 0-dim.

    Raises:
        AutodiffArgumentError: ``f(x)`` does not have the shape of ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import div
        >>> div(lambda x: x * x.sum(), torch.tensor([1.0, 2.0]))
        tensor(9.)
    """
    t = as_input(x, "div")
    return _value_div(f, t, chunk_size, "div")[1]
