"""Nested derivatives (no perturbation confusion) and composition with vmap."""

from __future__ import annotations

import torch
from autodiff_reference import DT, SCALAR_FIELDS, fd_diff, fd_jacobian

import rotalumis.autodiff as ad

TOL = {"rtol": 1e-6, "atol": 1e-8}
FD_TOL = {"rtol": 1e-5, "atol": 1e-6}


def test_d_dx_of_x_times_d_dy_of_xy_is_2x():
    def inner_derivative(x):
        return x * ad.diff(lambda y: x * y, torch.tensor(1.5, dtype=DT))  # = x * x

    for x0 in (-1.0, 0.5, 3.0):
        x = torch.tensor(x0, dtype=DT)
        torch.testing.assert_close(ad.diff(inner_derivative, x), 2 * x)


def test_siskind_pearlmutter_perturbation_confusion():
    # D(x -> x * D(y -> x + y)(1))(1): the inner derivative is 1, so the answer is 1.
    # Confusing the two perturbations gives 2.
    one = torch.tensor(1.0, dtype=DT)
    result = ad.diff(lambda x: x * ad.diff(lambda y: x + y, one), one)
    torch.testing.assert_close(result, one)
    # the same example through the other forward/reverse combinations
    assert ad.grad(lambda x: x * ad.diff(lambda y: x + y, one), one).item() == 1.0
    assert ad.diff(lambda x: x * ad.grad(lambda y: x + y, one), one).item() == 1.0
    assert ad.grad(lambda x: x * ad.grad(lambda y: x + y, one), one).item() == 1.0


def test_gradient_of_a_function_that_takes_a_derivative():
    x = torch.tensor([0.3, -0.7, 1.2], dtype=DT)

    def g(x):  # g(x) = d/dt sum(sin(x t)) at t=1 = sum(x cos x)
        return ad.diff(lambda t: torch.sin(x * t).sum(), torch.tensor(1.0, dtype=DT))

    analytic = torch.cos(x) - x * torch.sin(x)
    torch.testing.assert_close(ad.grad(g, x), analytic, **TOL)
    torch.testing.assert_close(ad.grad(g, x), fd_jacobian(g, x), **FD_TOL)
    torch.testing.assert_close(
        ad.hessian(g, x), torch.diag(-2 * torch.sin(x) - x * torch.cos(x)), **TOL
    )


def test_derivatives_of_second_order_operations():
    f, grad_f, hess_f = SCALAR_FIELDS["sin_exp"]
    x = torch.tensor([0.2, -0.4, 0.9, 1.3], dtype=DT)
    # grad of the Laplacian of sum(sin(x) e^{x/2}): the diagonal third derivative
    third = torch.exp(x / 2) * (-0.25 * torch.cos(x) - 1.375 * torch.sin(x))
    torch.testing.assert_close(ad.grad(lambda y: ad.laplacian(f, y), x), third, **TOL)
    torch.testing.assert_close(
        ad.grad(lambda y: ad.laplacian(f, y), x),
        fd_jacobian(lambda y: ad.laplacian(f, y), x),
        **FD_TOL,
    )
    # the Jacobian of the gradient is the Hessian; the Hessian of the Laplacian is diagonal
    torch.testing.assert_close(ad.jacobian(lambda y: ad.grad(f, y), x), hess_f(x), **TOL)
    fourth = torch.exp(x / 2) * (-1.5 * torch.cos(x) - 0.4375 * torch.sin(x))
    torch.testing.assert_close(
        ad.hessian(lambda y: ad.laplacian(f, y), x), torch.diag(fourth), **TOL
    )
    # grad of the squared gradient norm is 2 H g
    torch.testing.assert_close(
        ad.grad(lambda y: (ad.grad(f, y) ** 2).sum(), x), 2 * hess_f(x) @ grad_f(x), **TOL
    )
    # derivative along a line of a directional derivative is v^T H v
    v = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=DT)
    t0 = torch.tensor(0.0, dtype=DT)
    torch.testing.assert_close(
        ad.diff(lambda t: ad.gradv(f, x + t * v, v), t0), v @ hess_f(x) @ v, **TOL
    )
    torch.testing.assert_close(ad.hvp(f, x, v), hess_f(x) @ v, **TOL)


def test_outer_variable_captured_in_inner_operations():
    x0 = torch.tensor([0.5, 1.5], dtype=DT)
    y0 = torch.tensor([2.0, -1.0], dtype=DT)

    def outer(x):  # sum(x) * d/dy (x . y) along v = sum(x) * (x . v)
        v = torch.tensor([1.0, 1.0], dtype=DT)
        return x.sum() * ad.gradv(lambda y: (x * y).sum(), y0, v)

    # d/dx [s * s] with s = x0 + x1: 2 s
    s = x0.sum()
    torch.testing.assert_close(ad.grad(outer, x0), torch.stack([2 * s, 2 * s]))

    def inner_jacobian_trace(x):  # trace of d/dy (x * y^2) = sum(2 x y)
        return ad.div(lambda y: x * y**2, y0)

    torch.testing.assert_close(ad.grad(inner_jacobian_trace, x0), 2 * y0)
    torch.testing.assert_close(
        ad.jacobian(lambda x: ad.vjp(lambda y: x * y**2, y0, x), x0),
        torch.diag(4 * x0 * y0),
    )


def test_triple_nesting_matches_diffn_and_fd():
    def f(t):
        return torch.exp(torch.sin(t)) * t

    t0 = torch.tensor(0.4, dtype=DT)

    def d3(t):
        return ad.diff(lambda a: ad.diff(lambda b: ad.diff(f, b), a), t)

    torch.testing.assert_close(d3(t0), ad.diffn(f, t0, 3), **TOL)
    torch.testing.assert_close(
        ad.grad(lambda t: ad.diff2(f, t), t0), fd_diff(lambda t: ad.diff2(f, t), t0), **FD_TOL
    )


def test_vmap_over_nested_operations_and_vmap_inside_f():
    xs = torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(5))
    f = SCALAR_FIELDS["logsumexp"][0]
    vmap = torch.func.vmap
    batched = vmap(lambda x: ad.grad(lambda y: ad.laplacian(f, y), x))(xs)
    loop = torch.stack([ad.grad(lambda y: ad.laplacian(f, y), x) for x in xs])
    torch.testing.assert_close(batched, loop, **TOL)

    def batched_inside(x):  # f uses vmap internally
        return vmap(lambda row: (row * x).sum())(torch.eye(4, dtype=DT)).pow(2).sum()

    torch.testing.assert_close(ad.grad(batched_inside, xs[0]), 2 * xs[0], **TOL)
    torch.testing.assert_close(ad.hessian(batched_inside, xs[0]), 2 * torch.eye(4, dtype=DT))


def test_composes_with_classic_autograd_on_top():
    # optimizers differentiate through these operations with loss.backward()
    x = torch.tensor([0.5, -1.0, 2.0], dtype=DT, requires_grad=True)

    def f(y):
        return (y**3).sum()

    ad.laplacian(f, x).backward()  # d/dx sum(6 x) = 6
    torch.testing.assert_close(x.grad, torch.full((3,), 6.0, dtype=DT))
    x.grad = None
    (ad.grad(f, x) ** 2).sum().backward()  # d/dx sum(9 x^4) = 36 x^3
    torch.testing.assert_close(x.grad, 36 * x.detach() ** 3)
