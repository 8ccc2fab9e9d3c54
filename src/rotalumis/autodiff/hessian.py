"""Second-order derivatives of scalar fields: Hessian, Hessian-vector product, Laplacian.

All are forward over reverse: the gradient comes from reverse mode and is differentiated again
in forward mode. The dense ``hessian`` pushes one basis direction per input element (vectorized
with ``vmap``); ``hvp`` pushes one direction and never builds the matrix; ``laplacian`` pushes
the basis in chunks and keeps only the diagonal.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import guarded
from rotalumis.autodiff._trace import trace_over_basis
from rotalumis.autodiff._validate import as_direction, as_input
from rotalumis.autodiff.gradient import grad_and_value_fn

__all__ = [
    "grad_and_hessian",
    "grad_and_hessian_with_value",
    "hessian",
    "hessian_with_value",
    "hvp",
    "hvp_with_value",
    "laplacian",
    "laplacian_with_value",
]

Fn = Callable[[Tensor], Tensor]


def _value_grad_hessian(f: Fn, x: Tensor, op: str) -> tuple[Tensor, Tensor, Tensor]:
    gv = grad_and_value_fn(f, op)

    def grad_with_aux(t: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        g, value = gv(t)
        return g, (g, value)

    h, (g, value) = _func.jacfwd_aux(grad_with_aux)(x)
    return value, g, h


@guarded("hessian_with_value")
def hessian_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Value and dense Hessian of ``f: R^n -> R`` (forward over reverse, ``O(n)`` evaluations).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        ``(f(x), H)`` with ``H`` of shape ``x.shape + x.shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import hessian_with_value
        >>> hessian_with_value(lambda x: x[0] * x[1], torch.tensor([1.0, 2.0]))
        (tensor(2.), tensor([[0., 1.],
                [1., 0.]]))
    """
    t = as_input(x, "hessian_with_value")
    value, _, h = _value_grad_hessian(f, t, "hessian_with_value")
    return value, h


@guarded("hessian")
def hessian(f: Fn, x: Tensor | float) -> Tensor:
    """Dense Hessian of ``f: R^n -> R`` (forward over reverse, ``O(n)`` evaluations).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        The Hessian, of shape ``x.shape + x.shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import hessian
        >>> hessian(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    t = as_input(x, "hessian")
    return _value_grad_hessian(f, t, "hessian")[2]


@guarded("grad_and_hessian_with_value")
def grad_and_hessian_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient and Hessian of ``f: R^n -> R`` in one forward-over-reverse sweep.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        ``(f(x), grad, H)``; ``grad`` is shaped like ``x``, ``H`` like ``x.shape + x.shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import grad_and_hessian_with_value
        >>> v, g, h = grad_and_hessian_with_value(lambda x: (x**2).sum(), torch.ones(2))
        >>> v, g
        (tensor(2.), tensor([2., 2.]))
    """
    t = as_input(x, "grad_and_hessian_with_value")
    return _value_grad_hessian(f, t, "grad_and_hessian_with_value")


@guarded("grad_and_hessian")
def grad_and_hessian(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Gradient and Hessian of ``f: R^n -> R`` in one forward-over-reverse sweep.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        ``(grad, H)``; ``grad`` is shaped like ``x``, ``H`` like ``x.shape + x.shape``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import grad_and_hessian
        >>> g, h = grad_and_hessian(lambda x: x[0] ** 2 * x[1], torch.tensor([1.0, 3.0]))
        >>> g
        tensor([6., 1.])
    """
    t = as_input(x, "grad_and_hessian")
    _, g, h = _value_grad_hessian(f, t, "grad_and_hessian")
    return g, h


def _value_hvp(f: Fn, x: Tensor, v: Tensor, op: str) -> tuple[Tensor, Tensor]:
    _, hv, value = _func.jvp_aux(grad_and_value_fn(f, op), x, v)
    return value, hv


@guarded("hvp_with_value")
def hvp_with_value(f: Fn, x: Tensor | float, v: Tensor) -> tuple[Tensor, Tensor]:
    """Value and Hessian-vector product ``H v`` without building ``H`` (forward over reverse).

    Costs a small constant times one evaluation of ``f`` and ``O(n)`` memory, whatever ``n``.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        v: the vector, shaped like ``x``.

    Returns:
        ``(f(x), H v)``; ``H v`` is shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import hvp_with_value
        >>> hvp_with_value(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0]), torch.ones(2))
        (tensor(9.), tensor([ 6., 12.]))
    """
    t = as_input(x, "hvp_with_value")
    d = as_direction(v, t, "hvp_with_value")
    return _value_hvp(f, t, d, "hvp_with_value")


@guarded("hvp")
def hvp(f: Fn, x: Tensor | float, v: Tensor) -> Tensor:
    """Hessian-vector product ``H v`` without building ``H`` (forward over reverse).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        v: the vector, shaped like ``x``.

    Returns:
        ``H v``, shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import hvp
        >>> hvp(lambda x: x[0] * x[1], torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]))
        tensor([0., 1.])
    """
    t = as_input(x, "hvp")
    d = as_direction(v, t, "hvp")
    return _value_hvp(f, t, d, "hvp")[1]


def _value_laplacian(f: Fn, x: Tensor, chunk_size: int | None, op: str) -> tuple[Tensor, Tensor]:
    gv = grad_and_value_fn(f, op)

    def curvature(e: Tensor) -> tuple[Tensor, Tensor]:
        _, he, value = _func.jvp_aux(gv, x, e)
        return (he * e).sum(), value

    lap, value = trace_over_basis(curvature, x, chunk_size, op)
    return value, lap


@guarded("laplacian_with_value")
def laplacian_with_value(
    f: Fn, x: Tensor | float, *, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """Value and Laplacian ``tr H = sum_i d^2 f / dx_i^2``, without building ``H``.

    One forward-over-reverse pass per basis direction ``e_i`` gives ``e_i . H e_i``; the
    directions are vectorized in chunks. Time ``O(n)`` evaluations of ``f`` (like the dense
    Hessian, which is the lower bound for an exact trace in general); memory ``O(chunk_size)``
    copies of ``f``'s intermediates instead of the ``n^2`` entries of ``H``.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        chunk_size: directions per vectorized pass; ``None`` means
            ``min(n, 1024, 2^20 // n)``. Smaller saves memory, larger saves Python overhead.

    Returns:
        ``(f(x), laplacian)``, both 0-dim.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import laplacian_with_value
        >>> laplacian_with_value(lambda x: (x**2).sum(), torch.ones(3))
        (tensor(3.), tensor(6.))
    """
    t = as_input(x, "laplacian_with_value")
    return _value_laplacian(f, t, chunk_size, "laplacian_with_value")


@guarded("laplacian")
def laplacian(f: Fn, x: Tensor | float, *, chunk_size: int | None = None) -> Tensor:
    """Laplacian ``tr H = sum_i d^2 f / dx_i^2``, without building ``H``.

    See :func:`laplacian_with_value` for the method and its cost.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        chunk_size: directions per vectorized pass; ``None`` means
            ``min(n, 1024, 2^20 // n)``.

    Returns:
        The Laplacian, 0-dim.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import laplacian
        >>> laplacian(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0]))
        tensor(18.)
    """
    t = as_input(x, "laplacian")
    return _value_laplacian(f, t, chunk_size, "laplacian")[1]
