"""grad, gradv, hessian, hvp, grad_and_hessian, laplacian against analytic and FD values."""

from __future__ import annotations

import pytest
import torch
from autodiff_reference import DT, SCALAR_FIELDS, fd_jacobian

import rotalumis.autodiff as ad

TOL = {"rtol": 1e-6, "atol": 1e-8}
FD_TOL = {"rtol": 1e-5, "atol": 1e-6}
X = torch.tensor([0.3, -0.8, 1.1, 0.4, -0.2], dtype=DT)
V = torch.tensor([1.0, 0.5, -2.0, 0.25, 3.0], dtype=DT)


@pytest.mark.parametrize("name", sorted(SCALAR_FIELDS))
def test_first_order_against_analytic_and_fd(name):
    f, grad_f, _ = SCALAR_FIELDS[name]
    g = ad.grad(f, X)
    torch.testing.assert_close(g, grad_f(X), **TOL)
    torch.testing.assert_close(g, fd_jacobian(f, X), **FD_TOL)
    value, g2 = ad.grad_with_value(f, X)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(g2, g)
    torch.testing.assert_close(ad.gradv(f, X, V), grad_f(X) @ V, **TOL)
    value, gv = ad.gradv_with_value(f, X, V)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(gv, grad_f(X) @ V, **TOL)


@pytest.mark.parametrize("name", sorted(SCALAR_FIELDS))
def test_second_order_against_analytic_and_fd(name):
    f, grad_f, hess_f = SCALAR_FIELDS[name]
    h_true = hess_f(X)
    h = ad.hessian(f, X)
    torch.testing.assert_close(h, h_true, **TOL)
    torch.testing.assert_close(h, fd_jacobian(grad_f, X), **FD_TOL)
    torch.testing.assert_close(h, fd_jacobian(lambda x: ad.grad(f, x), X), **FD_TOL)
    value, h2 = ad.hessian_with_value(f, X)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(h2, h_true, **TOL)

    g, h3 = ad.grad_and_hessian(f, X)
    torch.testing.assert_close(g, grad_f(X), **TOL)
    torch.testing.assert_close(h3, h_true, **TOL)
    value, g, h4 = ad.grad_and_hessian_with_value(f, X)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(g, grad_f(X), **TOL)
    torch.testing.assert_close(h4, h_true, **TOL)

    torch.testing.assert_close(ad.hvp(f, X, V), h_true @ V, **TOL)
    # H v is the directional derivative of the gradient along v
    fd_hv = (grad_f(X + 1e-5 * V) - grad_f(X - 1e-5 * V)) / 2e-5
    torch.testing.assert_close(ad.hvp(f, X, V), fd_hv, **FD_TOL)
    value, hv = ad.hvp_with_value(f, X, V)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(hv, h_true @ V, **TOL)

    torch.testing.assert_close(ad.laplacian(f, X), torch.trace(h_true), **TOL)
    torch.testing.assert_close(ad.laplacian(f, X, chunk_size=2), torch.trace(h_true), **TOL)
    torch.testing.assert_close(ad.laplacian(f, X), torch.trace(fd_jacobian(grad_f, X)), **FD_TOL)
    value, lap = ad.laplacian_with_value(f, X, chunk_size=3)
    torch.testing.assert_close(value, f(X))
    torch.testing.assert_close(lap, torch.trace(h_true), **TOL)


def test_matrix_shaped_input():
    x = torch.arange(6, dtype=DT).reshape(2, 3) / 5

    def f(m):
        return (m**3).sum() + m[0, 1] * m[1, 2]

    g = ad.grad(f, x)
    assert g.shape == (2, 3)
    expected = 3 * x**2
    expected[0, 1] += x[1, 2]
    expected[1, 2] += x[0, 1]
    torch.testing.assert_close(g, expected)
    h = ad.hessian(f, x)
    assert h.shape == (2, 3, 2, 3)
    torch.testing.assert_close(
        h.reshape(6, 6), fd_jacobian(lambda m: ad.grad(f, m), x).reshape(6, 6), **FD_TOL
    )
    torch.testing.assert_close(ad.laplacian(f, x), (6 * x).sum())
    torch.testing.assert_close(
        ad.hvp(f, x, torch.ones_like(x)), (h.reshape(6, 6) @ torch.ones(6, dtype=DT)).reshape(2, 3)
    )


def test_scalar_output_of_shape_one_is_accepted():
    value, g = ad.grad_with_value(lambda x: (x**2).sum().reshape(1), X)
    assert value.shape == ()
    torch.testing.assert_close(g, 2 * X)


def test_batched_with_vmap():
    xs = torch.randn(4, 5, dtype=DT, generator=torch.Generator().manual_seed(0))
    vs = torch.randn(4, 5, dtype=DT, generator=torch.Generator().manual_seed(1))
    f, grad_f, hess_f = SCALAR_FIELDS["sin_exp"]
    vmap = torch.func.vmap
    torch.testing.assert_close(vmap(lambda x: ad.grad(f, x))(xs), vmap(grad_f)(xs), **TOL)
    torch.testing.assert_close(
        vmap(lambda x, v: ad.gradv(f, x, v))(xs, vs), (vmap(grad_f)(xs) * vs).sum(1), **TOL
    )
    hs = torch.stack([hess_f(x) for x in xs])
    torch.testing.assert_close(vmap(lambda x: ad.hessian(f, x))(xs), hs, **TOL)
    torch.testing.assert_close(
        vmap(lambda x, v: ad.hvp(f, x, v))(xs, vs), torch.einsum("bij,bj->bi", hs, vs), **TOL
    )
    torch.testing.assert_close(
        vmap(lambda x: ad.laplacian(f, x, chunk_size=2))(xs), hs.diagonal(0, 1, 2).sum(1), **TOL
    )
    values, gs, hs2 = vmap(lambda x: ad.grad_and_hessian_with_value(f, x))(xs)
    torch.testing.assert_close(values, vmap(f)(xs))
    torch.testing.assert_close(gs, vmap(grad_f)(xs), **TOL)
    torch.testing.assert_close(hs2, hs, **TOL)
