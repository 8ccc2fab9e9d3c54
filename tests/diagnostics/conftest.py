"""Shared fixtures: small posteriors of the reference models (fixed seeds, built once)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rotalumis.data import ChainInfo, Empirical, RunInfo
from rotalumis.models import Branching, UnknownMean

OBS = {"obs0": 8.0, "obs1": 9.0}


def synthetic_chains(means: list[float], draws: int, seed: int) -> Any:
    """An MCMC-like Empirical: chain ``c`` holds iid N(means[c], 1) draws of latent ``mu``
    (and an independent latent ``nu``), concatenated as the engines do."""
    rng = np.random.default_rng(seed)
    mu = np.concatenate([rng.normal(m, 1.0, draws) for m in means])
    nu = rng.normal(0.0, 2.0, len(mu))
    emp = Empirical(mu, latents={"mu": mu, "nu": nu})
    emp.info = RunInfo(
        "synthetic",
        chains=tuple(ChainInfo(draws, 1.0) for _ in means),
        log_prob=tuple(float(x) for x in -0.5 * mu**2 - 0.125 * nu**2),
    )
    return emp


@pytest.fixture(scope="session")
def rmh_chains() -> Any:
    """4 well-mixing RMH chains on UnknownMean (R-hat ~1.001, bulk ESS ~2000; traces kept)."""
    return UnknownMean().posterior(
        1000, engine="rmh", observe=OBS, seed=3, num_chains=4, burn_in=100, thin=3, scale=1.0,
        keep_traces=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def is_result() -> Any:
    """Importance sampling on UnknownMean (weighted)."""
    return UnknownMean().posterior(2000, engine="is", observe=OBS, seed=4)


@pytest.fixture(scope="session")
def branching_prior() -> Any:
    """4000 prior traces of Branching (rate 3): the address structure is known exactly."""
    return Branching().prior(4000, seed=5, keep_traces=True)
