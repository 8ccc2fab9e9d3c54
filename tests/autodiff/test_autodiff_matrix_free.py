"""Matrix-free products never build the matrix: huge inputs and call counts.

At n = 200_000 a dense Jacobian or Hessian has 4e10 entries (320 GB in float64): if any of
these operations built it, the test would die of memory or run for hours instead of seconds.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
import torch

import rotalumis.autodiff as ad

DT = torch.float64
N = 200_000
BUDGET_S = 20.0  # generous for a loaded 2-core machine; each op takes well under a second


@pytest.fixture(scope="module")
def big():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(N, dtype=DT, generator=gen)
    v = torch.randn(N, dtype=DT, generator=gen)
    u = torch.randn(N, dtype=DT, generator=gen)
    return x, v, u


def chain(x):
    """Scalar field with a tridiagonal Hessian: diag 3 x^2, off-diagonals 1."""
    return (x**4).sum() / 4 + (x[:-1] * x[1:]).sum()


def chain_hv(x, v):
    hv = 3 * x**2 * v
    hv[1:] += v[:-1]
    hv[:-1] += v[1:]
    return hv


def shift_map(x):
    """R^n -> R^n with J = diag(sech^2(x) * roll(x)) + tanh(x_i) at (i, i-1)."""
    return torch.tanh(x) * torch.roll(x, 1)


def shift_jv(x, v):
    return (1 - torch.tanh(x) ** 2) * torch.roll(x, 1) * v + torch.tanh(x) * torch.roll(v, 1)


def shift_jtu(x, u):
    return (1 - torch.tanh(x) ** 2) * torch.roll(x, 1) * u + torch.roll(torch.tanh(x) * u, -1)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S, f"took {elapsed:.1f}s: was a dense matrix built?"
    return out


def test_hvp_on_huge_input(big):
    x, v, _ = big
    torch.testing.assert_close(timed(lambda: ad.hvp(chain, x, v)), chain_hv(x, v))
    value, hv = timed(lambda: ad.hvp_with_value(chain, x, v))
    torch.testing.assert_close(value, chain(x))
    torch.testing.assert_close(hv, chain_hv(x, v))


def test_gradient_products_on_huge_input(big):
    x, v, _ = big
    grad_true = x**3
    grad_true[1:] += x[:-1]
    grad_true[:-1] += x[1:]
    torch.testing.assert_close(timed(lambda: ad.grad(chain, x)), grad_true)
    torch.testing.assert_close(timed(lambda: ad.gradv(chain, x, v)), grad_true @ v)


def test_jvp_vjp_pullback_on_huge_input(big):
    x, v, u = big
    torch.testing.assert_close(timed(lambda: ad.jvp(shift_map, x, v)), shift_jv(x, v))
    torch.testing.assert_close(timed(lambda: ad.vjp(shift_map, x, u)), shift_jtu(x, u))
    pb = timed(lambda: ad.pullback(shift_map, x))
    for w in (u, v, x):
        torch.testing.assert_close(timed(lambda w=w: pb(w)), shift_jtu(x, w))


MEMORY_PROBE = """
import resource, sys
import torch
import rotalumis.autodiff as ad
n = int(sys.argv[1])
x = torch.linspace(-1, 1, n, dtype=torch.float64)
ad.laplacian(lambda y: (y**3).sum(), x[:50])
ad.div(torch.sin, x[:50])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lap = ad.laplacian(lambda y: (y**3).sum(), x)
div = ad.div(torch.sin, x)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert torch.allclose(lap, (6 * x).sum()) and torch.allclose(div, torch.cos(x).sum())
print((after - before) * 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_laplacian_and_div_memory_stays_below_the_dense_matrix():
    # The exact trace needs n directional second derivatives (O(n^2) time for this f), so it
    # cannot run at n = 200_000; at n = 6000 the dense Hessian alone is 288 MB (and building
    # it with a vmapped identity another 288 MB). The chunked trace must stay below
    # the Hessian alone (it needs ~100 MiB, independent of n, with the default chunk size).
    # Peak RSS is measured in a fresh process, whose high-water mark is not polluted by others.
    n = 6000
    dense_bytes = n * n * 8
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(n)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    growth = int(out.stdout.split()[-1])
    assert growth < dense_bytes, f"peak memory grew by {growth / 2**20:.0f} MiB"


class CountingFunction:
    """Counts the Python-level calls of ``fn`` (under vmap, one call handles a whole batch)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return self.fn(x)


X = torch.linspace(-1, 1, 10, dtype=DT)
W = torch.ones(10, dtype=DT)


@pytest.mark.parametrize(
    ("run", "expected_calls"),
    [
        (lambda f: ad.grad(f, X), 1),
        (lambda f: ad.grad_with_value(f, X), 1),
        (lambda f: ad.gradv(f, X, W), 1),
        (lambda f: ad.hvp(f, X, W), 1),
        (lambda f: ad.hvp_with_value(f, X, W), 1),
        (lambda f: ad.hessian(f, X), 1),
        (lambda f: ad.grad_and_hessian_with_value(f, X), 1),
        (lambda f: ad.laplacian(f, X), 1),
        (lambda f: ad.laplacian(f, X, chunk_size=3), math.ceil(10 / 3)),
        (lambda f: ad.diffn(lambda t: f(t * X), torch.tensor(1.0, dtype=DT), 4), 1),
    ],
)
def test_scalar_field_call_counts(run, expected_calls):
    f = CountingFunction(lambda x: (torch.sin(x) * x).sum())
    run(f)
    assert f.calls == expected_calls


@pytest.mark.parametrize(
    ("run", "expected_calls"),
    [
        (lambda f: ad.jvp(f, X, W), 1),
        (lambda f: ad.vjp(f, X, W), 1),
        (lambda f: ad.jacobian(f, X, mode="reverse"), 1),
        (lambda f: ad.jacobian(f, X, mode="forward"), 1),
        (lambda f: ad.jacobian(f, X), 1),  # m <= n: the recorded reverse pass is reused
        (lambda f: ad.jacobian(lambda x: f(x).repeat(2), X), 2),  # m > n: one extra, forward
        (lambda f: ad.div(f, X, chunk_size=4), 3),
        (lambda f: ad.curl_and_div_with_value(f, X[:3]), 1),
    ],
)
def test_vector_function_call_counts(run, expected_calls):
    f = CountingFunction(lambda x: torch.tanh(x) * x.sum())
    run(f)
    assert f.calls == expected_calls


def test_pullback_records_once_for_many_cotangents():
    f = CountingFunction(lambda x: torch.tanh(x) * x.sum())
    pb = ad.pullback(f, X)
    for k in range(5):
        pb(torch.roll(W, k) * k)
    pb.batched(torch.eye(10, dtype=DT))
    assert f.calls == 1


def test_default_chunk_size_bounds_the_basis_entries():
    from rotalumis.autodiff._trace import CHUNK_ENTRY_BUDGET, default_chunk_size

    assert default_chunk_size(10) == 10
    assert default_chunk_size(1000) == 1000  # the benchmark's size: one vectorized pass
    for n in (5000, 10**5, 10**7):
        assert default_chunk_size(n) * n <= max(CHUNK_ENTRY_BUDGET, n)
        assert default_chunk_size(n) >= 1
