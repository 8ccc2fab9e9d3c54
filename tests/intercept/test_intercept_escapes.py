"""Randomness that escapes interception is detected, not silent (issue 11, defect 3).

After its first execution, a model that intercepts a simulator runs twice more from the
prior with one seed; when they differ it warns with ``EscapedRandomnessWarning``, naming
what differed. What cannot be intercepted: ``scipy.stats.sampling`` (UNU.RAN draws from the
NumPy bit generator in C), any bit generator used through its ``ctypes`` interface, torch's
C++ kernels that draw without a Python-level call (dropout).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import sampling

from rotalumis.core import Normal
from rotalumis.intercept import EscapedRandomnessWarning, InterceptedModel


class _StandardNormal:
    """A density for UNU.RAN (unnormalised)."""

    def pdf(self, x: float) -> float:
        return math.exp(-0.5 * x * x)


def _unuran(seed: int | None) -> sampling.NumericalInversePolynomial:
    return sampling.NumericalInversePolynomial(
        _StandardNormal(), random_state=np.random.default_rng(seed)
    )


def _model(simulate, **options) -> InterceptedModel:  # type: ignore[no-untyped-def]
    return InterceptedModel(
        simulate,
        priors={"theta": Normal(0.0, 1.0)},
        observe={"y": lambda out: Normal(float(out), 0.1)},
        **options,
    )


@pytest.mark.parametrize("seed", [7, None], ids=["seeded", "unseeded"])
def test_unuran_noise_escapes_and_the_engine_warns(seed: int | None) -> None:
    sampler = _unuran(seed)  # set up once, outside the model, as UNU.RAN is meant to be used

    def simulate(theta: float) -> float:
        return theta + 0.5 * float(sampler.rvs())

    model = _model(simulate)
    with pytest.warns(EscapedRandomnessWarning, match="observation 'y'") as caught:
        model.posterior(50, engine="is", observe={"y": 1.0}, seed=0, progress=False)
    assert len(caught) == 1  # once per model, not per execution
    message = str(caught[0].message)
    assert "model 'simulate'" in message and "same seed" in message


def test_a_bit_generator_used_through_ctypes_escapes() -> None:
    bitgen = np.random.PCG64(3)
    next_double, state = bitgen.ctypes.next_double, bitgen.ctypes.state

    def simulate(theta: float) -> float:
        return theta + next_double(state)

    with pytest.warns(EscapedRandomnessWarning, match="observation 'y'"):
        _model(simulate).get_trace(seed=0, observe={"y": 1.0})


def test_torch_dropout_escapes() -> None:
    def simulate() -> torch.Tensor:
        # 256 draws, not 8: two masks of 8 coincide 1 time in 256 and the check then has
        # nothing to see (CI hit that); with 256 the chance is 2**-256.
        x = torch.rand(256)  # intercepted
        return torch.nn.functional.dropout(x, p=0.5, training=True)  # C++: not intercepted

    with pytest.warns(EscapedRandomnessWarning, match="the result"):
        InterceptedModel(simulate).get_trace(seed=0)


def test_the_check_can_be_turned_off() -> None:
    sampler = _unuran(7)

    def simulate(theta: float) -> float:
        return theta + 0.5 * float(sampler.rvs())

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # also without the suite's filterwarnings setting
        _model(simulate, check_escapes=False).get_trace(seed=0, observe={"y": 1.0})


def test_a_fully_intercepted_simulator_passes_the_check() -> None:
    def simulate(theta: float) -> float:
        g = np.random.default_rng()
        return theta + g.normal() + float(torch.randn(())) + np.random.standard_t(3.0)

    model = _model(simulate)
    assert model.check_escapes(5) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.get_trace(seed=0, observe={"y": 1.0})


def test_a_failing_check_does_not_break_the_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def simulate() -> torch.Tensor:
        calls.append(1)
        if len(calls) > 1:  # only the check's executions fail
            raise RuntimeError("side effect")
        return torch.randn(())

    trace = InterceptedModel(simulate).get_trace(seed=0)
    assert trace.result.shape == () and len(calls) == 2
    assert "escape check skipped" in caplog.text
