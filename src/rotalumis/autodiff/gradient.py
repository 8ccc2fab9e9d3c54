"""First-order derivatives of scalar fields ``f: R^n -> R``: ``grad`` and ``gradv``.

``x`` may have any shape; the gradient has the shape of ``x``. ``f`` must return one element
(a 0-dim tensor, or shape ``(1,)``), which is returned as a 0-dim value.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import checked_function, guarded
from rotalumis.autodiff._validate import as_direction, as_input, scalar_valued

__all__ = ["grad", "grad_with_value", "gradv", "gradv_with_value", "scalar_field"]

Fn = Callable[[Tensor], Tensor]


def scalar_field(f: Fn, op: str) -> Fn:
    """``f`` wrapped with the checks of a scalar field (tensor output, one element, no in-place)."""
    return scalar_valued(checked_function(f, op), op)


def grad_and_value_fn(f: Fn, op: str) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """``x -> (grad f(x), f(x))`` in reverse mode, for use as a ``has_aux`` function."""
    return _func.grad_and_value(scalar_field(f, op))


@guarded("grad_with_value")
def grad_with_value(f: Fn, x: Tensor | float) -> tuple[Tensor, Tensor]:
    """Value and gradient of ``f: R^n -> R`` at ``x`` (reverse mode, ~2-4 evaluations).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        ``(f(x), grad f(x))``; the value is 0-dim, the gradient is shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``f`` does not return a single element.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import grad_with_value
        >>> grad_with_value(lambda x: (x**2).sum(), torch.tensor([1.0, 2.0]))
        (tensor(5.), tensor([2., 4.]))
    """
    t = as_input(x, "grad_with_value")
    g, value = grad_and_value_fn(f, "grad_with_value")(t)
    return value, g


@guarded("grad")
def grad(f: Fn, x: Tensor | float) -> Tensor:
    """Gradient of ``f: R^n -> R`` at ``x`` (reverse mode, ~2-4 evaluations).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        ``grad f(x)``, shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``f`` does not return a single element.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import grad
        >>> grad(lambda x: (x**2).sum(), torch.tensor([1.0, 2.0]))
        tensor([2., 4.])
    """
    t = as_input(x, "grad")
    return grad_and_value_fn(f, "grad")(t)[0]


@guarded("gradv_with_value")
def gradv_with_value(f: Fn, x: Tensor | float, v: Tensor) -> tuple[Tensor, Tensor]:
    """Value and gradient-vector product ``grad f(x) . v`` (forward mode, no gradient built).

    The directional derivative of ``f`` along ``v``: one forward-mode pass, ~2-3 evaluations,
    whatever the dimension.

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        v: the direction, shaped like ``x``.

    Returns:
        ``(f(x), grad f(x) . v)``, both 0-dim.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``, or ``f`` is not scalar.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import gradv_with_value
        >>> x = torch.tensor([1.0, 2.0])
        >>> gradv_with_value(lambda x: (x**2).sum(), x, torch.tensor([1.0, 0.0]))
        (tensor(5.), tensor(2.))
    """
    t = as_input(x, "gradv_with_value")
    d = as_direction(v, t, "gradv_with_value")
    value, tangent = _func.jvp(scalar_field(f, "gradv_with_value"), t, d)
    return value, tangent


@guarded("gradv")
def gradv(f: Fn, x: Tensor | float, v: Tensor) -> Tensor:
    """Gradient-vector product ``grad f(x) . v`` (forward mode, no gradient built).

    Args:
        f: scalar-valued function of a tensor.
        x: the point, a floating tensor of any shape.
        v: the direction, shaped like ``x``.

    Returns:
        ``grad f(x) . v``, 0-dim.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``, or ``f`` is not scalar.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import gradv
        >>> gradv(lambda x: (x**2).sum(), torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]))
        tensor(4.)
    """
    t = as_input(x, "gradv")
    d = as_direction(v, t, "gradv")
    return _func.jvp(scalar_field(f, "gradv"), t, d)[1]
