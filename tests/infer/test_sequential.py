"""Sequential IC: rounds focused on one observation stay exact on conjugate models.

Tolerances: Z = 5 Monte Carlo standard errors (``mc.py``): for importance sampling from the
Kish effective sample size, for the mean of the training weights from their sample standard
deviation. Budgets are a few hundred simulations per round (tens of seconds).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.infer import sample_traces, sequential_ic
from rotalumis.infer.sequential import proposal_log_ratios
from rotalumis.models import UnknownMean
from rotalumis.nn import BudgetConfig, NetworkProposal

torch.set_num_threads(1)
CONFIG = BudgetConfig(max_epochs=80, patience=5, batch_size=32, learning_rate=3e-3, seed=1)
SIZES = {"lstm_dim": 16, "observation_dim": 16}


def check_exact(model, values: list[float], network, seed: int) -> float:
    obs = model.observations(values)
    post = model.posterior(2000, engine="ic", observe=obs, network=network, seed=seed)
    mean, std = model.exact_posterior(values)
    x, w = np.asarray(post.to_numpy(), dtype=float), np.asarray(post.weights)
    for f, exact, what in ((x, mean, "mean"), ((x - mean) ** 2, std**2, "variance")):
        est, err = weighted_mean(f, w), stderr(f, w)
        assert abs(est - exact) < Z * err, f"{what}: {est:.4f} vs {exact:.4f} (se {err:.4f})"
    return float(post.ess) / len(post)


@pytest.mark.slow
@pytest.mark.parametrize("heads", [{}, {"*": "flow"}], ids=["mixture", "flow"])
def test_rounds_on_the_conjugate_model_stay_exact(heads) -> None:
    # an observation in the prior's tail: round 0 sees few simulations near it
    model, values = UnknownMean(num_obs=3), [7.5, 9.0, 8.0]
    result = sequential_ic(
        model, model.observations(values), simulations=(400, 400, 400), config=CONFIG,
        network_sizes={**SIZES, "heads": heads},
    )  # fmt: skip
    assert [r["simulations"] for r in result.rounds] == [400, 400, 400]
    assert len(result.traces) == 1200
    # multiple importance sampling over the rounds: E_M[p / M] = 1, and p / M <= N / N_0
    w = np.exp(result.log_weights)
    assert abs(w.mean() - 1.0) < Z * w.std() / math.sqrt(len(w))
    assert w.max() <= 3.0 + 1e-9
    ess = check_exact(model, values, result.network, seed=2)
    # the focused network is a good proposal there: prior importance sampling gets an
    # ESS per trace of about 0.03 for this observation
    assert ess > 0.25


@pytest.mark.slow
def test_rounds_reach_the_proposal_in_the_tail_better_than_one_round() -> None:
    """At the same budget, two focused rounds give a larger ESS than one prior round."""
    model, values = UnknownMean(num_obs=3), [7.5, 9.0, 8.0]
    obs = model.observations(values)
    one = sequential_ic(model, obs, simulations=(400,), config=CONFIG, network_sizes=SIZES)
    two = sequential_ic(model, obs, simulations=(200, 200), config=CONFIG, network_sizes=SIZES)
    ess_one = check_exact(model, values, one.network, seed=3)
    ess_two = check_exact(model, values, two.network, seed=3)
    assert ess_two > ess_one


def test_the_training_weights_use_the_density_importance_sampling_draws_from() -> None:
    """``proposal_log_ratios`` (training path) equals ``log q - log p`` recorded by the
    engine for traces drawn from the network's proposal (inference path)."""
    model = UnknownMean(num_obs=2)
    obs = model.observations([3.0, 4.0])
    result = sequential_ic(
        model, obs, simulations=(64,), config=BudgetConfig(max_epochs=2, batch_size=16),
        network_sizes=SIZES,
    )  # fmt: skip
    emp = sample_traces(
        model, 50, seed=4, proposal=NetworkProposal(result.network, obs), weighted=False,
        keep_traces=True, progress=False,
    )  # fmt: skip
    recorded = np.array([-float(t.log_proposal_correction) for t in emp.traces])
    computed = proposal_log_ratios(result.network, emp.traces, obs)
    np.testing.assert_allclose(computed, recorded, atol=1e-4)  # float32 network


def test_more_rounds_continue_a_shared_prior_round_reproducibly() -> None:
    model = UnknownMean(num_obs=2)
    fast = BudgetConfig(max_epochs=3, batch_size=16, seed=2)
    first = sequential_ic(model, model.observations([3.0, 4.0]), simulations=(64,),
                          config=fast, network_sizes=SIZES)  # fmt: skip
    again = sequential_ic(model, model.observations([3.0, 4.0]), simulations=(64,),
                          config=fast, network_sizes=SIZES)  # fmt: skip
    runs = [
        sequential_ic(model, model.observations(v), simulations=(32,), resume=first, config=fast)
        for v in ([3.0, 4.0], [3.0, 4.0], [-2.0, 0.0])
    ]
    assert first.sizes == [64] and len(first.traces) == 64 and not first.proposals
    assert [r.sizes for r in runs] == [[64, 32]] * 3 and len(runs[0].traces) == 96
    same = [first.network, again.network], [runs[0].network, runs[1].network]
    for a, b in same:
        assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not np.array_equal(runs[0].log_weights, runs[2].log_weights)


def test_bad_round_sizes_are_named() -> None:
    model = UnknownMean()
    with pytest.raises(ValueError, match="simulations must be one or more round sizes"):
        sequential_ic(model, model.observations([1.0, 2.0]), simulations=())
