"""Engine behaviour beyond accuracy: reproducibility, options, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rotalumis import (
    DistributionError,
    InferenceError,
    Model,
    Normal,
    ObservationError,
    Uniform,
    model,
    observe,
    sample,
)
from rotalumis.models import Branching, UnknownMean

OBS = {"obs0": 8.0, "obs1": 9.0}


@pytest.mark.parametrize("engine", ["prior", "is", "lmh", "rmh"])
def test_same_seed_same_result_different_seed_different(engine: str) -> None:
    m = Branching()
    a = m.posterior(300, engine=engine, observe={"obs": 5.0}, seed=11)
    b = m.posterior(300, engine=engine, observe={"obs": 5.0}, seed=11)
    c = m.posterior(300, engine=engine, observe={"obs": 5.0}, seed=12)
    assert np.array_equal(a.to_numpy(), b.to_numpy())
    assert np.array_equal(a.log_weights, b.log_weights)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())


def test_mcmc_burn_in_thin_chains() -> None:
    post = UnknownMean().posterior(
        100, engine="rmh", observe=OBS, seed=0, burn_in=50, thin=3, num_chains=3
    )
    assert len(post) == 300
    chains = post.info.chains
    assert [c.length for c in chains] == [100, 100, 100]
    assert all(0.0 < c.acceptance_rate < 1.0 for c in chains)


def test_mcmc_initial_trace_is_used() -> None:
    m = UnknownMean()
    init = m.get_trace(seed=0, observe={"mu": 6.5})  # a trace whose mu is 6.5
    init.variables[0].observed = False  # use it as an ordinary latent
    # tiny random-walk steps: the chain cannot wander far from where it starts
    post = m.posterior(5, engine="rmh", observe=OBS, seed=0, initial_trace=init, scale=1e-9)
    assert np.allclose(post.to_numpy(), 6.5, atol=1e-6)


def test_unknown_observation_name_is_named() -> None:
    with pytest.raises(ObservationError, match="never observes obs7") as err:
        UnknownMean().posterior(10, observe={"obs0": 1.0, "obs7": 2.0}, seed=0)
    assert "obs0" in str(err.value) and "obs1" in str(err.value)  # lists what it does observe
    with pytest.raises(ObservationError, match="never observes typo"):
        UnknownMean().posterior(10, engine="rmh", observe={"typo": 1.0}, seed=0)


def test_non_finite_observation() -> None:
    with pytest.raises(ObservationError, match=r"'obs0'.*finite"):
        UnknownMean().posterior(10, observe={"obs0": float("nan"), "obs1": 1.0}, seed=0)


def test_all_weights_zero_is_an_inference_error() -> None:
    @model
    def bounded() -> float:
        x = sample(Uniform(0.0, 1.0), name="x")
        observe(Uniform(0.0, x), name="y")
        return x

    with pytest.raises(InferenceError, match="all 200 importance weights are zero"):
        bounded.posterior(200, observe={"y": 5.0}, seed=0)
    with pytest.raises(InferenceError, match="no initial trace"):
        bounded.posterior(10, engine="lmh", observe={"y": 5.0}, seed=0)


def test_invalid_distribution_parameters_name_the_culprit() -> None:
    class Bad(Model):
        def forward(self) -> float:
            s = sample(Normal(0.0, 1.0), name="s")
            return sample(Normal(0.0, s - 100.0), name="x")  # negative stddev

    with pytest.raises(DistributionError, match="Normal: parameter 'stddev' must be > 0"):
        Bad().posterior(5, seed=0)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="num_traces"):
        UnknownMean().posterior(0, observe=OBS)
    with pytest.raises(ValueError, match="unknown engine 'nuts'"):
        UnknownMean().posterior(10, engine="nuts", observe=OBS)
    with pytest.raises(ValueError, match="scale"):
        UnknownMean().posterior(10, engine="rmh", observe=OBS, scale=-1.0)


def test_keep_traces() -> None:
    post = UnknownMean().posterior(20, observe=OBS, seed=0, keep_traces=True)
    assert post.traces is not None and len(post.traces) == 20
    assert post.traces[0]["mu"].value == post[0]
