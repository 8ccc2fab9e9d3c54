"""Fidelity of trained surrogates on the reference models with changing structure (slow).

Tolerances come from the Monte Carlo error of the comparison, never from a fixed guess:

* trace types: the TV distance between the surrogate's and the simulator's frequencies,
  against ``Z_TV`` times the TV between two independent simulator samples of that size
  (the noise floor, estimated by :func:`compare_surrogate` from two halves);
* values per address: C2ST accuracy <= 0.55 (the issue's criterion) plus 3 standard errors
  of an accuracy measured on ``2 n`` classified points (``sqrt(0.25 / 2n)``);
* posteriors: Z = 5 Monte Carlo standard errors (tests/infer/mc.py) of importance sampling
  and RMH on the surrogate, against the exact posterior of the simulator.

The trainings are short (the machine is shared); benchmarks/bench_surrogate.py runs the
large budgets (10^5 traces).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rotalumis.diagnostics import compare_surrogate
from rotalumis.models import Branching, HiddenMarkovModel, MarsagliaUnknownMean
from rotalumis.surrogate import SurrogateConfig, SurrogateModel, SurrogateTraining, train_surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from mc import Z, indicator_stderr, stderr, weighted_mean

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

Z_TV = 3.0
COMPARED = 2000  # prior traces of each model
C2ST_SAMPLES = 1000
C2ST_MAX = 0.55 + 3 * math.sqrt(0.25 / (2 * C2ST_SAMPLES))

BUDGETS = {
    # model: (training traces, epochs)
    "Branching": (12_000, 3),
    "HiddenMarkovModel": (3_000, 3),
    "MarsagliaUnknownMean": (12_000, 3),
}
HMM_STEPS = 6  # a shorter chain than the default 16 (the machine is shared)
MODELS = {"Branching": Branching, "HiddenMarkovModel": lambda: HiddenMarkovModel(HMM_STEPS),
          "MarsagliaUnknownMean": MarsagliaUnknownMean}  # fmt: skip


_TRAINED: dict[str, tuple[Any, SurrogateModel]] = {}


def trained(name: str) -> tuple[Any, SurrogateModel]:
    if name not in _TRAINED:
        model = MODELS[name]()
        n, epochs = BUDGETS[name]
        torch.manual_seed(0)
        result = train_surrogate(
            model, SurrogateConfig(), SurrogateTraining(num_traces=n, epochs=epochs, seed=1)
        )
        _TRAINED[name] = (model, result.model)
    return _TRAINED[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trace_types_values_and_observations_match_the_simulator(name: str) -> None:
    model, surrogate = trained(name)
    f = compare_surrogate(
        surrogate, model, num_traces=COMPARED, seed=2, c2st_samples=C2ST_SAMPLES, c2st_sites=4
    )
    assert f.fallback_rate == 0.0
    assert f.trace_type_tv <= Z_TV * f.trace_type_tv_noise + 1e-12, (
        f"TV {f.trace_type_tv:.4f}, noise floor {f.trace_type_tv_noise:.4f}"
    )
    scores = {s["name"] or s["address"]: s["c2st"] for s in f.sites if s["c2st"] is not None}
    assert scores and max(scores.values()) <= C2ST_MAX, scores


def test_importance_sampling_on_the_branching_surrogate_gives_the_exact_posterior() -> None:
    model, surrogate = trained("Branching")
    y = 3.0
    post = surrogate.posterior(20_000, engine="is", observe={"obs": y}, seed=3)
    exact = model.exact_posterior(y)
    n = post.get("n")
    values = np.asarray(n.to_numpy(), dtype=float)
    weights = np.asarray(n.weights, dtype=float)
    for k in range(8):
        ind = (values == k).astype(float)
        est, se = weighted_mean(ind, weights), max(indicator_stderr(ind, weights, exact[k]), 1e-3)
        assert abs(est - exact[k]) < Z * se, f"P(n={k}): {est:.4f} vs {exact[k]:.4f} (se {se:.4f})"
    mean = sum(k * p for k, p in enumerate(exact))
    assert abs(weighted_mean(values, weights) - mean) < Z * stderr(values, weights)


def test_rmh_on_the_branching_surrogate_gives_the_exact_posterior() -> None:
    """RMH changes the number of latents (n) and replays the rest: the surrogate's transitions
    must follow the values (argmax) for the acceptance ratios to be exact."""
    model, surrogate = trained("Branching")
    y = 3.0
    post = surrogate.posterior(8_000, engine="rmh", observe={"obs": y}, seed=4, burn_in=500)
    exact = model.exact_posterior(y)
    values = np.asarray(post.get("n").to_numpy(), dtype=float)
    for k in range(8):
        ind = (values == k).astype(float)
        est, se = float(ind.mean()), max(indicator_stderr(ind, None, exact[k]), 1e-3)
        assert abs(est - exact[k]) < Z * se, f"P(n={k}): {est:.4f} vs {exact[k]:.4f} (se {se:.4f})"
