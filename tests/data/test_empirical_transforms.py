"""Empirical transforms: resample, map, filter, thin, combine, unweighted, summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rotalumis.core.rng import RNG
from rotalumis.data import Empirical, EmpiricalBuilder

PROBS = np.array([0.1, 0.2, 0.3, 0.4])


def _categorical() -> Empirical:
    return Empirical(np.arange(4.0), np.log(PROBS) - 7.0, latents={"z": np.arange(4) * 10})


@pytest.mark.parametrize("method", ["multinomial", "systematic"])
def test_resampling_is_unbiased(method: str) -> None:
    emp = _categorical()
    n = 20_000
    res = emp.resample(n, method=method, seed=1)
    counts = np.bincount(res.to_numpy().astype(int), minlength=4)
    # multinomial counts: sd = sqrt(n p (1 - p)) <= sqrt(20000 * 0.25) ~ 70.7; 4 sd tolerance
    assert np.all(np.abs(counts - n * PROBS) < 4 * np.sqrt(n * PROBS * (1 - PROBS)))
    assert res.mean == pytest.approx(emp.mean, abs=4 * math.sqrt(emp.variance / n))
    # equal weights after, carrying the evidence estimate; latents follow their entries
    assert np.all(res.log_weights == emp.log_evidence) and res.ess == pytest.approx(n)
    assert res.log_evidence == pytest.approx(emp.log_evidence)
    np.testing.assert_array_equal(res["z"].to_numpy(), res.to_numpy() * 10)


def test_systematic_resampling_has_low_variance() -> None:
    emp = _categorical()
    n = 1000
    for seed in range(20):
        counts = np.bincount(
            emp.resample(n, "systematic", seed=seed).to_numpy().astype(int), minlength=4
        )
        # every count is floor(n p) or ceil(n p): no Monte Carlo spread at all
        assert np.all(np.abs(counts - n * PROBS) < 1.0 + 1e-9)
    sys_means = [emp.resample(n, "systematic", seed=s).mean for s in range(20)]
    mult_means = [emp.resample(n, "multinomial", seed=s).mean for s in range(20)]
    assert np.var(sys_means) < np.var(mult_means) / 10


def test_resample_is_reproducible_and_rejects_unknown_methods() -> None:
    emp = _categorical()
    a = emp.resample(50, seed=RNG(5)).to_numpy()
    assert np.array_equal(a, emp.resample(50, seed=RNG(5)).to_numpy())
    assert np.array_equal(emp.resample(50, seed=9).to_numpy(), emp.resample(50, seed=9).to_numpy())
    with pytest.raises(ValueError, match="unknown resampling method"):
        emp.resample(5, method="stratified-ish")


def test_resample_never_picks_zero_weight_entries() -> None:
    emp = Empirical([1.0, 2.0, 3.0], [-math.inf, 0.0, -math.inf])
    assert set(emp.resample(100, seed=0).to_numpy().tolist()) == {2.0}
    assert set(emp.resample(100, "systematic", seed=0).to_numpy().tolist()) == {2.0}


def test_map_filter_thin_unweighted() -> None:
    emp = Empirical([1.0, 2.0, 3.0, 4.0], np.log([1.0, 1.0, 1.0, 5.0]), latents={"a": [1, 2, 3, 4]})
    sq = emp.map(lambda x: x * x)
    assert sq.to_numpy().tolist() == [1.0, 4.0, 9.0, 16.0]
    np.testing.assert_array_equal(sq.log_weights, emp.log_weights)
    assert sq["a"].to_numpy().tolist() == [1, 2, 3, 4]
    vec = emp.map(lambda x: {"x": x, "neg": -x}, vectorized=True)
    assert vec.mean["neg"] == pytest.approx(-emp.mean)
    big = emp.filter(lambda x: x > 2)
    assert big.to_numpy().tolist() == [3.0, 4.0] and big["a"].to_numpy().tolist() == [3, 4]
    assert emp.filter(lambda x: x < 3, vectorized=True).to_numpy().tolist() == [1.0, 2.0]
    assert emp.thin(2).to_numpy().tolist() == [1.0, 3.0]
    assert emp.thin(2, start=1)["a"].to_numpy().tolist() == [2, 4]
    assert emp.unweighted().mean == pytest.approx(2.5)
    assert emp[1:3].to_numpy().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="step"):
        emp.thin(0)


def test_map_to_tensors() -> None:
    emp = Empirical([1.0, 2.0])
    t = emp.map(lambda x: torch.full((2,), x))
    assert torch.equal(t.mean, torch.tensor([1.5, 1.5]))


def test_combine_independent_importance_runs() -> None:
    gen = np.random.default_rng(2)
    lw1, lw2 = gen.normal(size=30), gen.normal(size=70) - 1.0
    e1 = Empirical(gen.normal(size=30), lw1, latents={"a": np.ones(30)})
    e2 = Empirical(gen.normal(size=70), lw2, latents={"b": np.zeros(70, dtype=np.int64)})
    both = Empirical.combine([e1, e2], name="all")
    assert len(both) == 100 and both.name == "all"
    np.testing.assert_array_equal(both.log_weights, np.concatenate([lw1, lw2]))
    # the combined evidence is the size-weighted mean of the runs' evidence estimates
    expected = math.log((30 * math.exp(e1.log_evidence) + 70 * math.exp(e2.log_evidence)) / 100)
    assert both.log_evidence == pytest.approx(expected, rel=1e-12)
    assert len(both.get("a")) == 30 and len(both.get("b")) == 70
    assert both.get("b").to_numpy().dtype == np.int64


def test_combine_resampled_runs_keeps_evidence_weighting() -> None:
    e1 = Empirical([0.0, 0.0], [0.0, 0.0])  # evidence 1
    e2 = Empirical([1.0, 1.0], [math.log(3.0)] * 2)  # evidence 3
    both = Empirical.combine([e1.resample(10, seed=0), e2.resample(10, seed=0)])
    assert both.mean == pytest.approx(0.75)


def test_combine_mixed_kinds() -> None:
    a = Empirical([1, 2])
    b = Empirical([0.5])
    c = Empirical([np.ones(2)])
    assert Empirical.combine([a, b]).to_numpy().tolist() == [1.0, 2.0, 0.5]
    mixed = Empirical.combine([b, c])
    assert mixed[0] == 0.5 and mixed[1].tolist() == [1.0, 1.0]
    t = Empirical.combine([Empirical(torch.ones(2, 3)), Empirical(torch.zeros(1, 3))])
    assert torch.equal(t.mean, torch.full((3,), 2 / 3))


def test_summary_and_table() -> None:
    b = EmpiricalBuilder(name="posterior")
    gen = np.random.default_rng(0)
    for x in gen.normal(size=100).tolist():
        b.append(x, 0.0, latents={"mu": x, "v": torch.tensor([x, 2 * x])})
    emp = b.build()
    s = emp.summary()
    assert set(s) == {"result", "mu", "v"}
    assert s["mu"]["mean"] == pytest.approx(emp.mean)
    assert s["mu"]["q50"] == emp.median and s["result"]["ess"] == pytest.approx(100)
    assert s["mu"]["q05"] == emp.quantile(0.05) and s["mu"]["n"] == 100
    table = emp.summary_table()
    assert "result" in table and "v[1]" in table and "95%" in table
