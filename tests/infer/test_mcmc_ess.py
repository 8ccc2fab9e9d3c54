"""The ESS of an MCMC result reflects its autocorrelation, not its length (issue 11).

Before, ``Empirical.ess`` of a 100,000-step LMH chain was its Kish ESS of equal weights,
100,000, while its autocorrelation-aware ESS is a few hundred: LMH proposes ``mu`` from its
prior (sd 5) and the posterior is 250 times narrower (sd 0.02), so about one proposal in a
hundred is accepted.
"""

from __future__ import annotations

import numpy as np

from rotalumis.core import Model, Normal, observe, sample
from rotalumis.data.empirical import import_arviz


class SharpMean(Model):
    def forward(self) -> float:
        mu = sample(Normal(0.0, 5.0), name="mu")
        observe(Normal(mu, 0.02), name="y")
        return mu


def test_a_long_lmh_chain_reports_its_autocorrelation_ess() -> None:
    post = SharpMean().posterior(100_000, engine="lmh", observe={"y": 1.0}, seed=0, progress=False)
    assert post.chains == (100_000,)
    values = np.asarray(post.to_numpy(), dtype=float)
    reference = float(import_arviz().ess(values[None], method="bulk"))
    assert post.ess == reference
    assert 50 < post.ess < 2_000, post.ess  # hundreds, not 100,000
    assert post.get("mu").ess == reference
    assert post.summary()["mu"]["ess"] == reference
    # importance sampling keeps the weight-based (Kish) ESS
    weighted = SharpMean().posterior(20_000, engine="is", observe={"y": 1.0}, seed=0)
    w = np.asarray(weighted.weights)
    assert weighted.chains is None
    assert abs(weighted.ess - 1.0 / float((w * w).sum())) < 1e-6 * weighted.ess


def test_several_chains_are_assessed_together() -> None:
    post = SharpMean().posterior(
        5_000, engine="rmh", observe={"y": 1.0}, seed=1, num_chains=3, scale=0.01, progress=False
    )
    assert post.chains == (5_000, 5_000, 5_000)
    values = np.asarray(post.to_numpy(), dtype=float).reshape(3, 5_000)
    assert post.ess == float(import_arviz().ess(values, method="bulk"))
