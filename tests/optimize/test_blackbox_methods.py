"""Every black-box method: improves a noisy bowl, respects the budget and the bounds, and
gives the same run for any number of workers."""

from __future__ import annotations

import pytest
import torch
from blackbox_helpers import FAST, METHODS, Recorder, first, noisy_bowl

from rotalumis.optimize import OptimizationError, optimize_blackbox

torch.set_num_threads(1)

START = [2.5, -0.5]
BOUNDS = (-1.0, 3.0)
BUDGETS = {"lgso": 120, "fd": 120, "score": 120, "cmaes": 120, "bo": 12}


def exact(psi: torch.Tensor) -> float:
    return float(((psi - 1.0) ** 2).sum())  # E[y] of noisy_bowl (its noise has mean 0)


@pytest.mark.parametrize("method", METHODS)
def test_method_improves_respects_budget_and_bounds(method):
    sim = Recorder()
    budget = BUDGETS[method]
    res = optimize_blackbox(
        sim, START, first, method, budget=budget, bounds=BOUNDS, config=FAST[method], seed=1
    )
    # the budget: every call counted, none beyond it
    assert len(sim.seen) == res.calls <= budget
    assert res.calls == int(res.history_calls[-1])
    # the bounds: every call and every answer inside
    called = torch.stack(sim.seen)
    assert bool(((called >= BOUNDS[0]) & (called <= BOUNDS[1])).all())
    for _, psi in res.answers():
        assert bool(((psi >= BOUNDS[0]) & (psi <= BOUNDS[1])).all())
    # progress: from E[y] = 4.5 at the start to well below (the optimum is 0; the start is
    # 9 noise standard deviations of one call above the threshold)
    assert exact(res.psi) < 1.0, res
    assert res.steps >= 1 and res.failed_calls == 0
    assert torch.isfinite(res.history_objective).all()


@pytest.mark.parametrize("method", ["lgso", "fd", "score", "cmaes", "bo"])
def test_identical_for_zero_and_two_workers(method):
    budget = 8 if method == "bo" else 40
    runs = [
        optimize_blackbox(noisy_bowl, START, first, method, budget=budget, bounds=BOUNDS,
                          config=FAST[method], seed=7, workers=w)
        for w in (0, 2)
    ]  # fmt: skip
    a, b = runs
    assert torch.equal(a.psi, b.psi)
    assert torch.equal(a.history_psi, b.history_psi)
    assert torch.equal(a.history_objective, b.history_objective)
    assert torch.equal(a.history_calls, b.history_calls)


def test_same_seed_same_run_other_seed_other_run():
    runs = [
        optimize_blackbox(noisy_bowl, START, first, "score", budget=40, config=FAST["score"],
                          seed=s)
        for s in (3, 3, 4)
    ]  # fmt: skip
    assert torch.equal(runs[0].history_objective, runs[1].history_objective)
    assert not torch.equal(runs[0].history_objective, runs[2].history_objective)


@pytest.mark.parametrize("method", METHODS)
def test_budget_below_one_step_is_a_clear_error(method):
    with pytest.raises(OptimizationError, match="less than one step"):
        optimize_blackbox(noisy_bowl, START, first, method, budget=3, bounds=BOUNDS,
                          config=FAST[method], seed=0)  # fmt: skip


def test_bo_needs_bounds():
    with pytest.raises(OptimizationError, match="needs finite bounds"):
        optimize_blackbox(noisy_bowl, START, first, "bo", budget=20, config=FAST["bo"])


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="method must be one of"):
        optimize_blackbox(noisy_bowl, START, first, "newton", budget=10)
    with pytest.raises(TypeError, match="takes a LGSOConfig"):
        optimize_blackbox(noisy_bowl, START, first, "lgso", budget=10, config=FAST["fd"])
    with pytest.raises(ValueError, match="budget"):
        optimize_blackbox(noisy_bowl, START, first, "fd", budget=0)
    with pytest.raises(ValueError, match=r"psi0\[0\] = 2.5 is outside"):
        optimize_blackbox(noisy_bowl, START, first, "fd", budget=10, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match="parameter 1 has low"):
        optimize_blackbox(noisy_bowl, START, first, "fd", budget=10, bounds=([0, 3], [3, 3]))
    with pytest.raises(ValueError, match="psi0 must be finite"):
        optimize_blackbox(noisy_bowl, [float("nan")], first, "fd", budget=10)
    with pytest.raises(ValueError, match="on_error"):
        optimize_blackbox(noisy_bowl, START, first, "fd", budget=10, on_error="ignore")
    with pytest.raises(ValueError, match="workers"):
        optimize_blackbox(noisy_bowl, START, first, "fd", budget=10, workers=-1)
    with pytest.raises(ValueError, match="epsilon"):
        type(FAST["lgso"])(epsilon=0.0)
