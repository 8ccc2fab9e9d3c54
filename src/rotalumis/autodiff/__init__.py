"""Higher-order, nestable differentiation on top of ``torch.func``.

Every operation takes the function first and the point second, ``op(f, x, ...)``, and
returns the derivative at ``x``. Each has a ``*_with_value`` twin that also returns ``f(x)``
(computed in the same pass, at no extra cost) **first**: ``value, g = grad_with_value(f, x)``;
``grad_and_hessian_with_value`` returns ``(value, grad, hessian)``. :func:`pullback` returns
an object holding ``f(x)`` as ``.value``.

===========================  ===========================  ===================================
operation                    of                           mode (cost in evaluations of f)
===========================  ===========================  ===================================
``diff``, ``diff2``,         ``f: R -> R^...``            forward; nested forward (~2^n)
``diffn(f, x, n)``
``grad``                     ``f: R^n -> R``              reverse (O(1))
``gradv(f, x, v)``           ``f: R^n -> R``              forward, ``grad . v`` (O(1))
``hessian``                  ``f: R^n -> R``              forward over reverse (O(n))
``hvp(f, x, v)``             ``f: R^n -> R``              forward over reverse (O(1))
``grad_and_hessian``         ``f: R^n -> R``              forward over reverse (O(n))
``laplacian``                ``f: R^n -> R``              forward over reverse, chunked (O(n))
``jacobian``                 ``f: R^n -> R^m``            reverse or forward (O(min(n, m)))
``jacobian_transpose``       ``f: R^n -> R^m``            as ``jacobian``
``jvp(f, x, v)``             ``f: R^n -> R^m``            forward (O(1))
``vjp(f, x, u)``             ``f: R^n -> R^m``            reverse (O(1))
``pullback(f, x)``           ``f: R^n -> R^m``            reverse, reusable ``J^T u``
``curl``                     ``f: R^3 -> R^3``            forward (3 tangents)
``div``                      ``f: R^n -> R^n``            forward, chunked (O(n))
``curl_and_div``             ``f: R^3 -> R^3``            forward (3 tangents)
===========================  ===========================  ===================================

Operations nest to any depth without perturbation confusion (each nesting level is a separate
``torch.func`` transform level) and compose with ``torch.func.vmap`` for batches:
``torch.func.vmap(lambda x: grad(f, x))(xs)``.

Known traps raise :class:`DifferentiationTrapError` with an explanation and a fix: converting
a differentiated tensor to a Python number inside ``f`` (``.item()``, ``float()``,
``.tolist()``, ``.numpy()``), modifying the input in place, drawing random numbers under
``vmap``, Python branching on batched values. Wrong argument types and shapes raise
:class:`AutodiffArgumentError` naming the argument. The checks for conversions and in-place
changes cost a little Python per torch op inside ``f``; :func:`trap_checks` turns them off.

Example:
    >>> import torch
    >>> from rotalumis.autodiff import diff, grad
    >>> x = torch.tensor(3.0)
    >>> diff(lambda x: x * diff(lambda y: x * y, torch.tensor(2.0)), x)  # d/dx x^2
    tensor(6.)
    >>> grad(lambda v: (v**2).sum(), torch.tensor([1.0, 2.0]))
    tensor([2., 4.])
"""

from rotalumis.autodiff._guard import trap_checks
from rotalumis.autodiff.errors import (
    AutodiffArgumentError,
    AutodiffError,
    DifferentiationTrapError,
)
from rotalumis.autodiff.gradient import grad, grad_with_value, gradv, gradv_with_value
from rotalumis.autodiff.hessian import (
    grad_and_hessian,
    grad_and_hessian_with_value,
    hessian,
    hessian_with_value,
    hvp,
    hvp_with_value,
    laplacian,
    laplacian_with_value,
)
from rotalumis.autodiff.jacobian import (
    jacobian,
    jacobian_transpose,
    jacobian_transpose_with_value,
    jacobian_with_value,
)
from rotalumis.autodiff.products import (
    Pullback,
    jvp,
    jvp_with_value,
    pullback,
    vjp,
    vjp_with_value,
)
from rotalumis.autodiff.scalar import (
    diff,
    diff2,
    diff2_with_value,
    diff_with_value,
    diffn,
    diffn_with_value,
)
from rotalumis.autodiff.vector_calculus import (
    curl,
    curl_and_div,
    curl_and_div_with_value,
    curl_with_value,
    div,
    div_with_value,
)

__all__ = [
    "AutodiffArgumentError",
    "AutodiffError",
    "DifferentiationTrapError",
    "Pullback",
    "curl",
    "curl_and_div",
    "curl_and_div_with_value",
    "curl_with_value",
    "diff",
    "diff2",
    "diff2_with_value",
    "diff_with_value",
    "diffn",
    "diffn_with_value",
    "div",
    "div_with_value",
    "grad",
    "grad_and_hessian",
    "grad_and_hessian_with_value",
    "grad_with_value",
    "gradv",
    "gradv_with_value",
    "hessian",
    "hessian_with_value",
    "hvp",
    "hvp_with_value",
    "jacobian",
    "jacobian_transpose",
    "jacobian_transpose_with_value",
    "jacobian_with_value",
    "jvp",
    "jvp_with_value",
    "laplacian",
    "laplacian_with_value",
    "pullback",
    "trap_checks",
    "vjp",
    "vjp_with_value",
]
