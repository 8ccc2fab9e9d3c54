"""Derivatives of functions of one real variable: ``diff``, ``diff2``, ``diffn``.

``f`` maps a scalar (0-dim tensor) to a tensor of any shape; the derivative has the shape of
``f(x)``. All use forward mode (``torch.func.jvp``), the efficient mode for one input: the
first derivative costs about 2-3 evaluations of ``f`` whatever the output size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import checked_function, guarded
from rotalumis.autodiff._validate import as_scalar_input, check_order

__all__ = [
    "diff",
    "diff2",
    "diff2_with_value",
    "diff_with_value",
    "diffn",
    "diffn_with_value",
]

Fn = Callable[[Tensor], Tensor]
_AuxFn = Callable[[Tensor], tuple[Tensor, Tensor]]


def _nth_derivative_with_value(f: Fn, x: Tensor, n: int, op: str) -> tuple[Tensor, Tensor]:
    """``(f(x), f^(n)(x))`` by ``n`` nested forward-mode passes.

    The value rides along as the auxiliary output of each ``jvp`` so it is never recomputed.
    Each nesting level doubles the work (primal + tangent), so the cost is ~2^n evaluations.
    """
    g = checked_function(f, op)

    def level0(t: Tensor) -> tuple[Tensor, Tensor]:
        out = g(t)
        return out, out

    fn: _AuxFn = level0
    for _ in range(n):
        fn = _differentiate_once(fn)
    deriv, value = fn(x)
    return value, deriv


def _differentiate_once(fn: _AuxFn) -> _AuxFn:
    def next_level(t: Tensor) -> tuple[Tensor, Tensor]:
        _, tangent, value = _func.jvp_aux(fn, t, torch.ones_like(t))
        return tangent, value

    return next_level


@guarded("diff_with_value")
def diff_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Value and first derivative of ``f: R -> R^...`` at ``x`` (forward mode).

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.

    Returns:
        ``(f(x), f'(x))``, both shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``x`` is not a scalar.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diff_with_value
        >>> diff_with_value(lambda x: x**3, torch.tensor(2.0))
        (tensor(8.), tensor(12.))
    """
    t = as_scalar_input(x, "diff_with_value")
    return _nth_derivative_with_value(f, t, 1, "diff_with_value")


@guarded("diff")
def diff(f: Fn, x: Tensor | float) -> Tensor:
    """First derivative of ``f: R -> R^...`` at ``x`` (forward mode).

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.

    Returns:
        ``f'(x)``, shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``x`` is not a scalar.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diff
        >>> diff(torch.sin, torch.tensor(0.0))
        tensor(1.)
    """
    t = as_scalar_input(x, "diff")
    return _nth_derivative_with_value(f, t, 1, "diff")[1]


@guarded("diff2_with_value")
def diff2_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Value and second derivative of ``f: R -> R^...`` at ``x`` (forward over forward).

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.

    Returns:
        ``(f(x), f''(x))``, both shaped like ``f(x)``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diff2_with_value
        >>> diff2_with_value(lambda x: x**3, torch.tensor(2.0))
        (tensor(8.), tensor(12.))
    """
    t = as_scalar_input(x, "diff2_with_value")
    return _nth_derivative_with_value(f, t, 2, "diff2_with_value")


@guarded("diff2")
def diff2(f: Fn, x: Tensor | float) -> Tensor:
    """Second derivative of ``f: R -> R^...`` at ``x`` (forward over forward).

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.

    Returns:
        ``f''(x)``, shaped like ``f(x)``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diff2
        >>> diff2(torch.cos, torch.tensor(0.0))
        tensor(-1.)
    """
    t = as_scalar_input(x, "diff2")
    return _nth_derivative_with_value(f, t, 2, "diff2")[1]


@guarded("diffn_with_value")
def diffn_with_value(f: Fn, x: Tensor | float, n: int) -> tuple[Tensor, Tensor]:
    """Value and ``n``-th derivative of ``f: R -> R^...`` at ``x`` (``n`` nested forward passes).

    Cost grows like ``2^n`` evaluations of ``f`` (each nesting level carries a primal and a
    tangent); fine for the small orders used in practice.

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.
        n: the order, a non-negative int (0 gives ``f(x)`` itself).

    Returns:
        ``(f(x), f^(n)(x))``, both shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``x`` is not a scalar or ``n`` is not a non-negative int.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diffn_with_value
        >>> diffn_with_value(lambda x: x**4, torch.tensor(1.0), 3)
        (tensor(1.), tensor(24.))
    """
    order = check_order(n, "diffn_with_value")
    t = as_scalar_input(x, "diffn_with_value")
    return _nth_derivative_with_value(f, t, order, "diffn_with_value")


@guarded("diffn")
def diffn(f: Fn, x: Tensor | float, n: int) -> Tensor:
    """``n``-th derivative of ``f: R -> R^...`` at ``x`` (``n`` nested forward passes).

    Args:
        f: function of a 0-dim tensor returning a tensor of any shape.
        x: the point, a 0-dim floating tensor or a Python number.
        n: the order, a non-negative int (0 gives ``f(x)`` itself).

    Returns:
        ``f^(n)(x)``, shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``x`` is not a scalar or ``n`` is not a non-negative int.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import diffn
        >>> diffn(torch.exp, torch.tensor(0.0), 5)
        tensor(1.)
    """
    order = check_order(n, "diffn")
    t = as_scalar_input(x, "diffn")
    return _nth_derivative_with_value(f, t, order, "diffn")[1]
