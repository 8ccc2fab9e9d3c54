"""diff, diff2, diffn (+ *_with_value) against analytic derivatives and finite differences."""

from __future__ import annotations

import math

import pytest
import torch
from autodiff_reference import DT, fd_diff

import rotalumis.autodiff as ad

X0 = torch.tensor(0.7, dtype=DT)
TOL = {"rtol": 1e-6, "atol": 1e-8}


def poly(t):
    return t**5 - 2 * t**3 + t


def poly_d(t, n):
    coeffs = {5: 1.0, 3: -2.0, 1: 1.0}
    total = torch.zeros((), dtype=DT)
    for power, c in coeffs.items():
        if n <= power:
            total = total + c * math.perm(power, n) * t ** (power - n)
    return total


def curve(t):
    """R -> R^3."""
    return torch.stack([t**2, torch.sin(t), torch.exp(2 * t)])


def curve_d(t, n):
    square = [t**2, 2 * t, torch.full_like(t, 2.0)][n] if n <= 2 else torch.zeros_like(t)
    sine = torch.sin(t + n * math.pi / 2)
    return torch.stack([square, sine, 2.0**n * torch.exp(2 * t)])


CASES = {
    "poly": (poly, poly_d),
    "curve": (curve, curve_d),
    "exp_sin": (lambda t: torch.exp(torch.sin(t)), None),
}


@pytest.mark.parametrize("name", ["poly", "curve"])
def test_diff_family_matches_analytic(name):
    f, df = CASES[name]
    torch.testing.assert_close(ad.diff(f, X0), df(X0, 1), **TOL)
    torch.testing.assert_close(ad.diff2(f, X0), df(X0, 2), **TOL)
    for n in range(6):
        torch.testing.assert_close(ad.diffn(f, X0, n), df(X0, n), **TOL)
        value, d = ad.diffn_with_value(f, X0, n)
        torch.testing.assert_close(value, f(X0))
        torch.testing.assert_close(d, df(X0, n), **TOL)
    v1, d1 = ad.diff_with_value(f, X0)
    v2, d2 = ad.diff2_with_value(f, X0)
    torch.testing.assert_close(v1, f(X0))
    torch.testing.assert_close(v2, f(X0))
    torch.testing.assert_close(d1, df(X0, 1), **TOL)
    torch.testing.assert_close(d2, df(X0, 2), **TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_diff_family_matches_finite_differences(name):
    f = CASES[name][0]
    torch.testing.assert_close(ad.diff(f, X0), fd_diff(f, X0), rtol=1e-6, atol=1e-8)
    # each order is the central difference of the previous one
    torch.testing.assert_close(
        ad.diff2(f, X0), fd_diff(lambda t: ad.diff(f, t), X0), rtol=1e-6, atol=1e-8
    )
    for n in (3, 4):
        torch.testing.assert_close(
            ad.diffn(f, X0, n),
            fd_diff(lambda t, n=n: ad.diffn(f, t, n - 1), X0),
            rtol=1e-5,
            atol=1e-6,
        )


def test_diff_accepts_python_numbers_and_float32():
    assert ad.diff(torch.sin, 0.0).item() == pytest.approx(1.0)
    x32 = torch.tensor(1.0)
    d = ad.diff(lambda t: t**2, x32)
    assert d.dtype == torch.float32 and d.item() == pytest.approx(2.0)


def test_diffn_zero_is_value_and_nested_diff_equals_diffn():
    f = CASES["exp_sin"][0]
    torch.testing.assert_close(ad.diffn(f, X0, 0), f(X0))

    def d1(t):
        return ad.diff(f, t)

    def d2(t):
        return ad.diff(d1, t)

    torch.testing.assert_close(ad.diff(d2, X0), ad.diffn(f, X0, 3), **TOL)


def test_diff_batched_with_vmap():
    xs = torch.linspace(-1, 1, 7, dtype=DT)
    for op, n in ((ad.diff, 1), (ad.diff2, 2)):
        batched = torch.func.vmap(lambda t, op=op: op(curve, t))(xs)
        expected = torch.stack([curve_d(t, n) for t in xs])
        torch.testing.assert_close(batched, expected, **TOL)
    values, d3 = torch.func.vmap(lambda t: ad.diffn_with_value(poly, t, 3))(xs)
    torch.testing.assert_close(values, poly(xs))
    torch.testing.assert_close(d3, torch.stack([poly_d(t, 3) for t in xs]), **TOL)
