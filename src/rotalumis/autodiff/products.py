"""Matrix-free Jacobian products of ``f: R^n -> R^m``: ``jvp``, ``vjp`` and ``pullback``.

``jvp`` is forward mode (one pass pushes a tangent ``v`` in input space), ``vjp`` is reverse
mode (one pass pulls a cotangent ``u`` from output space back). Neither builds the Jacobian:
each costs a small constant times one evaluation of ``f``. ``pullback`` records the reverse
pass once and applies the transposed Jacobian to as many cotangents as you like.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff._guard import checked_function, guarded
from rotalumis.autodiff._validate import as_direction, as_input, fmt_shape
from rotalumis.autodiff.errors import AutodiffArgumentError

__all__ = ["Pullback", "jvp", "jvp_with_value", "pullback", "vjp", "vjp_with_value"]

Fn = Callable[[Tensor], Tensor]


@guarded("jvp_with_value")
def jvp_with_value(f: Fn, x: Tensor | float, v: Tensor) -> tuple[Tensor, Tensor]:
    """Value and Jacobian-vector product ``J v`` of ``f`` at ``x`` (forward mode).

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        v: the tangent, shaped like ``x``.

    Returns:
        ``(f(x), J v)``, both shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jvp_with_value
        >>> jvp_with_value(lambda x: x**2, torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]))
        (tensor([1., 4.]), tensor([2., 4.]))
    """
    t = as_input(x, "jvp_with_value")
    d = as_direction(v, t, "jvp_with_value")
    value, tangent = _func.jvp(checked_function(f, "jvp_with_value"), t, d)
    return value, tangent


@guarded("jvp")
def jvp(f: Fn, x: Tensor | float, v: Tensor) -> Tensor:
    """Jacobian-vector product ``J v`` of ``f`` at ``x`` (forward mode).

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        v: the tangent, shaped like ``x``.

    Returns:
        ``J v``, shaped like ``f(x)``.

    Raises:
        AutodiffArgumentError: ``v`` is not shaped like ``x``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import jvp
        >>> jvp(torch.sin, torch.zeros(2), torch.tensor([1.0, 3.0]))
        tensor([1., 3.])
    """
    t = as_input(x, "jvp")
    d = as_direction(v, t, "jvp")
    return _func.jvp(checked_function(f, "jvp"), t, d)[1]


class Pullback:
    """The transposed Jacobian ``J^T`` of ``f`` at a fixed ``x``, reusable for many cotangents.

    Made by :func:`pullback`; the reverse pass of ``f`` is recorded once, each application
    costs one backward sweep (about one to two evaluations of ``f``).

    Attributes:
        value: ``f(x)``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import pullback
        >>> pb = pullback(lambda x: x * x.sum(), torch.tensor([1.0, 2.0]))
        >>> pb.batched(torch.eye(2))  # all rows of J, from one recorded forward pass
        tensor([[4., 1.],
                [2., 5.]])
    """

    def __init__(self, value: Tensor, apply: Callable[[Tensor], Tensor]) -> None:
        self.value = value
        self._apply = apply

    def _check(self, u: object, name: str, batched: bool) -> Tensor:
        if not isinstance(u, Tensor):
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.Pullback: {name} must be a torch.Tensor, got "
                f"{type(u).__name__}"
            )
        shape = u.shape[1:] if batched and u.dim() >= 1 else u.shape
        if (batched and u.dim() < 1) or shape != self.value.shape:
            want = ("(k,) + " if batched else "") + fmt_shape(self.value.shape)
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.Pullback: {name} must have shape {want} (the shape of "
                f"f(x)), got {fmt_shape(u.shape)}"
            )
        return u if u.dtype == self.value.dtype else u.to(dtype=self.value.dtype)

    @guarded("Pullback")
    def __call__(self, u: Tensor) -> Tensor:
        """Return ``J^T u`` (shaped like ``x``) for a cotangent ``u`` shaped like ``f(x)``."""
        return self._apply(self._check(u, "u", batched=False))

    @guarded("Pullback.batched")
    def batched(self, us: Tensor) -> Tensor:
        """Return ``J^T u`` for each row ``u`` of ``us`` (shape ``(k,) + f(x).shape``), vmapped.

        The result has shape ``(k,) + x.shape``.
        """
        us = self._check(us, "us", batched=True)
        return _func.vmap(self._apply)(us)


@guarded("pullback")
def pullback(f: Fn, x: Tensor | float) -> Pullback:
    """Record ``f`` at ``x`` for reverse mode and return its reusable :class:`Pullback`.

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.

    Returns:
        A :class:`Pullback` ``pb`` with ``pb.value == f(x)`` and ``pb(u) == J^T u``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import pullback
        >>> pb = pullback(lambda x: x**2, torch.tensor([1.0, 2.0]))
        >>> pb(torch.tensor([1.0, 0.0])), pb(torch.tensor([0.0, 1.0]))
        (tensor([2., 0.]), tensor([0., 4.]))
    """
    t = as_input(x, "pullback")
    value, apply = _func.vjp(checked_function(f, "pullback"), t)
    return Pullback(value, apply)


def _value_vjp(f: Fn, x: Tensor, u: object, op: str) -> tuple[Tensor, Tensor]:
    value, apply = _func.vjp(checked_function(f, op), x)
    if not isinstance(u, Tensor):
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: u must be a torch.Tensor, got {type(u).__name__}"
        )
    if u.shape != value.shape:
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: u must have the shape of f(x) {fmt_shape(value.shape)}, "
            f"got {fmt_shape(u.shape)}"
        )
    return value, apply(u.to(dtype=value.dtype))


@guarded("vjp_with_value")
def vjp_with_value(f: Fn, x: Tensor | float, u: Tensor) -> tuple[Tensor, Tensor]:
    """Value and transposed-Jacobian-vector product ``J^T u`` of ``f`` at ``x`` (reverse mode).

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        u: the cotangent, shaped like ``f(x)``.

    Returns:
        ``(f(x), J^T u)``; ``J^T u`` is shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``u`` is not shaped like ``f(x)``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import vjp_with_value
        >>> vjp_with_value(lambda x: x.sum() * x, torch.tensor([1.0, 2.0]), torch.ones(2))
        (tensor([3., 6.]), tensor([6., 6.]))
    """
    t = as_input(x, "vjp_with_value")
    return _value_vjp(f, t, u, "vjp_with_value")


@guarded("vjp")
def vjp(f: Fn, x: Tensor | float, u: Tensor) -> Tensor:
    """Transposed-Jacobian-vector product ``J^T u`` of ``f`` at ``x`` (reverse mode).

    Args:
        f: function of a tensor returning a tensor.
        x: the point, a floating tensor of any shape.
        u: the cotangent, shaped like ``f(x)``.

    Returns:
        ``J^T u``, shaped like ``x``.

    Raises:
        AutodiffArgumentError: ``u`` is not shaped like ``f(x)``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import vjp
        >>> vjp(lambda x: x**2, torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]))
        tensor([2., 4.])
    """
    t = as_input(x, "vjp")
    return _value_vjp(f, t, u, "vjp")[1]
