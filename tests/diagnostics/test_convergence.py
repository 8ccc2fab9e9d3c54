"""Diagnostics agree with ArviZ run directly on the same arrays and flag what they should."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import OBS, synthetic_chains

from rotalumis.diagnostics import (
    autocorrelation,
    convergence_table,
    convergence_warnings,
    importance_diagnostics,
    importance_warnings,
    rhat_evolution,
    to_inference_data,
)
from rotalumis.diagnostics.mcmc import import_arviz
from rotalumis.models import UnknownMean

az = import_arviz()


def test_table_matches_arviz_on_the_same_arrays(rmh_chains: Any) -> None:
    x = rmh_chains.get("mu").to_numpy().reshape(4, 1000)  # built independently of the export
    row = convergence_table(rmh_chains)["mu"]
    assert row["rhat"] == pytest.approx(float(az.rhat(x, method="rank")), rel=1e-12)
    assert row["ess_bulk"] == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-12)
    assert row["ess_tail"] == pytest.approx(float(az.ess(x, method="tail")), rel=1e-12)
    assert row["mcse_mean"] == pytest.approx(float(az.mcse(x, method="mean")), rel=1e-12)
    assert row["mcse_sd"] == pytest.approx(float(az.mcse(x, method="sd")), rel=1e-12)
    assert row["mean"] == pytest.approx(x.mean())
    # and with ArviZ's own summary of the exported InferenceData (rounded to 2 decimals)
    summary = az.summary(to_inference_data(rmh_chains), var_names=["mu"], round_to="none")
    assert row["ess_bulk"] == pytest.approx(summary.loc["mu", "ess_bulk"], rel=1e-9)
    assert row["rhat"] == pytest.approx(summary.loc["mu", "r_hat"], rel=1e-9)


def test_autocorrelation_and_rhat_evolution_match_arviz(rmh_chains: Any) -> None:
    x = rmh_chains.get("mu").to_numpy().reshape(4, 1000)
    rho = autocorrelation(rmh_chains, "mu", max_lag=30)
    assert rho.shape == (4, 31)
    for c in range(4):
        np.testing.assert_allclose(rho[c], az.autocorr(x[c])[:31], rtol=1e-12)
    ks, rhat = rhat_evolution(rmh_chains, "mu", num_points=5)
    assert ks[-1] == 1000 and len(ks) == len(rhat) == 5
    for k, r in zip(ks, rhat, strict=True):
        assert r == pytest.approx(float(az.rhat(x[:, :k])), rel=1e-12)


def test_rhat_flags_non_converged_chains_and_passes_converged_ones() -> None:
    # Converged: 4 chains of iid N(0, 1) draws. R-hat's sampling sd is ~1/(chains*draws)
    # ~ 3e-4 here, far below the 0.01 margin.
    good = convergence_table(synthetic_chains([0, 0, 0, 0], 1000, seed=0))
    assert good["mu"]["rhat"] < 1.005
    assert convergence_warnings(good, num_chains=4) == []
    # Not converged: one chain stuck 2 sd away from the others
    bad = convergence_table(synthetic_chains([0, 0, 0, 2], 1000, seed=0))
    assert bad["mu"]["rhat"] > 1.1
    assert bad["nu"]["rhat"] < 1.01  # the other latent mixes fine
    warns = convergence_warnings(bad, num_chains=4)
    assert any(w.startswith("mu: R-hat") for w in warns)
    assert not any(w.startswith("nu:") for w in warns)


def test_real_chains_lmh_stuck_is_flagged_rmh_passes(rmh_chains: Any) -> None:
    # LMH proposes mu from the prior, 3 prior sd from the posterior: it accepts ~1% of
    # moves, so 4 short chains disagree (deterministic for this seed)
    lmh = UnknownMean().posterior(60, engine="lmh", observe=OBS, seed=1, num_chains=4)
    table = convergence_table(lmh, var_names=["mu"])
    assert math.isnan(table["mu"]["rhat"]) or table["mu"]["rhat"] > 1.01
    assert convergence_warnings(table, num_chains=4)
    table = convergence_table(rmh_chains, var_names=["mu"])
    assert table["mu"]["rhat"] < 1.01


def test_constant_chains_are_reported_not_nan_warnings() -> None:
    emp = synthetic_chains([0, 0], 50, seed=0)
    const = type(emp)(np.ones(100), latents={"c": np.ones(100)})
    const.info = emp.info
    table = convergence_table(const)
    assert math.isnan(table["c"]["rhat"]) and table["c"]["ess_bulk"] == 1.0
    assert "never moved" in convergence_warnings(table, 2)[0]


def test_importance_diagnostics_match_arviz_psis(is_result: Any) -> None:
    diag = importance_diagnostics(is_result)
    _, k = az.psislw(np.array(is_result.log_weights), reff=1.0)
    assert diag["pareto_k"] == pytest.approx(float(k), rel=1e-12)
    w = np.exp(is_result.log_weights - is_result.log_weights.max())
    assert diag["ess"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-9)
    assert diag["num_samples"] == 2000


def test_importance_warnings() -> None:
    # prior proposal, posterior 3 prior sd away: ESS ~ 0.8% of the samples (computed in
    # closed form for this conjugate model), heavy-tailed weights
    far = UnknownMean().posterior(1000, engine="is", observe=OBS, seed=2)
    diag = importance_diagnostics(far)
    assert diag["ess"] < 100 and diag["pareto_k"] > 0.7
    warns = importance_warnings(diag)
    assert len(warns) == 2 and "Pareto k" in warns[1]
    # data that agree with the prior: healthy weights
    near = UnknownMean().posterior(1000, engine="is", observe={"obs0": 1.0, "obs1": 1.5}, seed=2)
    ok = importance_diagnostics(near)
    assert ok["pareto_k"] < 0.5 and importance_warnings(ok) == []
    # equal weights: there is no tail to fit
    prior = UnknownMean().prior(100, seed=0)
    assert math.isnan(importance_diagnostics(prior)["pareto_k"])
