"""An exception inside ``forward()`` names the trace and the seed that reproduce it (issue
12, defect 8); a model whose every trace has zero weight is an ``InferenceError``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rotalumis import (
    DistributionError,
    InferenceError,
    Model,
    ModelError,
    Normal,
    factor,
    sample,
)

THRESHOLD = 1.5


class Fragile(Model):
    """Fails (if ``fail``) on the traces where mu > THRESHOLD."""

    def __init__(self, fail: bool = True, error: type[Exception] = ZeroDivisionError) -> None:
        super().__init__("Fragile")
        self.fail, self.error = fail, error

    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        if self.fail and mu > THRESHOLD:
            if self.error is DistributionError:
                Normal(0.0, -mu)  # an invalid parameter computed inside the model
            raise self.error("simulator crashed")
        return mu


def _first_failing_trace(seed: int, n: int = 2000) -> int:
    """The index of the first trace with mu > THRESHOLD, from a run that does not fail."""
    mu = np.asarray(Fragile(fail=False).prior(n, seed=seed).get("mu").to_numpy())
    return int(np.argmax(mu > THRESHOLD))


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("engine", ["is", "prior"])
def test_the_error_names_the_failing_trace_and_the_runs_seed(engine: str, workers: int) -> None:
    index = _first_failing_trace(seed=11)
    with pytest.raises(ModelError) as info:
        Fragile().posterior(2000, engine=engine, seed=11, workers=workers)
    assert str(info.value).startswith(
        "model 'Fragile' raised ZeroDivisionError: simulator crashed "
        f"(in trace {index} of the run with seed 11; rerun with that seed to reproduce it)"
    )
    assert isinstance(info.value.__cause__, ZeroDivisionError) or workers  # the original


def test_a_run_without_seed_names_the_fresh_seed_which_reproduces_it() -> None:
    with pytest.raises(ModelError) as info:
        Fragile().posterior(2000)
    found = re.search(r"in trace (\d+) of the run with seed (\d+)", str(info.value))
    assert found is not None
    index, seed = int(found[1]), int(found[2])
    assert index == _first_failing_trace(seed)


def test_rotalumis_errors_keep_their_type_and_get_the_trace() -> None:
    with pytest.raises(DistributionError) as info:
        Fragile(error=DistributionError).posterior(2000, seed=11)
    assert "Normal: parameter 'stddev'" in str(info.value)
    assert f"in trace {_first_failing_trace(11)} of the run with seed 11" in str(info.value)


def test_mcmc_and_single_executions_name_their_seed() -> None:
    with pytest.raises(ModelError, match=r"in execution \d+ of the random stream with seed 11"):
        Fragile().posterior(2000, engine="rmh", seed=11)
    with pytest.raises(ModelError, match=r"of random stream \d+ spawned from seed 11"):
        Fragile().posterior(2000, engine="rmh", seed=11, num_chains=2)
    safe = Fragile(fail=False)
    seed = next(s for s in range(1000) if safe.get_trace(seed=s)["mu"].value > THRESHOLD)
    # one execution: the model's own exception, with a note naming the seed
    with pytest.raises(ZeroDivisionError) as info:
        Fragile().get_trace(seed=seed)
    notes = getattr(info.value, "__notes__", [f"seed {seed}"])  # notes: Python 3.11+
    assert any(f"seed {seed}" in note for note in notes)


def test_every_trace_impossible_without_observations_is_an_inference_error() -> None:
    class Impossible(Model):
        def forward(self) -> float:
            mu = sample(Normal(0.0, 1.0), name="mu")
            factor(float("-inf"))
            return mu

    with pytest.raises(InferenceError, match="all 50 importance weights are zero"):
        Impossible().posterior(50, seed=0)
    assert len(Impossible().prior(50, seed=0)) == 50  # the prior does not weight
