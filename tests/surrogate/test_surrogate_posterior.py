"""Posterior agreement of surrogates with the simulator's exact posterior (slow).

Marsaglia's rejection loop (the conjugate posterior of ``mu``, a tag computed from a random
number of uniform pairs) and the HMM (forward-backward marginals of every state), each on a
surrogate trained briefly (the machine is shared). Importance sampling and RMH on the
surrogate must agree with the exact posterior within Z = 5 Monte Carlo standard errors
(tests/infer/mc.py): for importance sampling from the Kish ESS, for RMH ArviZ's MCSE of the
mean (the chain's autocorrelation ESS, through ``rotalumis.diagnostics``). The surrogate is
an approximation: agreement holds only up to this Monte Carlo error (one s.e. is about 0.01
posterior sd of ``mu`` with importance sampling, 0.03 with RMH; 0.003-0.02 in probability for
the HMM). At these budgets the tests fail for a surrogate that misses an emission (the
6-step HMM trained 3 epochs at lr 1e-2: ``P(state2=0)`` 0.154 against 0.082, z = 19) and
pass for the trainings below; benchmarks/bench_surrogate.py ``posterior`` measures at 20,000
traces how close the surrogates of the reference models come. Branching's check is in
test_surrogate_fidelity.py.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rotalumis.diagnostics import convergence_table
from rotalumis.models import HiddenMarkovModel, MarsagliaUnknownMean
from rotalumis.surrogate import SurrogateConfig, SurrogateModel, SurrogateTraining, train_surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from mc import Z, is_stderr, weighted_mean

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HMM_STEPS = 6  # a shorter chain than the default 16, as in test_surrogate_fidelity.py


def _prior_predictive_marsaglia(seed: int) -> list[float]:
    m, rng = MarsagliaUnknownMean(), np.random.default_rng(seed)
    mu = rng.normal(m.prior_mean, m.prior_std)
    return [float(mu + m.likelihood_std * rng.standard_normal()) for _ in m.names]


def _prior_predictive_hmm(seed: int) -> list[float]:
    m, rng = HiddenMarkovModel(HMM_STEPS), np.random.default_rng(seed)
    s, ys = rng.choice(3, p=m.initial), []
    for _ in range(HMM_STEPS):
        ys.append(float(m.means[s] + m.std * rng.standard_normal()))
        s = rng.choice(3, p=m.transition[s])
    return ys


MARSAGLIA_OBS = _prior_predictive_marsaglia(0)
HMM_OBS = _prior_predictive_hmm(0)

_TRAINED: dict[str, tuple[Any, SurrogateModel]] = {}


def trained(name: str) -> tuple[Any, SurrogateModel]:
    """The model and a surrogate of it."""
    if name not in _TRAINED:
        model: Any
        if name == "marsaglia":
            model, budget = MarsagliaUnknownMean(), SurrogateTraining(12_000, epochs=3, seed=1)
        else:
            # at 3 epochs and lr 1e-2 a surrogate's obs2 ignored state2 (its marginal, sd
            # 1.18, for every state); 8 epochs at 3e-3 learn every emission
            model = HiddenMarkovModel(HMM_STEPS)
            budget = SurrogateTraining(12_000, epochs=8, learning_rate=3e-3, seed=1)
        torch.manual_seed(0)
        _TRAINED[name] = (model, train_surrogate(model, SurrogateConfig(), budget).model)
    return _TRAINED[name]


def chain_mean_and_mcse(x: np.ndarray) -> tuple[float, float]:
    """Mean of one chain and its MCSE from the autocorrelation ESS (ArviZ)."""
    import arviz as az

    logging.getLogger("arviz").setLevel(logging.ERROR)  # one chain: "minimum 2 chains"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        row = convergence_table(az.from_dict(posterior={"x": x[None, :]}))["x"]
    # a chain that never left 0 (a state of tiny probability) has no MCSE: the floor decides
    return row["mean"], float(np.nan_to_num(row["mcse_mean"], nan=0.0))


def _mu(post: Any) -> np.ndarray:
    """``mu`` of every entry: the surrogate returns its named values, ``mu`` a tag."""
    return np.asarray(post.to_numpy()["mu"], dtype=float)


def test_importance_sampling_on_the_marsaglia_surrogate_gives_the_exact_posterior() -> None:
    model, surrogate = trained("marsaglia")
    mean, sd = model.exact_posterior(MARSAGLIA_OBS)
    post = surrogate.posterior(
        20_000, engine="is", observe=model.observations(MARSAGLIA_OBS), seed=3, progress=False
    )
    assert surrogate.stats.fallbacks == 0
    mu, w = _mu(post), np.asarray(post.weights, dtype=float)
    for stat, exact in ((mu, mean), ((mu - mean) ** 2, sd * sd)):
        est, se = weighted_mean(stat, w), is_stderr(stat, w)
        assert abs(est - exact) < Z * se, f"{est:.4f} vs exact {exact:.4f} (se {se:.4f})"


def test_rmh_on_the_marsaglia_surrogate_gives_the_exact_posterior() -> None:
    """RMH changes the uniforms of the loop (and with them its length) and replays the rest."""
    model, surrogate = trained("marsaglia")
    mean, sd = model.exact_posterior(MARSAGLIA_OBS)
    post = surrogate.posterior(
        10_000,
        engine="rmh",
        observe=model.observations(MARSAGLIA_OBS),
        seed=4,
        burn_in=1000,
        progress=False,
    )
    mu = _mu(post)
    for stat, exact in ((mu, mean), ((mu - mean) ** 2, sd * sd)):
        est, se = chain_mean_and_mcse(stat)
        assert abs(est - exact) < Z * se, f"{est:.4f} vs exact {exact:.4f} (se {se:.4f})"


def _states(post: Any) -> np.ndarray:
    """Indicators ``state_t == k`` of every entry, shape ``(N, steps * 3)``."""
    cols = []
    for t in range(HMM_STEPS):
        s = np.asarray(post.get(f"state{t}").to_numpy(), dtype=int)
        cols += [(s == k) for k in range(3)]
    return np.column_stack(cols).astype(float)


def test_importance_sampling_on_the_hmm_surrogate_gives_the_exact_marginals() -> None:
    model, surrogate = trained("hmm")
    exact = model.exact_marginals(HMM_OBS).numpy().reshape(-1)
    post = surrogate.posterior(
        20_000, engine="is", observe=model.observations(HMM_OBS), seed=5, progress=False
    )
    assert surrogate.stats.fallbacks == 0
    ind, w = _states(post), np.asarray(post.weights, dtype=float)
    for j, p in enumerate(exact):
        est, se = weighted_mean(ind[:, j], w), max(is_stderr(ind[:, j], w), 1e-3)
        t, k = divmod(j, 3)
        assert abs(est - p) < Z * se, f"P(state{t}={k}): {est:.4f} vs {p:.4f} (se {se:.4f})"


def test_rmh_on_the_hmm_surrogate_gives_the_exact_marginals() -> None:
    model, surrogate = trained("hmm")
    exact = model.exact_marginals(HMM_OBS).numpy().reshape(-1)
    post = surrogate.posterior(
        10_000,
        engine="rmh",
        observe=model.observations(HMM_OBS),
        seed=6,
        burn_in=1000,
        progress=False,
    )
    ind = _states(post)
    for j, p in enumerate(exact):
        est, se = chain_mean_and_mcse(ind[:, j])
        t, k = divmod(j, 3)
        se = max(se, 1e-3)
        assert abs(est - p) < Z * se, f"P(state{t}={k}): {est:.4f} vs {p:.4f} (se {se:.4f})"
