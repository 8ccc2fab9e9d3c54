"""Distributions: densities against SciPy, sampler statistics, gradients, validation.

Statistical tolerances (fixed seeds throughout, so every run is identical):

* Sample means must lie within 5 Monte Carlo standard errors of the analytic mean, the
  standard error being ``sqrt(Var[X] / N)``. Sample variances likewise, with the standard
  error of the sample variance ``sqrt((m4 - s^4) / N)`` estimated from the sample's own
  fourth central moment ``m4``. Under the CLT a correct sampler fails one such check with
  probability ~6e-7.
* Goodness of fit (Kolmogorov-Smirnov for continuous kinds, chi-square with bins of expected
  count >= 5 for discrete ones) must not reject at level 1e-3.
* Pathwise (rsample) gradients of ``E[X]`` and ``E[X^2]`` are averages of per-sample
  gradients; they must lie within 5 standard errors (std of the per-sample gradients /
  sqrt(N)) of the exact derivative, which is a central finite difference of SciPy's
  closed-form moments.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.integrate
import scipy.stats as st
import torch

from rotalumis.core.distributions import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Distribution,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    Normal,
    Poisson,
    TruncatedNormal,
    Uniform,
    Weibull,
)
from rotalumis.core.errors import DistributionError
from rotalumis.core.rng import RNG

INF = math.inf
N_SCALAR = 8000  # scalar-path draws per statistical check
N_TENSOR = 20000  # tensor-path draws per statistical check


class _MixtureRef:
    """SciPy-like reference for a finite mixture of frozen SciPy distributions."""

    def __init__(self, comps: list[Any], weights: list[float], discrete: bool) -> None:
        self.comps, self.w, self.discrete = comps, np.asarray(weights), discrete

    def logpdf(self, x: Any) -> Any:
        f = "logpmf" if self.discrete else "logpdf"
        pairs = zip(self.comps, self.w, strict=True)
        terms = np.stack([np.log(w) + getattr(c, f)(x) for c, w in pairs])
        return np.logaddexp.reduce(terms, axis=0)

    logpmf = logpdf

    def cdf(self, x: Any) -> Any:
        return sum(w * c.cdf(x) for c, w in zip(self.comps, self.w, strict=True))

    def mean(self) -> float:
        return float(sum(w * c.mean() for c, w in zip(self.comps, self.w, strict=True)))

    def var(self) -> float:
        m = self.mean()
        return float(
            sum(
                w * (c.var() + (c.mean() - m) ** 2) for c, w in zip(self.comps, self.w, strict=True)
            )
        )


# name -> (constructor, scalar params, scipy reference, discrete, in-support probe values)
CASES: dict[str, tuple[type[Distribution], tuple[Any, ...], Any, bool, list[float]]] = {
    "Normal": (Normal, (0.5, 2.0), st.norm(0.5, 2.0), False, [-3.0, 0.5, 4.2]),
    "Uniform": (Uniform, (-1.0, 3.0), st.uniform(-1.0, 4.0), False, [-1.0, 0.2, 3.0]),
    "Categorical": (
        Categorical,
        ([0.2, 0.5, 0.3],),
        st.rv_discrete(values=([0, 1, 2], [0.2, 0.5, 0.3])),
        True,
        [0, 1, 2],
    ),
    "Poisson-small": (Poisson, (3.5,), st.poisson(3.5), True, [0, 3, 11]),
    "Poisson-large": (Poisson, (40.0,), st.poisson(40.0), True, [20, 40, 61]),
    "Bernoulli": (Bernoulli, (0.3,), st.bernoulli(0.3), True, [0, 1]),
    "Beta": (Beta, (2.0, 3.5), st.beta(2.0, 3.5), False, [0.01, 0.3, 0.97]),
    "Exponential": (Exponential, (1.5,), st.expon(scale=1 / 1.5), False, [0.0, 0.4, 5.0]),
    "Gamma": (Gamma, (2.5, 1.5), st.gamma(2.5, scale=1 / 1.5), False, [0.05, 1.3, 7.0]),
    "Gamma-small-shape": (Gamma, (0.4, 2.0), st.gamma(0.4, scale=0.5), False, [1e-4, 0.2, 3.0]),
    "LogNormal": (
        LogNormal,
        (0.3, 0.6),
        st.lognorm(0.6, scale=math.exp(0.3)),
        False,
        [0.1, 1.3, 9.0],
    ),
    "Binomial-small": (Binomial, (12, 0.3), st.binom(12, 0.3), True, [0, 4, 12]),
    "Binomial-large": (Binomial, (200, 0.6), st.binom(200, 0.6), True, [90, 120, 150]),
    "Weibull": (Weibull, (1.5, 2.2), st.weibull_min(2.2, scale=1.5), False, [0.0, 0.8, 4.0]),
    "TruncatedNormal": (
        TruncatedNormal,
        (0.5, 1.5, -1.0, 2.0),
        st.truncnorm(-1.0, 1.0, loc=0.5, scale=1.5),
        False,
        [-1.0, 0.0, 2.0],
    ),
    "TruncatedNormal-tail": (
        TruncatedNormal,
        (0.0, 1.0, 8.0, 9.0),
        st.truncnorm(8.0, 9.0),
        False,
        [8.0, 8.2, 9.0],
    ),
    "Mixture": (
        Mixture,
        ([Normal(-1.0, 0.5), Normal(2.0, 1.0)], [0.3, 0.7]),
        _MixtureRef([st.norm(-1.0, 0.5), st.norm(2.0, 1.0)], [0.3, 0.7], False),
        False,
        [-1.0, 0.5, 3.0],
    ),
    "Mixture-discrete": (
        Mixture,
        ([Poisson(1.0), Poisson(8.0)], [0.4, 0.6]),
        _MixtureRef([st.poisson(1.0), st.poisson(8.0)], [0.4, 0.6], True),
        True,
        [0, 3, 12],
    ),
}
NAMES = list(CASES)


def make_scalar(name: str) -> Distribution:
    cls, params, *_ = CASES[name]
    return cls(*params)


def make_tensor(
    name: str, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64
) -> Distribution:
    """The same distribution on the tensor path, every parameter a tensor of ``shape``."""
    d = make_scalar(name)
    if isinstance(d, Mixture):
        comps = [make_tensor_like(c, shape, dtype) for c in d.components]
        probs = torch.tensor(d.probs, dtype=dtype).expand((*shape, len(comps)))
        return Mixture(comps, probs)
    return make_tensor_like(d, shape, dtype)


def make_tensor_like(d: Distribution, shape: tuple[int, ...], dtype: torch.dtype) -> Distribution:
    if isinstance(d, Categorical):
        return Categorical(torch.tensor(d.probs, dtype=dtype).expand((*shape, 3)).clone())
    params = {k: torch.full(shape, float(v), dtype=dtype) for k, v in d.params.items()}
    return type(d)(**params)


def ref_logpdf(name: str, x: float) -> float:
    ref, discrete = CASES[name][2], CASES[name][3]
    with np.errstate(divide="ignore"):
        return float(ref.logpmf(x) if discrete else ref.logpdf(x))


def draws(d: Distribution, n: int, seed: int) -> np.ndarray:
    """``n`` draws: a Python loop on the scalar path, one call on the tensor path."""
    rng = RNG(seed)
    if d.is_scalar:
        return np.array([d.sample(rng) for _ in range(n)], dtype=float)
    big = d.expand((n,)) if d.shape == torch.Size() else d
    return np.asarray(big.sample(rng), dtype=float).reshape(-1)


# -- log_prob against SciPy ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_scalar_log_prob_matches_scipy(name: str) -> None:
    d = make_scalar(name)
    assert d.is_scalar
    for x in CASES[name][4]:
        lp = d.log_prob(x)
        assert isinstance(lp, float)
        assert lp == pytest.approx(ref_logpdf(name, x), rel=1e-6, abs=1e-6), x


@pytest.mark.parametrize("name", NAMES)
def test_tensor_log_prob_matches_scipy(name: str) -> None:
    xs = CASES[name][4]
    d = make_tensor(name, (len(xs),))
    assert not d.is_scalar
    lp = d.log_prob(torch.tensor(xs, dtype=torch.float64))
    assert isinstance(lp, torch.Tensor) and lp.shape == (len(xs),)
    expected = [ref_logpdf(name, x) for x in xs]
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-6, atol=1e-6)
    # A scalar distribution given a tensor value answers with a tensor too.
    lp2 = make_scalar(name).log_prob(torch.tensor(xs, dtype=torch.float64))
    np.testing.assert_allclose(np.asarray(lp2), expected, rtol=1e-6, atol=1e-6)


OUTSIDE: dict[str, list[float]] = {
    "Normal": [INF, -INF],
    "Uniform": [-1.5, 3.01, INF],
    "Categorical": [-1, 3, 0.5, INF, math.nan],
    "Poisson-small": [-1, 2.5, INF, math.nan],
    "Poisson-large": [-3, 40.5],
    "Bernoulli": [-1, 2, 0.5, math.nan],
    "Beta": [-0.1, 1.1, INF],
    "Exponential": [-1e-9, -INF, INF],
    "Gamma": [-2.0, INF],
    "Gamma-small-shape": [-1e-9],
    "LogNormal": [0.0, -1.0, INF],
    "Binomial-small": [-1, 13, 1.5, math.nan],
    "Binomial-large": [201, 100.5],
    "Weibull": [-0.5, INF],
    "TruncatedNormal": [-1.01, 2.01, INF],
    "TruncatedNormal-tail": [7.99, 9.01, 0.0],
    "Mixture": [INF],
    "Mixture-discrete": [-1, 2.5],
}


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_outside_support_is_minus_inf(name: str) -> None:
    d, t = make_scalar(name), make_tensor(name)
    for x in OUTSIDE[name]:
        assert d.log_prob(x) == -INF, x
        assert not d.in_support(x)
        assert t.log_prob(torch.tensor(x, dtype=torch.float64)).item() == -INF, x
        assert not t.in_support(torch.tensor(x))
    for x in CASES[name][4]:
        assert d.in_support(x) and t.in_support(torch.tensor(x))


# -- sampler statistics --------------------------------------------------------------------------


def _check_moments(x: np.ndarray, mean: float, var: float) -> None:
    n = len(x)
    se_mean = math.sqrt(var / n)
    assert abs(x.mean() - mean) < 5 * se_mean, (x.mean(), mean, se_mean)
    c = x - x.mean()
    s2 = float((c**2).mean())
    m4 = float((c**4).mean())
    se_var = math.sqrt(max(m4 - s2 * s2, 1e-300) / n)
    assert abs(x.var(ddof=1) - var) < 5 * se_var, (x.var(ddof=1), var, se_var)


def _check_fit(ref: Any, discrete: bool, x: np.ndarray) -> None:
    """Goodness of fit of the draws ``x`` to the SciPy-like reference ``ref``."""
    if not discrete:
        assert st.kstest(x, ref.cdf).pvalue > 1e-3
        return
    values, counts = np.unique(x.astype(int), return_counts=True)
    lo, hi = int(values.min()), int(values.max())
    support = np.arange(lo, hi + 1)
    observed = np.array([counts[values == k].sum() for k in support], dtype=float)
    expected = np.exp(ref.logpmf(support)) * len(x)
    # Lump the tails into the end bins and merge bins until every expected count is >= 5.
    expected[0] += ref.cdf(lo - 1) * len(x)
    expected[-1] += (1.0 - ref.cdf(hi)) * len(x)
    obs_bins, exp_bins, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= 5:
            obs_bins.append(o_acc)
            exp_bins.append(e_acc)
            o_acc = e_acc = 0.0
    obs_bins[-1] += o_acc
    exp_bins[-1] += e_acc
    exp_arr = np.array(exp_bins) * (sum(obs_bins) / sum(exp_bins))
    if len(obs_bins) > 1:
        assert st.chisquare(obs_bins, exp_arr).pvalue > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_scalar_sampler_moments_and_fit(name: str) -> None:
    d = make_scalar(name)
    ref = CASES[name][2]
    assert d.mean == pytest.approx(float(ref.mean()), rel=1e-6, abs=1e-9)
    assert d.variance == pytest.approx(float(ref.var()), rel=1e-6, abs=1e-9)
    x = draws(d, N_SCALAR, seed=11)
    _check_moments(x, float(ref.mean()), float(ref.var()))
    _check_fit(CASES[name][2], CASES[name][3], x)


@pytest.mark.parametrize("name", NAMES)
def test_tensor_sampler_moments_and_fit(name: str) -> None:
    d = make_tensor(name)
    ref = CASES[name][2]
    np.testing.assert_allclose(np.asarray(d.mean), float(ref.mean()), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(d.variance), float(ref.var()), rtol=1e-6)
    x = draws(d, N_TENSOR, seed=12)
    _check_moments(x, float(ref.mean()), float(ref.var()))
    _check_fit(CASES[name][2], CASES[name][3], x)


@pytest.mark.parametrize(
    ("rate"), [0.0, 0.3, 9.99, 10.0, 25.0, 1000.0]
)  # both sides of the inversion / PTRS switch
def test_poisson_sampler_branches(rate: float) -> None:
    d = Poisson(rate)
    x = draws(d, 4000, seed=int(rate * 7) + 1)
    if rate == 0.0:
        assert (x == 0).all()
        return
    _check_moments(x, rate, rate)
    _check_fit(st.poisson(rate), True, x)


@pytest.mark.parametrize(
    ("n", "p"), [(0, 0.5), (7, 0.0), (7, 1.0), (5, 0.1), (30, 0.2), (100, 0.5), (1000, 0.97)]
)  # inversion, BTRS, and the p > 1/2 reflection
def test_binomial_sampler_branches(n: int, p: float) -> None:
    d = Binomial(n, p)
    x = draws(d, 4000, seed=n + 3)
    assert all(isinstance(v, int) for v in (d.sample(RNG(0)), d.sample(RNG(1))))
    if p in (0.0, 1.0) or n == 0:
        assert (x == n * p).all()
        return
    _check_moments(x, n * p, n * p * (1 - p))
    _check_fit(st.binom(n, p), True, x)


@pytest.mark.parametrize("shape", [0.01, 0.3, 1.0, 7.5])
def test_gamma_sampler_shapes(shape: float) -> None:
    x = draws(Gamma(shape, 2.0), 4000, seed=5)
    ref = st.gamma(shape, scale=0.5)
    assert st.kstest(x, ref.cdf).pvalue > 1e-3
    _check_moments(x, float(ref.mean()), float(ref.var()))


# -- reproducibility and value types -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_samples(name: str) -> None:
    for d in (make_scalar(name), make_tensor(name, (4,))):
        r1, r2, r3 = RNG(42), RNG(42), RNG(43)
        s1 = [d.sample(r1) for _ in range(5)]
        s2 = [d.sample(r2) for _ in range(5)]
        for u, v in zip(s1, s2, strict=True):
            assert torch.equal(torch.as_tensor(u), torch.as_tensor(v))
        s3 = [d.sample(r3) for _ in range(5)]
        assert any(
            not torch.equal(torch.as_tensor(u), torch.as_tensor(v))
            for u, v in zip(s1, s3, strict=True)
        )


@pytest.mark.parametrize("name", NAMES)
def test_value_types(name: str) -> None:
    d = make_scalar(name)
    v = d.sample(RNG(0))
    assert type(v) is (int if CASES[name][3] else float)
    t = make_tensor(name, (2, 3), dtype=torch.float32)
    assert t.shape == (2, 3)
    tv = t.sample(RNG(0))
    assert isinstance(tv, torch.Tensor) and tv.shape == (2, 3)
    if isinstance(t, Categorical):
        assert tv.dtype == torch.long
    else:
        assert tv.dtype == torch.float32
    assert t.log_prob(tv).shape == (2, 3)
    assert t.log_prob_sum(tv).shape == ()


@pytest.mark.parametrize(
    ("dist", "fields"),
    [
        (Normal(0.0, 1.0), ["mean", "stddev"]),
        (Uniform(0.0, 1.0), ["low", "high"]),
        (Categorical([1.0]), ["probs"]),
        (Poisson(1.0), ["rate"]),
        (Bernoulli(0.5), ["probs"]),
        (Beta(1.0, 2.0), ["concentration1", "concentration0"]),
        (Exponential(1.0), ["rate"]),
        (Gamma(1.0, 2.0), ["concentration", "rate"]),
        (LogNormal(0.0, 1.0), ["loc", "scale"]),
        (Binomial(3, 0.5), ["total_count", "probs"]),
        (Weibull(1.0, 2.0), ["scale", "concentration"]),
        (TruncatedNormal(0.0, 1.0, -1.0, 1.0), ["mean", "stddev", "low", "high"]),
        (Mixture([Normal(0.0, 1.0)], [1.0]), ["components", "probs"]),
    ],
)
def test_params_in_ppx_field_order(dist: Distribution, fields: list[str]) -> None:
    assert list(dist.params) == fields == list(dist.param_names)
    # Rebuilding from the params (the PPX codec does this positionally) gives the same kind.
    rebuilt = type(dist)(*dist.params.values())
    assert rebuilt.params.keys() == dist.params.keys()
    assert dist.name == type(dist).__name__ or isinstance(dist, Mixture)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_copy_round_trip(name: str) -> None:
    for d in (make_scalar(name), make_tensor(name, (2,))):
        for e in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
            assert type(e) is type(d) and e.is_discrete == d.is_discrete
            assert repr(e) == repr(d)
            x = d.sample(RNG(0))
            torch.testing.assert_close(
                torch.as_tensor(e.log_prob(x)), torch.as_tensor(d.log_prob(x))
            )


def test_int_parameters_take_the_scalar_path() -> None:
    assert Normal(0, 1).params == {"mean": 0.0, "stddev": 1.0}
    assert type(Gamma(2, 1).concentration) is float
    assert Binomial(10.0, 1).params == {"total_count": 10, "probs": 1.0}
    assert Uniform(np.float32(0.0), 2).is_scalar


# -- Categorical representations -------------------------------------------------------------------


def test_categorical_representations() -> None:
    rng = RNG(3)
    listed = Categorical([1.0, 3.0])
    assert listed.is_scalar and listed.probs == (0.25, 0.75)
    assert type(listed.sample(rng)) is int
    assert listed.log_prob(1) == pytest.approx(math.log(0.75))
    assert listed.log_prob(1.0) == listed.log_prob(True)
    # A 1-D tensor without grad is the scalar path.
    one_d = Categorical(torch.tensor([1.0, 3.0]))
    assert one_d.is_scalar and type(one_d.sample(rng)) is int
    assert isinstance(one_d.log_prob(1), float)
    # A 1-D tensor with grad: int values, differentiable log_prob.
    w = torch.tensor([1.0, 3.0], requires_grad=True)
    graded = Categorical(w)
    assert not graded.is_scalar
    k = graded.sample(rng)
    assert type(k) is int
    lp = graded.log_prob(1)
    assert isinstance(lp, torch.Tensor) and lp.shape == ()
    lp.backward()
    # d/dw log(w1 / (w0 + w1)) = (-1/4, 1/3 - 1/4)
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), [-0.25, 1 / 3 - 0.25], rtol=1e-6)
    # Batched: long tensors of the batch shape.
    batched = Categorical(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    v = batched.sample(rng)
    assert v.dtype == torch.long and v.shape == (3,)
    assert v[0] == 0 and v[1] == 1
    np.testing.assert_allclose(
        batched.log_prob(torch.tensor([0, 0, 1])), [0.0, -INF, math.log(0.5)]
    )
    # Logits, list or tensor.
    a = Categorical(logits=[0.0, math.log(3.0)])
    assert a.probs == pytest.approx((0.25, 0.75))
    assert a.log_prob(0) == pytest.approx(math.log(0.25))
    b = Categorical(logits=torch.tensor([[0.0, math.log(3.0)]]))
    np.testing.assert_allclose(b.probs, [[0.25, 0.75]], rtol=1e-6)
    # One category given as a number (PPX sends a 1-element tensor as a scalar).
    assert Categorical(1.0).sample(rng) == 0
    # A zero-weight category is never drawn.
    z = Categorical([0.0, 1.0, 0.0])
    assert {z.sample(rng) for _ in range(200)} == {1}
    assert z.log_prob(0) == -INF and z.in_support(0)


def test_categorical_list_of_tensors_keeps_gradients() -> None:
    p = torch.tensor(0.25, requires_grad=True)
    d = Categorical([p, 1 - p])
    lp = d.log_prob(0)
    assert isinstance(lp, torch.Tensor)
    lp.backward()
    assert p.grad is not None and p.grad.item() == pytest.approx(4.0)


# -- validation ----------------------------------------------------------------------------------

BAD: list[tuple[Callable[[], Any], str]] = [
    (lambda: Normal(0.0, 0.0), "Normal: parameter 'stddev'"),
    (lambda: Normal(math.nan, 1.0), "Normal: parameter 'mean'"),
    (
        lambda: Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, -1.0])),
        "Normal: parameter 'stddev'",
    ),
    (lambda: Uniform(1.0, 1.0), "Uniform: parameter 'high'"),
    (lambda: Uniform(math.inf, 2.0), "Uniform: parameter 'low'"),
    (lambda: Uniform(torch.tensor([0.0, 2.0]), 1.0), "Uniform: parameter 'high'"),
    (lambda: Categorical([0.5, -0.1]), "Categorical: parameter 'probs'"),
    (lambda: Categorical([0.0, 0.0]), "Categorical: parameter 'probs'"),
    (lambda: Categorical([0.5, math.nan]), "Categorical: parameter 'probs'"),
    (lambda: Categorical([]), "Categorical: parameter 'probs'"),
    (lambda: Categorical(["a"]), "Categorical: parameter 'probs'"),
    (lambda: Categorical(torch.tensor([[0.5, -1.0]])), "Categorical: parameter 'probs'"),
    (lambda: Categorical(logits=[0.0, math.inf]), "Categorical: parameter 'logits'"),
    (lambda: Categorical(), "Categorical: give exactly one"),
    (lambda: Categorical([1.0], logits=[1.0]), "Categorical: give exactly one"),
    (lambda: Poisson(-1.0), "Poisson: parameter 'rate'"),
    (lambda: Poisson(math.inf), "Poisson: parameter 'rate'"),
    (lambda: Poisson(torch.tensor([1.0, math.nan])), "Poisson: parameter 'rate'"),
    (lambda: Bernoulli(1.5), "Bernoulli: parameter 'probs'"),
    (lambda: Bernoulli(torch.tensor([-0.1])), "Bernoulli: parameter 'probs'"),
    (lambda: Beta(0.0, 1.0), "Beta: parameter 'concentration1'"),
    (lambda: Beta(1.0, -2.0), "Beta: parameter 'concentration0'"),
    (lambda: Exponential(0.0), "Exponential: parameter 'rate'"),
    (lambda: Gamma(-1.0, 1.0), "Gamma: parameter 'concentration'"),
    (lambda: Gamma(1.0, -1.0), "Gamma: parameter 'rate' must be > 0, got -1.0"),
    (lambda: Gamma(1.0, torch.tensor([1.0, 0.0])), "Gamma: parameter 'rate'"),
    (lambda: LogNormal(0.0, -1.0), "LogNormal: parameter 'scale'"),
    (lambda: LogNormal(-math.inf, 1.0), "LogNormal: parameter 'loc'"),
    (lambda: Binomial(2.5, 0.5), "Binomial: parameter 'total_count'"),
    (lambda: Binomial(-1, 0.5), "Binomial: parameter 'total_count'"),
    (lambda: Binomial(torch.tensor([3.0, 1.5]), 0.5), "Binomial: parameter 'total_count'"),
    (lambda: Binomial(3, 1.1), "Binomial: parameter 'probs'"),
    (lambda: Weibull(0.0, 1.0), "Weibull: parameter 'scale'"),
    (lambda: Weibull(1.0, math.nan), "Weibull: parameter 'concentration'"),
    (lambda: TruncatedNormal(0.0, 0.0, -1.0, 1.0), "TruncatedNormal: parameter 'stddev'"),
    (lambda: TruncatedNormal(0.0, 1.0, 1.0, 1.0), "TruncatedNormal: parameter 'high'"),
    (lambda: TruncatedNormal(0.0, 1.0, math.nan, 1.0), "TruncatedNormal: parameter 'low'"),
    (lambda: TruncatedNormal(math.inf, 1.0, 0.0, 1.0), "TruncatedNormal: parameter 'mean'"),
    (lambda: Mixture([], []), "Mixture: parameter 'components'"),
    (lambda: Mixture([Normal(0.0, 1.0), 3.0], [0.5, 0.5]), "Mixture: parameter 'components'"),
    (
        lambda: Mixture([Normal(0.0, 1.0), Poisson(1.0)], [0.5, 0.5]),
        "Mixture: parameter 'components'",
    ),
    (lambda: Mixture([Normal(0.0, 1.0)], [0.5, 0.5]), "Mixture: parameter 'probs'"),
    (
        lambda: Mixture([Normal(0.0, 1.0), Normal(0.0, 2.0)], [0.5, -0.5]),
        "Categorical: parameter 'probs'",
    ),
    (
        lambda: Mixture([Normal(torch.zeros(2), 1.0), Normal(torch.zeros(3), 1.0)], [0.5, 0.5]),
        "Mixture: parameter 'components'",
    ),
]


@pytest.mark.parametrize(("make", "message"), BAD)
def test_invalid_parameters_raise_naming_the_parameter(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(DistributionError, match=message.replace("(", r"\(")) as info:
        make()
    assert isinstance(info.value, ValueError)


def test_infinite_truncation_bounds_are_allowed() -> None:
    half = TruncatedNormal(0.0, 1.0, 0.0, INF)
    ref = st.halfnorm()
    assert half.mean == pytest.approx(ref.mean(), rel=1e-9)
    assert half.variance == pytest.approx(ref.var(), rel=1e-9)
    assert half.log_prob(0.7) == pytest.approx(ref.logpdf(0.7), rel=1e-9)
    x = draws(half, 3000, seed=2)
    assert (x >= 0).all() and st.kstest(x, ref.cdf).pvalue > 1e-3
    whole = TruncatedNormal(1.0, 2.0, -INF, INF)
    assert whole.log_prob(0.3) == pytest.approx(Normal(1.0, 2.0).log_prob(0.3), rel=1e-12)
    t = TruncatedNormal(torch.tensor([0.0], dtype=torch.float64), 1.0, -INF, torch.tensor([-5.0]))
    np.testing.assert_allclose(t.mean, [st.truncnorm(-INF, -5.0).mean()], rtol=1e-9)


# -- reparameterized gradients --------------------------------------------------------------------

# (constructor, scalar params, scipy moments (mean, var) as a function of the params)
GRAD_CASES: dict[
    str, tuple[type[Distribution], tuple[float, ...], Callable[..., tuple[float, float]]]
] = {
    "Normal": (Normal, (0.5, 1.3), lambda m, s: (m, s * s)),
    "LogNormal": (LogNormal, (0.2, 0.4), lambda m, s: st.lognorm(s, scale=math.exp(m)).stats("mv")),
    "Uniform": (Uniform, (-0.5, 2.0), lambda a, b: st.uniform(a, b - a).stats("mv")),
    "Exponential": (Exponential, (1.7,), lambda r: st.expon(scale=1 / r).stats("mv")),
    "Gamma": (Gamma, (2.5, 1.5), lambda a, r: st.gamma(a, scale=1 / r).stats("mv")),
    "Beta": (Beta, (2.0, 3.0), lambda a, b: st.beta(a, b).stats("mv")),
    "Weibull": (Weibull, (1.5, 2.2), lambda lam, k: st.weibull_min(k, scale=lam).stats("mv")),
    "TruncatedNormal": (
        TruncatedNormal,
        (0.3, 1.2, -0.5, 1.5),
        lambda m, s, lo, hi: st.truncnorm((lo - m) / s, (hi - m) / s, loc=m, scale=s).stats("mv"),
    ),
    "TruncatedNormal-tail": (
        TruncatedNormal,
        (0.0, 1.0, 3.0, 4.0),
        lambda m, s, lo, hi: st.truncnorm((lo - m) / s, (hi - m) / s, loc=m, scale=s).stats("mv"),
    ),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_rsample_gradients_match_exact_derivatives(name: str) -> None:
    cls, params, moments = GRAD_CASES[name]
    assert cls.has_rsample
    n = 20000
    # One leaf per sample and parameter: the gradient of the sum is the per-sample gradient.
    leaves = [torch.full((n,), p, dtype=torch.float64, requires_grad=True) for p in params]
    x = cls(*leaves).rsample(RNG(9))
    assert x.shape == (n,)
    for power in (1, 2):
        grads = torch.autograd.grad((x**power).sum(), leaves, retain_graph=True)
        for i, g in enumerate(grads):
            h = 1e-5
            up = list(params)
            dn = list(params)
            up[i] += h
            dn[i] -= h
            m_up, v_up = (float(t) for t in moments(*up))
            m_dn, v_dn = (float(t) for t in moments(*dn))
            f_up = m_up if power == 1 else v_up + m_up**2
            f_dn = m_dn if power == 1 else v_dn + m_dn**2
            exact = (f_up - f_dn) / (2 * h)
            g = g.numpy()
            se = g.std() / math.sqrt(n)
            assert abs(g.mean() - exact) < 5 * se + 1e-6, (name, i, power, g.mean(), exact, se)


def test_discrete_kinds_have_no_rsample() -> None:
    for d in (Poisson(1.0), Bernoulli(0.5), Binomial(3, 0.5), Categorical([0.5, 0.5])):
        assert d.is_discrete and not d.has_rsample
        with pytest.raises(NotImplementedError):
            d.rsample(RNG(0))
    assert not Mixture([Normal(0.0, 1.0)], [1.0]).has_rsample


def test_log_prob_gradients_are_finite_at_edges() -> None:
    m = torch.tensor(0.0, requires_grad=True)
    s = torch.tensor(1.0, requires_grad=True)
    d = TruncatedNormal(m, s, torch.tensor(-INF), torch.tensor(0.5))
    x = d.rsample(RNG(1))
    (d.log_prob(torch.tensor([0.0, 2.0])).sum() + d.mean + d.variance + x).backward()
    assert m.grad is not None and s.grad is not None
    assert torch.isfinite(m.grad) and torch.isfinite(s.grad)
    r = torch.tensor(2.0, requires_grad=True)
    LogNormal(0.0, r).log_prob(torch.tensor([-1.0, 0.0, 1.0])).sum().backward()
    assert r.grad is not None and torch.isfinite(r.grad)


# -- normalisation --------------------------------------------------------------------------------


def _integral(d: Distribution, lo: float, hi: float, points: list[float] | None = None) -> float:
    value, _ = scipy.integrate.quad(
        lambda x: math.exp(d.log_prob(x)), lo, hi, points=points, limit=200
    )
    return float(value)


def test_mixture_density_integrates_to_one() -> None:
    m = Mixture([Normal(-1.0, 0.5), Normal(2.0, 1.0), Gamma(3.0, 2.0)], [0.2, 0.5, 0.3])
    total = _integral(m, -20.0, 0.0) + _integral(m, 0.0, 40.0)
    assert total == pytest.approx(1.0, abs=1e-7)
    disc = Mixture([Poisson(2.0), Binomial(10, 0.5)], [0.5, 0.5])
    assert disc.is_discrete and disc.name == "Mixture"
    assert math.fsum(math.exp(disc.log_prob(k)) for k in range(200)) == pytest.approx(
        1.0, abs=1e-12
    )
    t = make_tensor("Mixture", (2,))
    grid = torch.linspace(-10.0, 12.0, 20001, dtype=torch.float64)
    dens = t.log_prob(grid[:, None]).exp()
    assert dens.shape == (20001, 2)
    np.testing.assert_allclose(torch.trapezoid(dens, grid, dim=0).numpy(), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("mean", "std", "lo", "hi"),
    [
        (0.0, 1.0, -1.0, 2.0),
        (0.0, 1.0, 8.0, 9.0),
        (0.0, 1.0, -9.0, -8.0),
        (2.0, 0.5, 30.0, 30.3),
        (0.0, 1.0, 40.0, 41.0),
        (0.0, 1.0, 0.1, 0.1 + 1e-6),
        (1.0, 3.0, -2.0, INF),
    ],
)
def test_truncated_normal_normalised_and_in_bounds(
    mean: float, std: float, lo: float, hi: float
) -> None:
    d = TruncatedNormal(mean, std, lo, hi)
    top = hi if hi < INF else mean + 40 * std
    assert _integral(
        d, lo, top, points=[lo + (top - lo) * f for f in (0.01, 0.1, 0.5)]
    ) == pytest.approx(1.0, abs=1e-6)
    x = draws(d, 2000, seed=4)
    assert ((x >= lo) & (x <= hi)).all()
    a, b = (lo - mean) / std, (hi - mean) / std
    ref = st.truncnorm(a, b, loc=mean, scale=std)
    narrow = hi - lo < 1e-3  # SciPy's moments warn there; the mean is the midpoint
    ref_mean = 0.5 * (lo + hi) if narrow else float(ref.mean())
    assert d.mean == pytest.approx(ref_mean, rel=1e-7)
    # The variance by quadrature of the centred second moment (no cancellation there);
    # the closed form cancels badly in narrow and far-tail intervals.
    pts = [lo + (top - lo) * f for f in (0.001, 0.01, 0.1, 0.5)]
    centred, _ = scipy.integrate.quad(
        lambda v: (v - d.mean) ** 2 * math.exp(d.log_prob(v)), lo, top, points=pts, limit=200
    )
    assert d.variance == pytest.approx(centred, rel=1e-6)
    if not narrow:
        assert st.kstest(x, ref.cdf).pvalue > 1e-3
    for dtype in (torch.float32, torch.float64):
        t = TruncatedNormal(
            torch.tensor(mean, dtype=dtype),
            std,
            torch.tensor(lo, dtype=dtype),
            torch.tensor(hi, dtype=dtype),
        ).expand((3000,))
        xt = t.sample(RNG(5))
        assert xt.dtype == dtype and torch.isfinite(xt).all()
        assert ((xt >= torch.tensor(lo, dtype=dtype)) & (xt <= torch.tensor(hi, dtype=dtype))).all()
        if dtype == torch.float64:
            assert t.mean[0].item() == pytest.approx(d.mean, rel=1e-9)
            assert t.variance[0].item() == pytest.approx(d.variance, rel=1e-9)
            if not narrow:
                assert st.kstest(xt.numpy(), ref.cdf).pvalue > 1e-3
        # float32 holds x ~ 40 to ~2e-6, which moves log p by ~|x| * 2e-6: allow 1e-3 there.
        tol = 1e-9 if dtype == torch.float64 else 1e-3
        x_mid = torch.tensor([ref_mean], dtype=dtype)
        expected = d.log_prob(float(x_mid[0]))
        assert t.log_prob(x_mid)[0].item() == pytest.approx(expected, rel=tol, abs=tol)


def test_expand_and_device_free_parameters() -> None:
    d = Gamma(2.0, 3.0).expand((2, 2))
    assert d.shape == (2, 2) and not d.is_scalar
    c = Categorical([0.1, 0.9]).expand((4,))
    assert c.shape == (4,) and c.sample(RNG(0)).shape == (4,)
    m = Mixture([Normal(0.0, 1.0), Normal(5.0, 1.0)], [0.5, 0.5]).expand((3,))
    assert m.shape == (3,) and m.sample(RNG(0)).shape == (3,)
    with pytest.raises(RuntimeError):
        Normal(torch.zeros(3), 1.0).expand((2,))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_parameters_give_cuda_values(name: str) -> None:
    dev = torch.device("cuda")
    d = make_tensor(name, (5,))
    if isinstance(d, Mixture):
        comps = [type(c)(**{k: v.to(dev) for k, v in c.params.items()}) for c in d.components]
        on_gpu: Distribution = Mixture(comps, d.probs.to(dev))
    else:
        on_gpu = type(d)(**{k: v.to(dev) for k, v in d.params.items()})
    v = on_gpu.sample(RNG(0))
    assert v.device.type == "cuda" and v.shape == (5,)
    assert on_gpu.log_prob(v).device.type == "cuda"
    # Draws come from the CPU generator: the same seed gives the same values on any device.
    torch.testing.assert_close(v.cpu(), d.sample(RNG(0)))
    torch.testing.assert_close(on_gpu.log_prob(v).cpu(), d.log_prob(v.cpu()))
    if d.has_rsample:
        assert on_gpu.rsample(RNG(1)).device.type == "cuda"


def test_discrete_log_prob_gradients_finite_at_the_boundary() -> None:
    # 0 * log 0 terms must not turn the gradient into NaN (xlogy's backward is 0/0 there)
    p = torch.tensor([0.0, 1.0, 0.3], requires_grad=True)
    Bernoulli(p).log_prob(torch.tensor([0.0, 1.0, 1.0])).sum().backward()
    assert torch.allclose(p.grad, torch.tensor([-1.0, 1.0, 1 / 0.3]))
    q = torch.tensor([0.0, 1.0], requires_grad=True)
    Binomial(torch.tensor([3.0, 3.0]), q).log_prob(torch.tensor([0.0, 3.0])).sum().backward()
    assert torch.allclose(q.grad, torch.tensor([-3.0, 3.0]))
    r = torch.tensor([0.0, 2.0], requires_grad=True)
    Poisson(r).log_prob(torch.tensor([0.0, 1.0])).sum().backward()
    assert torch.allclose(r.grad, torch.tensor([-1.0, -0.5]))
