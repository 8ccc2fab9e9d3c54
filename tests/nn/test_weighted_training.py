"""train_weighted's options: a cosine learning-rate schedule and minibatches built once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rotalumis.data import TraceBatch
from rotalumis.models import UnknownMean
from rotalumis.nn import BudgetConfig, InferenceNetwork, train_weighted

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def traces():
    return list(UnknownMean(num_obs=2).traces(60, seed=3))


def _network(traces, seed: int = 0) -> InferenceNetwork:
    torch.manual_seed(seed)
    return InferenceNetwork.for_batch(
        TraceBatch.from_traces(traces[:8]), lstm_dim=8, observation_dim=8
    )


class _Spy:
    """Records, at every optimizer step, its learning rates and the minibatch trained on."""

    def __init__(self, monkeypatch, network: InferenceNetwork) -> None:
        self.rates: list[list[float]] = []
        self.batches: list[int] = []
        step, loss = torch.optim.Adam.step, network.loss

        def spy_step(opt, *args, **kwargs):
            self.rates.append([g["lr"] for g in opt.param_groups])
            return step(opt, *args, **kwargs)

        def spy_loss(batch, *args, **kwargs):
            if network.training:
                self.batches.append(id(batch))
            return loss(batch, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", spy_step)
        monkeypatch.setattr(network, "loss", spy_loss)


def test_cosine_schedule_anneals_every_parameter_group_to_zero(traces, monkeypatch) -> None:
    network = _network(traces)
    spy = _Spy(monkeypatch, network)
    config = BudgetConfig(max_epochs=4, patience=4, batch_size=30, learning_rate=1e-2, seed=1)
    result = train_weighted(network, traces, np.zeros(len(traces)), config, schedule="cosine")
    assert result.epochs == 4
    per_epoch = len(spy.rates) // 4  # 54 training traces: 2 steps an epoch
    assert per_epoch == 2
    for epoch in range(4):
        expected = 0.5 * 1e-2 * (1 + math.cos(math.pi * epoch / 4))
        for rates in spy.rates[epoch * per_epoch : (epoch + 1) * per_epoch]:
            assert rates == pytest.approx([expected] * len(rates))


def test_constant_schedule_is_the_default(traces, monkeypatch) -> None:
    network = _network(traces)
    spy = _Spy(monkeypatch, network)
    config = BudgetConfig(max_epochs=3, patience=3, batch_size=30, learning_rate=1e-2, seed=1)
    train_weighted(network, traces, np.zeros(len(traces)), config)
    assert {r for rates in spy.rates for r in rates} == {1e-2}


def test_shuffles_built_once_are_used_in_turn(traces, monkeypatch) -> None:
    network = _network(traces)
    spy = _Spy(monkeypatch, network)
    config = BudgetConfig(max_epochs=5, patience=5, batch_size=30, learning_rate=1e-3, seed=1)
    train_weighted(network, traces, np.zeros(len(traces)), config, shuffles=2)
    epochs = [tuple(spy.batches[k : k + 2]) for k in range(0, 10, 2)]
    assert epochs[0] == epochs[2] == epochs[4] and epochs[1] == epochs[3]
    assert not set(epochs[0]) & set(epochs[1])  # two shuffles: other batch objects
    # without ``shuffles`` every epoch builds new minibatches
    network = _network(traces)
    spy = _Spy(monkeypatch, network)
    train_weighted(network, traces, np.zeros(len(traces)), config)
    assert len(set(spy.batches)) == len(spy.batches) == 10


def test_options_still_fit_the_weighted_loss(traces) -> None:
    """With both options, training lowers the held-out loss as the default does."""
    config = BudgetConfig(max_epochs=30, patience=30, batch_size=16, learning_rate=1e-2, seed=2)
    w = np.zeros(len(traces))
    before, everything = _network(traces), TraceBatch.from_traces(traces)
    before.add_sites(everything)
    before.eval()
    with torch.no_grad():
        start = float(before.loss(everything))
    network = _network(traces)
    result = train_weighted(network, traces, w, config, schedule="cosine", shuffles=3)
    assert result.best_valid_loss < start - 0.5


def test_bad_options_are_named(traces) -> None:
    network = _network(traces)
    with pytest.raises(ValueError, match="schedule"):
        train_weighted(network, traces, np.zeros(len(traces)), schedule="linear")
    with pytest.raises(ValueError, match="shuffles"):
        train_weighted(network, traces, np.zeros(len(traces)), shuffles=0)


def _held_out_parts(monkeypatch) -> list[np.ndarray]:
    """Records the trace indices of every validation batch train_weighted scores."""
    import rotalumis.nn.weighted_training as wt

    seen: list[np.ndarray] = []
    score = wt._weighted_loss

    def spy(network, batches, w):
        seen.extend(part for _, part in batches)
        return score(network, batches, w)

    monkeypatch.setattr(wt, "_weighted_loss", spy)
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_groups_are_held_out_whole(traces, monkeypatch, seed) -> None:
    """With ``groups``, a tenth of the groups is held out, each whole (correlated traces,
    e.g. a stretch of one MCMC chain, never straddle the split); without, a tenth of the
    traces, drawn one by one."""
    config = BudgetConfig(max_epochs=1, patience=1, batch_size=30, seed=seed)
    groups = [f"chain {i // 6}" for i in range(len(traces))]  # 10 groups of 6
    seen = _held_out_parts(monkeypatch)
    train_weighted(_network(traces), traces, np.zeros(len(traces)), config, groups=groups)
    held = np.concatenate(seen)
    assert len(held) == 6 and len({groups[i] for i in held}) == 1
    seen.clear()
    train_weighted(_network(traces), traces, np.zeros(len(traces)), config)
    held = np.concatenate(seen)
    assert len(held) == 6 and len({groups[i] for i in held}) > 1


def test_bad_groups_are_named(traces) -> None:
    network, w = _network(traces), np.zeros(len(traces))
    with pytest.raises(ValueError, match="60 traces but 59 group labels"):
        train_weighted(network, traces, w, groups=list(range(59)))
    with pytest.raises(ValueError, match="at least two groups"):
        train_weighted(network, traces, w, groups=["one chain"] * 60)
