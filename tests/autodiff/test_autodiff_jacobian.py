"""jacobian, jacobian_transpose, jvp, vjp, pullback against analytic and FD Jacobians."""

from __future__ import annotations

import pytest
import torch
from autodiff_reference import DT, VECTOR_FUNCTIONS, fd_jacobian

import rotalumis.autodiff as ad

TOL = {"rtol": 1e-6, "atol": 1e-8}
FD_TOL = {"rtol": 1e-5, "atol": 1e-6}
GEN = torch.Generator().manual_seed(3)


def point(n):
    return torch.randn(n, dtype=DT, generator=GEN)


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("name", sorted(VECTOR_FUNCTIONS))
def test_jacobian_modes(name, mode):
    f, jac_f, n = VECTOR_FUNCTIONS[name]
    x = point(n)
    j = ad.jacobian(f, x, mode=mode)
    torch.testing.assert_close(j, jac_f(x), **TOL)
    torch.testing.assert_close(j, fd_jacobian(f, x), **FD_TOL)
    value, j2 = ad.jacobian_with_value(f, x, mode=mode)
    torch.testing.assert_close(value, f(x))
    torch.testing.assert_close(j2, jac_f(x), **TOL)
    torch.testing.assert_close(ad.jacobian_transpose(f, x, mode=mode), jac_f(x).T, **TOL)
    value, jt = ad.jacobian_transpose_with_value(f, x, mode=mode)
    torch.testing.assert_close(value, f(x))
    torch.testing.assert_close(jt, jac_f(x).T, **TOL)


@pytest.mark.parametrize("name", sorted(VECTOR_FUNCTIONS))
def test_products(name):
    f, jac_f, n = VECTOR_FUNCTIONS[name]
    x = point(n)
    j = jac_f(x)
    fd = fd_jacobian(f, x)
    v = point(n)
    u = point(j.shape[0])
    torch.testing.assert_close(ad.jvp(f, x, v), j @ v, **TOL)
    torch.testing.assert_close(ad.jvp(f, x, v), fd @ v, **FD_TOL)
    value, jv = ad.jvp_with_value(f, x, v)
    torch.testing.assert_close(value, f(x))
    torch.testing.assert_close(jv, j @ v, **TOL)
    torch.testing.assert_close(ad.vjp(f, x, u), j.T @ u, **TOL)
    torch.testing.assert_close(ad.vjp(f, x, u), fd.T @ u, **FD_TOL)
    value, ju = ad.vjp_with_value(f, x, u)
    torch.testing.assert_close(value, f(x))
    torch.testing.assert_close(ju, j.T @ u, **TOL)


def test_pullback_is_reusable_and_batched():
    f, jac_f, n = VECTOR_FUNCTIONS["mixer"]
    x = point(n)
    pb = ad.pullback(f, x)
    torch.testing.assert_close(pb.value, f(x))
    us = torch.randn(6, 5, dtype=DT, generator=GEN)
    for u in us:  # many cotangents, one recorded forward pass
        torch.testing.assert_close(pb(u), jac_f(x).T @ u, **TOL)
    torch.testing.assert_close(pb.batched(us), us @ jac_f(x), **TOL)
    eye = torch.eye(5, dtype=DT)
    torch.testing.assert_close(pb.batched(eye), jac_f(x), **TOL)


def test_tensor_shaped_inputs_and_outputs():
    x = torch.randn(2, 3, dtype=DT, generator=GEN)

    def f(m):  # (2, 3) -> (3, 2)
        return torch.sin(m).T * m.sum()

    j = ad.jacobian(f, x)
    assert j.shape == (3, 2, 2, 3)
    torch.testing.assert_close(j, fd_jacobian(f, x), **FD_TOL)
    torch.testing.assert_close(ad.jacobian(f, x, mode="forward"), j, **TOL)
    jt = ad.jacobian_transpose(f, x)
    assert jt.shape == (2, 3, 3, 2)
    torch.testing.assert_close(jt.reshape(6, 6), j.reshape(6, 6).T)
    v = torch.randn(2, 3, dtype=DT, generator=GEN)
    u = torch.randn(3, 2, dtype=DT, generator=GEN)
    torch.testing.assert_close(ad.jvp(f, x, v), (j.reshape(6, 6) @ v.reshape(6)).reshape(3, 2))
    torch.testing.assert_close(ad.vjp(f, x, u), (j.reshape(6, 6).T @ u.reshape(6)).reshape(2, 3))


def test_scalar_output_and_scalar_input():
    x = torch.tensor([1.0, 2.0], dtype=DT)
    torch.testing.assert_close(ad.jacobian(lambda x: (x**2).sum(), x), 2 * x)
    t = torch.tensor(0.5, dtype=DT)
    j = ad.jacobian(lambda t: torch.stack([t, t**2]), t)
    torch.testing.assert_close(j, torch.stack([torch.ones((), dtype=DT), 2 * t]))


def test_batched_with_vmap():
    f, jac_f, n = VECTOR_FUNCTIONS["linear_tanh"]
    xs = torch.randn(5, n, dtype=DT, generator=GEN)
    vs = torch.randn(5, n, dtype=DT, generator=GEN)
    us = torch.randn(5, 3, dtype=DT, generator=GEN)
    vmap = torch.func.vmap
    js = torch.stack([jac_f(x) for x in xs])
    for mode in ("auto", "forward", "reverse"):
        got = vmap(lambda x, mode=mode: ad.jacobian(f, x, mode=mode))(xs)
        torch.testing.assert_close(got, js, **TOL)
    torch.testing.assert_close(
        vmap(lambda x, v: ad.jvp(f, x, v))(xs, vs), torch.einsum("bij,bj->bi", js, vs), **TOL
    )
    torch.testing.assert_close(
        vmap(lambda x, u: ad.vjp(f, x, u))(xs, us), torch.einsum("bij,bi->bj", js, us), **TOL
    )
    torch.testing.assert_close(
        vmap(lambda x, u: ad.pullback(f, x)(u))(xs, us), torch.einsum("bij,bi->bj", js, us)
    )
    values, jts = vmap(lambda x: ad.jacobian_transpose_with_value(f, x))(xs)
    torch.testing.assert_close(values, vmap(f)(xs))
    torch.testing.assert_close(jts, js.transpose(1, 2), **TOL)
