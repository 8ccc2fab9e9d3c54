"""Reference derivatives for the autodiff tests: float64 central differences and test functions
with analytic derivatives.

Central differences in float64 with step h have truncation error O(h^2) and rounding error
O(eps / h); with h = 1e-5 both are ~1e-10 relative for the smooth, O(1)-scaled functions below,
so the tests compare with rtol/atol 1e-6 (first derivatives) and 1e-5 (differences of
derivatives).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

DT = torch.float64
H = 1e-5


def fd_jacobian(f: Callable[[Tensor], Tensor], x: Tensor, h: float = H) -> Tensor:
    """Central-difference Jacobian of ``f`` at ``x``, shape ``f(x).shape + x.shape``."""
    x = x.detach()
    flat = x.reshape(-1)
    columns = []
    for j in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[j] = h
        up = f((flat + e).reshape(x.shape))
        down = f((flat - e).reshape(x.shape))
        columns.append((up - down) / (2 * h))
    out_shape = columns[0].shape
    jac = torch.stack([c.reshape(-1) for c in columns], dim=-1)
    return jac.reshape(*out_shape, *x.shape)


def fd_diff(f: Callable[[Tensor], Tensor], x: Tensor, h: float = H) -> Tensor:
    """Central-difference derivative of ``f: R -> R^...`` at scalar ``x``."""
    return (f(x + h) - f(x - h)) / (2 * h)


# ---- scalar fields R^n -> R with analytic gradient and Hessian -------------------------------


def rosenbrock(x: Tensor) -> Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def rosenbrock_grad(x: Tensor) -> Tensor:
    g = torch.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[:-1] += -400 * x[:-1] * d - 2 * (1 - x[:-1])
    g[1:] += 200 * d
    return g


def rosenbrock_hessian(x: Tensor) -> Tensor:
    n = x.numel()
    h = torch.zeros(n, n, dtype=x.dtype)
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def logsumexp(x: Tensor) -> Tensor:
    return torch.logsumexp(x, dim=0)


def logsumexp_grad(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=0)


def logsumexp_hessian(x: Tensor) -> Tensor:
    p = torch.softmax(x, dim=0)
    return torch.diag(p) - torch.outer(p, p)


def sin_exp(x: Tensor) -> Tensor:
    return (torch.sin(x) * torch.exp(x / 2)).sum()


def sin_exp_grad(x: Tensor) -> Tensor:
    return torch.exp(x / 2) * (torch.cos(x) + 0.5 * torch.sin(x))


def sin_exp_hessian(x: Tensor) -> Tensor:
    return torch.diag(torch.exp(x / 2) * (torch.cos(x) - 0.75 * torch.sin(x)))


SCALAR_FIELDS = {
    "rosenbrock": (rosenbrock, rosenbrock_grad, rosenbrock_hessian),
    "logsumexp": (logsumexp, logsumexp_grad, logsumexp_hessian),
    "sin_exp": (sin_exp, sin_exp_grad, sin_exp_hessian),
}


# ---- vector functions R^n -> R^m with analytic Jacobian --------------------------------------

A = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.5, -1.0, 2.0], [2.0, 0.0, 1.0, -1.0]], dtype=DT)


def linear_tanh(x: Tensor) -> Tensor:
    """R^4 -> R^3: tanh(A x)."""
    return torch.tanh(A @ x)


def linear_tanh_jacobian(x: Tensor) -> Tensor:
    return (1 - torch.tanh(A @ x) ** 2)[:, None] * A


def mixer(x: Tensor) -> Tensor:
    """R^3 -> R^5."""
    return torch.stack(
        [x[0] * x[1], torch.sin(x[2]), x[0] ** 2, torch.exp(x[1] - x[2]), x[0] * x[1] * x[2]]
    )


def mixer_jacobian(x: Tensor) -> Tensor:
    a, b, c = x
    z = torch.zeros((), dtype=x.dtype)
    e = torch.exp(b - c)
    rows = [
        [b, a, z],
        [z, z, torch.cos(c)],
        [2 * a, z, z],
        [z, e, -e],
        [b * c, a * c, a * b],
    ]
    return torch.stack([torch.stack(r) for r in rows])


VECTOR_FUNCTIONS = {
    "linear_tanh": (linear_tanh, linear_tanh_jacobian, 4),
    "mixer": (mixer, mixer_jacobian, 3),
}


# ---- vector fields R^3 -> R^3 with analytic curl and divergence ------------------------------


def field(p: Tensor) -> Tensor:
    x, y, z = p
    return torch.stack([y * z**2, x**3, torch.sin(x * y)])


def field_curl(p: Tensor) -> Tensor:
    x, y, z = p
    c = torch.cos(x * y)
    return torch.stack([x * c, 2 * y * z - y * c, 3 * x**2 - z**2])


def field_div(p: Tensor) -> Tensor:
    return torch.zeros((), dtype=p.dtype)


def swirl(p: Tensor) -> Tensor:
    x, y, z = p
    return torch.stack([x * y, y * z, z * x]) + torch.exp(p)


def swirl_curl(p: Tensor) -> Tensor:
    x, y, z = p
    return torch.stack([-y, -z, -x])


def swirl_div(p: Tensor) -> Tensor:
    return p.sum() + torch.exp(p).sum()


VECTOR_FIELDS = {
    "field": (field, field_curl, field_div),
    "swirl": (swirl, swirl_curl, swirl_div),
}
