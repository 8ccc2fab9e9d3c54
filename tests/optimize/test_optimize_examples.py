"""Both issue-7 examples reach their exact optimum (small budgets, fixed seeds).

Tolerances: the projectile angle within 0.5 degrees of 20.72 (the largest error over six
seeds at this budget was 0.42 degrees; the naive noise-free answer, 23.7 degrees, is six
tolerances away), the beam energy within 0.1 GeV of 3.125 (largest
error over six seeds 0.06 GeV; the expected loss is then within 2e-3 of the optimum, the
objective being flat there).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def projectile():
    return load("projectile_design")


@pytest.fixture(scope="module")
def beamline():
    return load("two_stage_pipeline")


def test_projectile_exact_optimum_is_right(projectile):
    # the analytic optimum against a brute-force minimization of the exact expected loss
    m, s, g, d = projectile.SPEED_MEAN, projectile.SPEED_SD, projectile.G, projectile.TARGET
    ev2, ev4 = m**2 + s**2, m**4 + 6 * m**2 * s**2 + 3 * s**4

    def expected(deg):
        k = math.sin(2 * math.radians(deg)) / g
        return (k * k * ev4 - 2 * k * d * ev2 + d * d) / d**2

    grid = [i / 1000 for i in range(1000, 45000)]
    assert abs(min(grid, key=expected) - projectile.optimal_angle()) < 2e-3
    assert abs(expected(projectile.optimal_angle()) - projectile.optimal_loss()) < 1e-12
    assert abs(projectile.optimal_angle() - 20.72) < 0.01


def test_projectile_design_reaches_the_optimum(projectile):
    res = projectile.design(steps=250, batch_size=32, seed=0, progress=False)
    assert abs(float(res.params["angle"]) - projectile.optimal_angle()) < 0.5


def test_pipeline_exact_optimum_is_right(beamline):
    grid = [i / 10000 for i in range(-20000, 50000)]
    assert abs(min(grid, key=beamline.expected_loss) - beamline.optimal_energy()) < 2e-4
    assert abs(beamline.optimal_energy() - 3.125) < 1e-3


def test_pipeline_design_reaches_the_optimum(beamline):
    res = beamline.design(steps=200, batch_size=16, seed=0, progress=False)
    found, exact = float(res.params["energy"]), beamline.optimal_energy()
    assert abs(found - exact) < 0.1
    assert beamline.expected_loss(found) - beamline.expected_loss(exact) < 2e-3


@pytest.fixture(scope="module")
def muon_shield():
    return load("muon_shield_design")


def test_muon_shield_example_lgso_lowers_the_background(muon_shield):
    # exact expected deposits: 79.75 GeV at the start, 49.53 at the optimum (length 5 m,
    # field at its bound 1.8 T). In 400 calls (25 steps at a constant learning rate) L-GSO
    # takes the field to its bound, the length to its lower bound (shorter iron makes fewer
    # secondaries while the field is weak) and back up once the field is strong: below
    # 68 GeV (one call's noise is 3.4 GeV; answers are judged by the exact objective)
    length, field, best = muon_shield.reference_optimum()
    assert field == 1.8 and 4.0 < length < 6.0 and best < 50.0
    cfg = dataclasses.replace(
        muon_shield.CONFIG, final_lr_factor=1.0, train_steps=200, refit_steps=25
    )
    res = muon_shield.run(budget=400, seed=0, config=cfg)
    assert res.calls == 400
    found = muon_shield.expected_deposit(res.params["length"], res.params["field"])
    assert found < 68.0
    assert res.params["field"] == pytest.approx(1.8)
