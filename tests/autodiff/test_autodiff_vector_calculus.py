"""curl, div, curl_and_div against analytic values and FD Jacobians."""

from __future__ import annotations

import pytest
import torch
from autodiff_reference import DT, VECTOR_FIELDS, fd_jacobian

import rotalumis.autodiff as ad

TOL = {"rtol": 1e-6, "atol": 1e-8}
FD_TOL = {"rtol": 1e-5, "atol": 1e-6}
P = torch.tensor([0.4, -1.2, 0.9], dtype=DT)


def curl_from(j):
    return torch.stack([j[2, 1] - j[1, 2], j[0, 2] - j[2, 0], j[1, 0] - j[0, 1]])


@pytest.mark.parametrize("name", sorted(VECTOR_FIELDS))
def test_curl_and_div(name):
    f, curl_f, div_f = VECTOR_FIELDS[name]
    fd = fd_jacobian(f, P)
    torch.testing.assert_close(ad.curl(f, P), curl_f(P), **TOL)
    torch.testing.assert_close(ad.curl(f, P), curl_from(fd), **FD_TOL)
    value, c = ad.curl_with_value(f, P)
    torch.testing.assert_close(value, f(P))
    torch.testing.assert_close(c, curl_f(P), **TOL)

    torch.testing.assert_close(ad.div(f, P), div_f(P), **TOL)
    torch.testing.assert_close(ad.div(f, P), torch.trace(fd), **FD_TOL)
    value, d = ad.div_with_value(f, P, chunk_size=2)
    torch.testing.assert_close(value, f(P))
    torch.testing.assert_close(d, div_f(P), **TOL)

    c, d = ad.curl_and_div(f, P)
    torch.testing.assert_close(c, curl_f(P), **TOL)
    torch.testing.assert_close(d, div_f(P), **TOL)
    value, c, d = ad.curl_and_div_with_value(f, P)
    torch.testing.assert_close(value, f(P))
    torch.testing.assert_close(c, curl_f(P), **TOL)
    torch.testing.assert_close(d, div_f(P), **TOL)


def test_curl_of_gradient_is_zero_and_div_of_gradient_is_laplacian():
    def potential(p):
        return torch.sin(p[0] * p[1]) + p[2] ** 3 * p[0]

    def gradient_field(p):
        return ad.grad(potential, p)

    c, d = ad.curl_and_div(gradient_field, P)
    torch.testing.assert_close(c, torch.zeros(3, dtype=DT), atol=1e-12, rtol=0)
    torch.testing.assert_close(d, ad.laplacian(potential, P), **TOL)


def test_div_in_n_dimensions_and_matrix_shapes():
    x = torch.linspace(-1, 1, 7, dtype=DT)

    def f(v):
        return torch.tanh(v) * v.sum()

    torch.testing.assert_close(ad.div(f, x), torch.trace(fd_jacobian(f, x)), **FD_TOL)
    for chunk in (1, 3, 7, 100):
        torch.testing.assert_close(ad.div(f, x, chunk_size=chunk), ad.div(f, x), **TOL)
    m = x[:6].reshape(2, 3)
    torch.testing.assert_close(ad.div(lambda a: a**2, m), (2 * m).sum())


def test_batched_with_vmap():
    f, curl_f, div_f = VECTOR_FIELDS["swirl"]
    ps = torch.randn(5, 3, dtype=DT, generator=torch.Generator().manual_seed(2))
    vmap = torch.func.vmap
    torch.testing.assert_close(vmap(lambda p: ad.curl(f, p))(ps), vmap(curl_f)(ps), **TOL)
    torch.testing.assert_close(vmap(lambda p: ad.div(f, p))(ps), vmap(div_f)(ps), **TOL)
    values, cs, ds = vmap(lambda p: ad.curl_and_div_with_value(f, p))(ps)
    torch.testing.assert_close(values, vmap(f)(ps))
    torch.testing.assert_close(cs, vmap(curl_f)(ps), **TOL)
    torch.testing.assert_close(ds, vmap(div_f)(ps), **TOL)
    values, ds = vmap(lambda p: ad.div_with_value(f, p, chunk_size=2))(ps)
    torch.testing.assert_close(values, vmap(f)(ps))
    torch.testing.assert_close(ds, vmap(div_f)(ps), **TOL)
