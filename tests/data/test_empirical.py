"""Empirical: weighted statistics, weights, errors, latents, value kinds, transforms."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from rotalumis.core.errors import InferenceError
from rotalumis.core.rng import RNG
from rotalumis.data import Empirical, EmpiricalBuilder


@pytest.fixture
def weighted() -> tuple[np.ndarray, np.ndarray, Empirical]:
    gen = np.random.default_rng(0)
    x = gen.normal(size=200)
    logw = gen.normal(size=200) * 2.0 - 50.0  # offset: stats must be shift-invariant
    return x, logw, Empirical(x, logw)


# ------------------------------------------------------------------ statistics


def test_weighted_moments_match_numpy(weighted: tuple[np.ndarray, np.ndarray, Empirical]) -> None:
    x, logw, emp = weighted
    w = np.exp(logw - logw.max())
    m = np.average(x, weights=w)
    v = np.average((x - m) ** 2, weights=w)
    assert emp.mean == pytest.approx(m, rel=1e-12)
    assert emp.variance == pytest.approx(v, rel=1e-12)
    assert emp.stddev == pytest.approx(math.sqrt(v), rel=1e-12)
    assert isinstance(emp.mean, float)
    np.testing.assert_allclose(emp.weights, w / w.sum(), rtol=1e-13)
    assert emp.weights.sum() == pytest.approx(1.0)


def test_weighted_quantiles_match_numpy_inverted_cdf(
    weighted: tuple[np.ndarray, np.ndarray, Empirical],
) -> None:
    x, logw, emp = weighted
    w = np.exp(logw - logw.max())
    qs = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
    expected = np.quantile(x, qs, weights=w, method="inverted_cdf")
    np.testing.assert_array_equal(emp.quantiles(qs), expected)
    assert emp.quantile(0.3) == np.quantile(x, 0.3, weights=w, method="inverted_cdf")
    assert emp.median == np.quantile(x, 0.5, weights=w, method="inverted_cdf")
    assert emp.min == x.min() and emp.max == x.max()


def test_zero_weight_entries_are_ignored_by_order_statistics() -> None:
    emp = Empirical([-100.0, 1.0, 2.0, 3.0, 100.0], [-math.inf, 0.0, 0.0, 0.0, -math.inf])
    assert (emp.min, emp.median, emp.max) == (1.0, 2.0, 3.0)
    assert emp.quantile(0.0) == 1.0 and emp.quantile(1.0) == 3.0
    assert emp.mean == pytest.approx(2.0)


def test_equal_weight_quantiles_are_the_empirical_inverse_cdf() -> None:
    emp = Empirical(np.array([4.0, 1.0, 3.0, 2.0]))
    assert emp.quantiles([0.25, 0.5, 0.75]).tolist() == [1.0, 2.0, 3.0]


def test_ess_formula_and_log_evidence() -> None:
    logw = np.array([0.0, -1.0, -2.0, math.log(3.0), -math.inf])
    w = np.exp(logw)
    emp = Empirical(np.arange(5.0), logw)
    assert emp.ess == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-13)
    assert emp.log_evidence == pytest.approx(math.log(w.mean()), rel=1e-13)
    # stable far from 0 where exp() under/overflows: shift by -1e5 and +700
    for shift in (-1e5, 700.0):
        shifted = Empirical(np.arange(5.0), logw + shift)
        assert shifted.ess == pytest.approx(emp.ess, rel=1e-12)
        assert shifted.log_evidence == pytest.approx(emp.log_evidence + shift, rel=1e-12)
        assert shifted.log_evidence == pytest.approx(logsumexp(logw + shift) - math.log(5))
    assert Empirical(np.arange(7.0)).ess == pytest.approx(7.0)


def test_mode_of_discrete_values() -> None:
    emp = Empirical([1, 2, 2, 3, 3, 3], np.log([5.0, 1, 1, 1, 1, 1]))
    assert emp.mode == 1 and isinstance(emp.mode, int)
    assert Empirical(["a", "b", "b"]).mode == "b"


def test_histogram_is_weighted_density() -> None:
    emp = Empirical([0.1, 0.2, 0.9], np.log([1.0, 1.0, 2.0]))
    dens, edges = emp.histogram(bins=2, range=(0.0, 1.0))
    np.testing.assert_allclose(dens * np.diff(edges), [0.5, 0.5])


def test_sample_draws_by_weight() -> None:
    emp = Empirical([0, 1], np.log([0.2, 0.8]))
    rng = RNG(3)
    draws = [emp.sample(rng) for _ in range(4000)]
    # binomial(4000, 0.8): sd = sqrt(4000 * 0.16) ~ 25.3; allow 4 sd
    assert abs(sum(draws) - 3200) < 4 * 25.3
    assert Empirical([7.0]).sample(random.Random(0)) == 7.0


# ------------------------------------------------------------------ errors


def test_all_zero_weights_raise_inference_error() -> None:
    emp = Empirical([1.0, 2.0], [-math.inf, -math.inf])
    with pytest.raises(InferenceError, match="all importance weights are zero"):
        _ = emp.weights
    with pytest.raises(InferenceError, match="observations are impossible"):
        _ = emp.mean
    assert emp.log_evidence == -math.inf


def test_nan_log_weights_are_counted() -> None:
    emp = Empirical([1.0, 2.0, 3.0], [0.0, math.nan, math.nan])
    with pytest.raises(InferenceError, match=r"2 of 3 log weights are NaN \(first at index 1\)"):
        _ = emp.ess
    with pytest.raises(InferenceError, match="NaN"):
        _ = emp.log_evidence


def test_empty_empirical_stats_raise() -> None:
    emp = EmpiricalBuilder().build()
    assert len(emp) == 0
    with pytest.raises(InferenceError, match="empty"):
        _ = emp.mean
    with pytest.raises(InferenceError, match="empty"):
        _ = emp.weights


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="shape"):
        Empirical([1.0, 2.0], log_weights=[0.0])
    with pytest.raises(ValueError, match="latent 'mu'"):
        Empirical([1.0, 2.0], latents={"mu": [1.0]})


# ------------------------------------------------------------------ builder and value kinds


def test_builder_scalar_columns_and_promotion() -> None:
    b = EmpiricalBuilder(name="p")
    for v in [1, 2, True, 4.5]:
        b.append(v)
    emp = b.build()
    assert emp.to_numpy().dtype == np.float64 and emp.to_numpy().tolist() == [1, 2, 1, 4.5]
    assert emp.name == "p" and emp[0] == 1.0 and emp[-1] == 4.5
    ints = Empirical([1, 2, 3])
    assert ints.to_numpy().dtype == np.int64 and ints[1] == 2 and isinstance(ints[1], int)
    assert Empirical([True, False]).to_numpy().dtype == np.bool_
    assert Empirical([2**70, 1])[0] == 2**70  # beyond int64: kept exactly as objects


def test_builder_keeps_growing_after_build() -> None:
    b = EmpiricalBuilder()
    b.append(1.0)
    first = b.build()
    b.append(2.0)
    assert len(first) == 1 and len(b.build()) == 2
    with pytest.raises(ValueError, match="read-only"):
        first.log_weights[0] = 1.0


def test_tensor_values_elementwise() -> None:
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(50, 2, 3, generator=gen)
    logw = torch.randn(50, generator=gen, dtype=torch.float64)
    b = EmpiricalBuilder()
    for x, lw in zip(xs, logw.tolist(), strict=True):
        b.append(x, lw)
    emp = b.build()
    w = emp.weights
    arr = xs.numpy().astype(np.float64)
    mean = emp.mean
    assert isinstance(mean, torch.Tensor) and mean.dtype == torch.float32 and mean.shape == (2, 3)
    np.testing.assert_allclose(mean.numpy(), np.tensordot(w, arr, axes=1), rtol=1e-6)
    m = np.tensordot(w, arr, axes=1)
    np.testing.assert_allclose(emp.variance.numpy(), np.tensordot(w, (arr - m) ** 2, 1), rtol=1e-5)
    q = emp.quantiles([0.1, 0.9])
    assert q.shape == (2, 2, 3)
    expected = np.quantile(xs.numpy(), [0.1, 0.9], axis=0, weights=w, method="inverted_cdf")
    np.testing.assert_array_equal(q.numpy(), expected)
    assert torch.equal(emp[3], xs[3]) and emp.to_torch().shape == (50, 2, 3)
    assert torch.equal(emp.max, xs.max(dim=0).values)


def test_numpy_array_values_and_varying_shapes() -> None:
    emp = Empirical([np.ones(3), np.zeros(3)])
    assert isinstance(emp.mean, np.ndarray) and emp.mean.tolist() == [0.5, 0.5, 0.5]
    ragged = Empirical([np.ones(2), np.ones(3)])  # shapes vary: Python objects
    assert ragged[1].shape == (3,)
    with pytest.raises(TypeError, match="varies between entries"):
        _ = ragged.mean


def test_dict_values_one_column_per_key() -> None:
    b = EmpiricalBuilder()
    b.append({"a": 1.0, "t": torch.tensor([1.0, 2.0])}, 0.0)
    b.append({"a": 3.0, "t": torch.tensor([3.0, 4.0])}, math.log(3.0))
    b.append({"a": 100.0}, -math.inf)  # key "t" missing here
    emp = b.build()
    mean = emp.mean
    assert mean["a"] == pytest.approx(2.5)
    assert torch.allclose(mean["t"], torch.tensor([2.5, 3.5]))
    assert emp[2] == {"a": 100.0}
    assert set(emp.to_numpy()) == {"a", "t"}
    assert emp.ess == pytest.approx(1.6)


def test_dict_values_from_columns() -> None:
    emp = Empirical({"x": np.array([1.0, 3.0]), "k": np.array([1, 2])})
    assert emp.mean == {"x": 2.0, "k": 1.5}
    assert emp[1] == {"x": 3.0, "k": 2}


def test_latents_as_columns_and_missing_latents() -> None:
    b = EmpiricalBuilder()
    b.append(0.0, 0.0, latents={"mu": 1.0})
    b.append(1.0, 0.0, latents={"mu": 3.0, "k": 2})
    b.append(2.0, math.log(2.0), latents={"mu": 5.0})
    b.append(3.0, 0.0)  # no latents at all for this trace
    emp = b.build()
    assert emp.latent_names == ("mu", "k")
    mu = emp.get("mu")
    assert len(mu) == 3 and mu.name == "mu"
    assert mu.mean == pytest.approx((1 + 3 + 2 * 5) / 4)
    np.testing.assert_array_equal(mu.log_weights, [0.0, 0.0, math.log(2.0)])
    assert emp["k"].to_numpy().tolist() == [2] and emp.latents["k"].mode == 2
    assert set(emp.latents) == {"mu", "k"}
    with pytest.raises(KeyError, match="recorded latents"):
        emp.get("sigma")


def test_latent_first_seen_late_is_missing_before() -> None:
    b = EmpiricalBuilder()
    for i in range(5):
        b.append(float(i), latents=None if i < 3 else {"z": i})
    z = b.build().get("z")
    assert z.to_numpy().tolist() == [3, 4]


def test_invalid_latents_leave_the_builder_consistent() -> None:
    b = EmpiricalBuilder()
    b.append(1.0, latents={"a": 1.0})
    with pytest.raises(TypeError, match="latent names must be str"):
        b.append(2.0, latents={"a": 2.0, 3: 1.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="dict"):
        b.append(2.0, latents=[1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        b.append(2.0, log_weight="heavy")  # type: ignore[arg-type]
    b.append(3.0, latents={"a": 3.0})
    emp = b.build()
    assert emp.to_numpy().tolist() == [1.0, 3.0] and emp["a"].to_numpy().tolist() == [1.0, 3.0]


def test_traces_kept_only_when_given() -> None:
    b = EmpiricalBuilder()
    b.append(1.0)
    assert b.build().traces is None
    b.append(2.0, trace="t2")
    assert b.build().traces == [None, "t2"]
