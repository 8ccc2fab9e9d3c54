"""Simulators that raise or return NaN: a clear error (default) or skipped by policy, never a
silent NaN step; and how psi reaches models (arguments, named sites, PPX)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
from blackbox_helpers import FAST, METHODS, first, noisy_bowl

import rotalumis as rl
from rotalumis.optimize import (
    FiniteDifferenceConfig,
    OptimizationError,
    SimulatorCallError,
    optimize_blackbox,
)

torch.set_num_threads(1)

START = [2.5, -0.5]
BOUNDS = (-1.0, 3.0)


def broken_right(psi: torch.Tensor) -> np.ndarray:
    """Raises for psi[0] > 2.6 (a region the first steps visit), else the noisy bowl."""
    if float(psi[0]) > 2.6:
        raise ValueError("geometry overlaps")
    return noisy_bowl(psi)


def nan_right(psi: torch.Tensor) -> np.ndarray:
    out = noisy_bowl(psi)
    return out * np.nan if float(psi[0]) > 2.6 else out


@pytest.mark.parametrize("simulator", [broken_right, nan_right])
@pytest.mark.parametrize("method", ["lgso", "fd", "cmaes"])
def test_failing_call_stops_the_run_naming_call_and_psi(simulator, method):
    with pytest.raises(SimulatorCallError) as info:
        optimize_blackbox(simulator, START, first, method, budget=60, bounds=BOUNDS,
                          config=FAST[method], seed=0)  # fmt: skip
    err = info.value
    assert float(err.psi[0]) > 2.6
    message = str(err)
    assert f"simulator call {err.call} at psi=[" in message
    assert "on_error='skip'" in message
    if simulator is broken_right:
        assert "raised ValueError: geometry overlaps" in message
        assert isinstance(err.__cause__, ValueError)  # the original, chained
    else:
        assert "non-finite output" in message


def test_failure_in_a_worker_gives_the_same_error():
    errors = []
    for workers in (0, 2):
        with pytest.raises(SimulatorCallError) as info:
            optimize_blackbox(broken_right, START, first, "fd", budget=60, bounds=BOUNDS,
                              config=FAST["fd"], seed=0, workers=workers)  # fmt: skip
        errors.append((str(info.value), info.value.call))
    assert errors[0] == errors[1]


def flaky(psi: torch.Tensor) -> np.ndarray:
    """Fails one call in four: raises or returns NaN (its own draws are intercepted, so
    which calls fail is fixed by the seed)."""
    u = np.random.uniform()
    if u < 0.125:
        raise RuntimeError("mesh did not converge")
    out = noisy_bowl(psi)
    return out * np.nan if u < 0.25 else out


@pytest.mark.parametrize("method", METHODS)
def test_skip_policy_leaves_failed_calls_out(method):
    budget = 20 if method == "bo" else 120
    config = {
        "fd": FiniteDifferenceConfig(step=0.2, lr=0.2, repeats=3),  # a side rarely all fails
        "bo": dataclasses.replace(FAST["bo"], max_points=20),
    }.get(method)
    res = optimize_blackbox(flaky, START, first, method, budget=budget, bounds=BOUNDS,
                            config=config or FAST[method], seed=2, on_error="skip")  # fmt: skip
    assert res.failed_calls > 0
    assert res.calls <= budget
    # no NaN reached a parameter; a step's estimate is NaN only when all its calls failed
    assert torch.isfinite(res.psi).all() and torch.isfinite(res.history_psi).all()
    assert int((~torch.isfinite(res.history_objective)).sum()) <= res.failed_calls
    # and the run still made progress
    assert float(((res.psi - 1.0) ** 2).sum()) < 4.5


def test_skip_policy_with_every_call_failing_is_an_error_not_a_nan_step():
    def always_nan(psi):
        return np.array([np.nan])

    for method in METHODS:
        with pytest.raises(OptimizationError, match=r"failed|succeeded|successful"):
            optimize_blackbox(always_nan, START, first, method, budget=40, bounds=BOUNDS,
                              config=FAST[method], seed=0, on_error="skip")  # fmt: skip


def test_objective_that_is_not_finite_counts_as_a_failed_call():
    with pytest.raises(SimulatorCallError, match="gives the objective nan"):
        optimize_blackbox(noisy_bowl, START, lambda y: torch.log(y[:, 0] - 100.0), "fd",
                          budget=20, seed=0)  # fmt: skip


def test_output_shape_change_and_non_numbers_are_always_errors():
    def shape_changes(psi):
        return np.zeros(1 if float(psi[0]) > 2.5 else 2)

    with pytest.raises(SimulatorCallError, match="shape"):
        optimize_blackbox(shape_changes, START, lambda y: y.sum(1), "fd", budget=20,
                          seed=0, on_error="skip")  # fmt: skip
    with pytest.raises(SimulatorCallError, match="not numbers"):
        optimize_blackbox(lambda psi: "boom", START, first, "fd", budget=20, seed=0,
                          on_error="skip")  # fmt: skip


def test_lgso_needs_a_differentiable_objective():
    def numpy_objective(y):
        return torch.as_tensor(y.detach().numpy()[:, 0])

    def item_objective(y):
        return torch.tensor([float(v) for v in y.numpy()[:, 0]])  # numpy() of a grad tensor

    with pytest.raises(OptimizationError, match="carry no gradient"):
        optimize_blackbox(noisy_bowl, START, numpy_objective, "lgso", budget=20,
                          config=FAST["lgso"], seed=0)  # fmt: skip
    with pytest.raises(OptimizationError, match="failed on the surrogate's draws") as info:
        optimize_blackbox(noisy_bowl, START, item_objective, "lgso", budget=20,
                          config=FAST["lgso"], seed=0)  # fmt: skip
    assert isinstance(info.value.__cause__, RuntimeError)


# -- how psi reaches a model ---------------------------------------------------------------
class Design(rl.Model):
    """A rotalumis model whose design parameters are named sample sites (like a PPX
    simulator that samples its own settings)."""

    def forward(self):
        a = float(rl.sample(rl.Normal(0.0, 1.0), name="a"))
        b = float(rl.sample(rl.Normal(0.0, 1.0), name="b"))
        return torch.tensor([(a - 1.0) ** 2 + (b + 0.5) ** 2 + float(rl.sample(rl.Normal(0, 0.1)))])


class Keywords(rl.Model):
    def forward(self, a, b):
        a, b = float(a), float(b)
        return torch.tensor([(a - 1.0) ** 2 + (b + 0.5) ** 2 + float(rl.sample(rl.Normal(0, 0.1)))])


def test_named_sites_and_keyword_arguments_give_the_same_run():
    cfg = FAST["fd"]
    by_sites = optimize_blackbox(Design(), {"a": 2.0, "b": 0.5}, first, "fd", budget=80,
                                 config=cfg, seed=0, pass_as="sites")  # fmt: skip
    by_kwargs = optimize_blackbox(Keywords(), {"a": 2.0, "b": 0.5}, first, "fd", budget=80,
                                  config=cfg, seed=0)  # fmt: skip
    assert torch.allclose(by_sites.psi, by_kwargs.psi, atol=1e-5)
    assert abs(by_sites.params["a"] - 1.0) < 0.3 and abs(by_sites.params["b"] + 0.5) < 0.3


def test_sites_mode_names_a_site_the_model_never_samples():
    with pytest.raises(SimulatorCallError, match="no site named 'c'"):
        optimize_blackbox(Design(), {"a": 1.0, "c": 0.0}, first, "fd", budget=20,
                          pass_as="sites", seed=0)  # fmt: skip
    with pytest.raises(ValueError, match="pass_as='sites'"):
        optimize_blackbox(Design(), [1.0, 0.0], first, "fd", budget=20, pass_as="sites")


def flat_first(y: torch.Tensor) -> torch.Tensor:
    return y.reshape(y.shape[0], -1)[:, 0]  # PPX returns the one-element result as a scalar


def test_ppx_simulator_design_parameters_through_named_sites():
    from rotalumis.remote import RemoteModel
    from rotalumis.remote.server import PPXServer
    from rotalumis.remote.transport import memory_pair

    client, server_side = memory_pair(timeout=10.0)
    server = PPXServer(Design(), server_side, seed=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = RemoteModel(transport=client)
        with pytest.raises(ValueError, match="pass_as='sites'"):
            optimize_blackbox(remote, {"a": 2.0, "b": 0.5}, flat_first, "fd", budget=20)
        with pytest.raises(ValueError, match="cannot run in worker processes"):
            optimize_blackbox(remote, {"a": 2.0, "b": 0.5}, flat_first, "fd", budget=20,
                              pass_as="sites", workers=2)  # fmt: skip
        res = optimize_blackbox(remote, {"a": 2.0, "b": 0.5}, flat_first, "fd", budget=80,
                                config=FAST["fd"], seed=0, pass_as="sites")  # fmt: skip
        local = optimize_blackbox(Design(), {"a": 2.0, "b": 0.5}, flat_first, "fd", budget=80,
                                  config=FAST["fd"], seed=0, pass_as="sites")  # fmt: skip
        # the engine chooses every value (the remote simulator draws none itself)
        assert torch.allclose(res.psi, local.psi, atol=1e-5)
    finally:
        server.stop()
        thread.join(5)


def test_missing_optional_dependency_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "zuko" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"needs the package 'zuko'.*rotalumis\[optimize\]"):
        optimize_blackbox(noisy_bowl, START, first, "lgso", budget=20)
