"""Addresses whose parameters never change are drawn from the simulator's own distribution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from rotalumis.core import RNG, Model, Normal, Poisson, TraceHandler, observe, sample
from rotalumis.surrogate import (
    SurrogateConfig,
    SurrogateModel,
    SurrogateNetwork,
    SurrogateTraining,
    simulate_steps,
    train_surrogate,
)
from rotalumis.surrogate._sequence import Step

SMALL = SurrogateConfig(lstm_dim=16, address_dim=4, value_dim=4)


class Prior(Model):
    """``mu`` and ``k`` have fixed priors; ``x`` depends on ``mu``; ``y`` is observed."""

    def forward(self) -> float:
        mu = sample(Normal(1.0, 2.0), name="mu")
        k = sample(Poisson(3.0), name="k")
        x = sample(Normal(mu, 1.0), name="x")
        observe(Normal(x + float(k), 0.5), name="y")
        return mu


@pytest.fixture(scope="module")
def surrogate() -> SurrogateModel:
    training = SurrogateTraining(num_traces=300, epochs=1, seed=2)
    return train_surrogate(Prior(), SMALL, training).model


def _names(net: SurrogateNetwork, exact: bool) -> set[str | None]:
    return {s.name for i, s in enumerate(net.specs) if net.layers(i).exact == exact}


def test_only_addresses_with_fixed_parameters_are_exact(surrogate: SurrogateModel) -> None:
    assert _names(surrogate.network, True) == {"mu", "k"}
    assert _names(surrogate.network, False) == {"x", "y"}


def test_exact_addresses_draw_and_score_as_the_simulator(surrogate: SurrogateModel) -> None:
    # batched drafting (the default) and one execution at a time draw from the same law
    for batch in (64, 1):
        model = SurrogateModel(surrogate.network, batch=batch)
        rows = simulate_steps(model, 2000, 5)
        mu = np.array([next(s.value[0] for s in r if s.name == "mu") for r in rows])
        k = np.array([next(s.value[0] for s in r if s.name == "k") for r in rows])
        assert stats.kstest(mu, "norm", args=(1.0, 2.0)).pvalue > 1e-3
        # Poisson(3): mean 3, s.e. sqrt(3 / 2000) = 0.039; 5 s.e.
        assert abs(k.mean() - 3.0) < 5 * math.sqrt(3.0 / 2000)
    tracer = TraceHandler()
    with tracer:
        SurrogateModel(surrogate.network, batch=1).execute(RNG(3))
    mu_site, k_site = tracer.trace.variables[:2]
    for v in (-2.0, 0.3, 4.0):
        assert float(mu_site.distribution.log_prob(v)) == pytest.approx(
            float(Normal(1.0, 2.0).log_prob(v))
        )
    assert float(k_site.distribution.log_prob(5)) == pytest.approx(float(Poisson(3.0).log_prob(5)))


def test_parameters_that_change_later_hand_the_address_to_its_head() -> None:
    net = SurrogateNetwork(SMALL)

    def step(scale: float) -> Step:
        return Step("m:1__Normal__1", "sample", "z", "Normal", (0.5,), (), (0.0, scale))

    (layers,) = net.add_sites([[step(1.0)], [step(1.0)]])
    assert layers.exact and net.fixed == {"m:1__Normal__1": (0.0, 1.0)}
    net.add_sites([[step(1.0)], [step(2.0)]])
    assert not layers.exact and net.fixed == {}
    assert not any(
        lay.exact
        for lay in SurrogateNetwork(SurrogateConfig(exact_priors=False)).add_sites([[step(1.0)]])
    )


def test_visits_before_an_address_is_known_count_too(tmp_path: Path) -> None:
    """With ``min_visits`` 3 the layers are made in the batch of the third visit; the
    parameters of the visits in the batches before it decide exactness as well (a save and
    load in between included)."""
    config = SurrogateConfig(lstm_dim=16, address_dim=4, value_dim=4, min_visits=3)

    def step(scale: float) -> Step:
        return Step("m:1__Normal__1", "sample", "z", "Normal", (0.5,), (), (0.0, scale))

    for scales, exact in (((1.0, 2.0, 2.0), False), ((2.0, 2.0, 2.0), True)):
        net = SurrogateNetwork(config)
        assert net.add_sites([[step(scales[0])], [step(scales[1])]]) == []
        net = SurrogateNetwork.load(net.save(tmp_path / "s.pt"))
        (layers,) = net.add_sites([[step(scales[2])]])
        assert layers.exact is exact
        assert net.fixed == ({"m:1__Normal__1": (0.0, 2.0)} if exact else {})
        assert net.pending == {}


def test_saved_and_loaded_and_old_files_learn_every_address(
    surrogate: SurrogateModel, tmp_path: Path
) -> None:
    path = surrogate.network.save(tmp_path / "s.pt")
    loaded = SurrogateNetwork.load(path)
    assert loaded.fixed == surrogate.network.fixed and _names(loaded, True) == {"mu", "k"}
    # configurations written before the option existed: every address learned
    old = {k: v for k, v in SMALL.to_dict().items() if k != "exact_priors"}
    assert SurrogateConfig.from_dict(old).exact_priors is False
