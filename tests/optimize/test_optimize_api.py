"""The public surface of rotalumis.optimize: curated __all__, docstrings, runnable examples."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest
import torch

import rotalumis.optimize as opt

torch.set_num_threads(1)

MODULES = ["", ".config", ".estimator", ".handler", ".loop", ".pipeline", ".blackbox.api"]


def test_all_is_curated_and_sorted():
    assert sorted(opt.__all__) == opt.__all__
    assert set(opt.__all__) == {
        "BayesOptConfig",
        "BlackBoxResult",
        "CMAESConfig",
        "FiniteDifferenceConfig",
        "LGSOConfig",
        "ScoreFunctionConfig",
        "SimulatorCallError",
        "optimize_blackbox",
        "GradientEstimate",
        "GradientEstimator",
        "GradientHandler",
        "Loss",
        "OptimizationError",
        "OptimizationResult",
        "OptimizeConfig",
        "Pipeline",
        "optimize",
        "pipeline",
    }


@pytest.mark.parametrize("name", [n for n in opt.__all__ if n != "Loss"])  # Loss: a type alias
def test_public_objects_have_docstrings(name):
    assert inspect.getdoc(getattr(opt, name)), name


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module("rotalumis.optimize" + module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_errors_belong_to_the_hierarchy():
    from rotalumis.core.errors import RotalumisError

    assert issubclass(opt.OptimizationError, RotalumisError)
    assert issubclass(opt.OptimizationError, RuntimeError)
    assert issubclass(opt.SimulatorCallError, opt.OptimizationError)
