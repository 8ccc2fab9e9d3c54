"""Empirical -> ArviZ InferenceData: variables, chains, weights, log densities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import synthetic_chains

from rotalumis.data import ChainInfo, Empirical, RunInfo
from rotalumis.diagnostics import to_inference_data
from rotalumis.diagnostics.inference_data import chain_lengths, log_probs


def test_mcmc_chains_become_the_chain_dimension(rmh_chains: Any) -> None:
    idata = to_inference_data(rmh_chains)
    mu = rmh_chains.get("mu").to_numpy()
    assert set(idata.posterior.data_vars) == {"mu", "result"}
    assert idata.posterior["mu"].shape == (4, 1000)
    # chains are concatenated in order by the engine: chain c is the c-th block
    np.testing.assert_array_equal(idata.posterior["mu"].values, mu.reshape(4, 1000))
    np.testing.assert_array_equal(idata.sample_stats["log_weight"].values, 0.0)
    lp = np.asarray(rmh_chains.info.log_prob).reshape(4, 1000)
    np.testing.assert_allclose(idata.sample_stats["lp"].values, lp)
    assert idata.posterior.attrs["engine"] == "rmh"
    assert idata.posterior.attrs["weighted"] == 0


def test_importance_weights_are_kept(is_result: Any) -> None:
    idata = to_inference_data(is_result)
    assert idata.posterior["mu"].shape == (1, 2000)
    np.testing.assert_array_equal(idata.sample_stats["log_weight"].values[0], is_result.log_weights)
    assert idata.posterior.attrs["weighted"] == 1
    assert "lp" not in idata.sample_stats  # no traces kept, IS records no log density


def test_log_prob_from_traces_and_override() -> None:
    from rotalumis.models import Branching

    emp = Branching().posterior(50, engine="is", observe={"obs": 1.0}, seed=0, keep_traces=True)
    expected = [float(t.log_prob) for t in emp.traces]
    np.testing.assert_allclose(log_probs(emp), expected)
    idata = to_inference_data(emp, log_prob=np.zeros(50))
    np.testing.assert_array_equal(idata.sample_stats["lp"].values, 0.0)
    # the per-trace latent count varies, so only n and result are exported
    assert set(idata.posterior.data_vars) == {"n", "result"}
    with pytest.raises(ValueError, match="expected \\(50,\\)"):
        to_inference_data(emp, log_prob=[0.0])


def test_unequal_chains_are_cut_to_the_shortest() -> None:
    emp = synthetic_chains([0.0, 0.0], 30, seed=1)
    emp.info = RunInfo("synthetic", chains=(ChainInfo(20), ChainInfo(40)))
    assert chain_lengths(emp) == [20, 40]
    idata = to_inference_data(emp)
    assert idata.posterior["mu"].shape == (2, 20)
    np.testing.assert_array_equal(idata.posterior["mu"].values[1], emp.get("mu").to_numpy()[20:40])


def test_array_latents_and_bad_input() -> None:
    latents = {"v": np.arange(12.0).reshape(6, 2), "s": list("abcdef")}
    emp = Empirical(np.arange(6.0), latents=latents)
    idata = to_inference_data(emp)
    assert idata.posterior["v"].shape == (1, 6, 2)
    assert "s" not in idata.posterior  # strings are not exported
    with pytest.raises(ValueError, match="no numeric variable"):
        to_inference_data(Empirical(list("abc")))
    with pytest.raises(ValueError, match="empty"):
        to_inference_data(Empirical(np.zeros(0)))
