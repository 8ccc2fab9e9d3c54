"""Training on a fixed simulation budget: epochs with early stopping on a held-out loss, the
best epoch kept, resumable; and `rotalumis train --dataset DIR`, which stops by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rotalumis.cli.main import app
from rotalumis.core import DatasetError
from rotalumis.data import TraceDataset
from rotalumis.models import UnknownMean
from rotalumis.nn import (
    BudgetConfig,
    EarlyStopping,
    TrainingConfig,
    simulate_dataset,
    train_network,
    train_on_dataset,
)
from rotalumis.nn.training._batches import validate as _validate
from rotalumis.nn.training._batches import validation_set as _validation_set

torch.set_num_threads(1)
SIZES = {"lstm_dim": 16, "observation_dim": 16}
# small batches and a large learning rate: 240 training traces are overfitted within epochs
FAST = BudgetConfig(max_epochs=300, patience=3, batch_size=16, learning_rate=1e-2, seed=4)


@pytest.fixture(scope="module")
def sims(tmp_path_factory) -> TraceDataset:
    directory = tmp_path_factory.mktemp("sims")
    return simulate_dataset(UnknownMean(num_obs=4), directory, 300, valid_fraction=0.2, seed=2)


def held_out_loss(network, dataset: TraceDataset) -> float:
    _, valid = dataset.split(1)
    cfg = TrainingConfig(num_traces=1, valid_size=len(valid), batch_size=64)
    return _validate(network, _validation_set(None, valid, cfg, ()))


def test_simulations_are_split_for_validation(sims: TraceDataset) -> None:
    assert len(sims) == 300 and len(sims.shard_indices) == 5
    train, valid = sims.split(1)
    assert (len(train), len(valid)) == (240, 60)


def test_training_stops_by_itself_and_keeps_the_best_epoch(sims: TraceDataset) -> None:
    result = train_on_dataset(sims, config=FAST, network_sizes=SIZES)
    epochs = [t // 240 for t, _ in result.valid_loss]
    assert result.stopped_early and epochs == list(range(1, len(epochs) + 1))
    assert len(epochs) < FAST.max_epochs
    best_traces, best_loss = result.best_valid_loss
    losses = [v for _, v in result.valid_loss]
    assert best_loss == min(losses) and losses.index(best_loss) == len(losses) - 1 - 3
    assert best_traces == result.valid_loss[losses.index(best_loss)][0]
    # the network handed back is the best epoch's, not the last one's
    assert held_out_loss(result.network, sims) == pytest.approx(best_loss, rel=1e-6)
    assert held_out_loss(result.network, sims) < losses[-1]


def test_epochs_on_a_budget_beat_one_pass_over_it(sims: TraceDataset) -> None:
    """The issue's motivation: online training sees each of N simulations once."""
    once = TrainingConfig(num_traces=240, batch_size=16, learning_rate=1e-2, valid_size=0)
    train, _ = sims.split(1)
    single = train_network(dataset=train, config=once, network_sizes=SIZES).network
    epochs = train_on_dataset(sims, config=FAST, network_sizes=SIZES).network
    assert held_out_loss(epochs, sims) < held_out_loss(single, sims) - 0.1


def test_an_interrupted_run_resumes_to_the_same_network(sims: TraceDataset, tmp_path) -> None:
    whole = train_on_dataset(sims, config=FAST, network_sizes=SIZES, checkpoint=tmp_path / "a")

    class Stop(Exception):
        pass

    epochs = whole.traces // 240
    assert epochs >= 4
    stop_at = 240 * (epochs // 2) + 16 * 3  # mid-epoch, after a checkpoint at an epoch's end

    def kill(traces: int, total: int, loss: float) -> None:
        if traces == stop_at:
            raise Stop

    with pytest.raises(Stop):
        train_on_dataset(sims, config=FAST, network_sizes=SIZES, checkpoint=tmp_path / "b",
                         on_step=kill)  # fmt: skip
    resumed = train_on_dataset(sims, config=FAST, network_sizes=SIZES, checkpoint=tmp_path / "b")
    assert resumed.best_valid_loss == whole.best_valid_loss
    assert resumed.valid_loss == whole.valid_loss and resumed.stopped_early
    a, b = whole.network.state_dict(), resumed.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_settings_are_named(sims: TraceDataset, tmp_path) -> None:
    with pytest.raises(ValueError, match="patience must be >= 1"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="valid_fraction must be in"):
        BudgetConfig(valid_fraction=1.5)
    one = simulate_dataset(UnknownMean(), tmp_path / "one", 20, valid_fraction=0.99)
    with pytest.raises(DatasetError, match="nothing to hold out"):
        train_on_dataset(TraceDataset(one.directory, shards=[0]), config=FAST)
    with pytest.raises(ValueError, match="early_stopping needs validation traces"):
        train_network(
            dataset=sims,
            config=TrainingConfig(num_traces=100, valid_size=0),
            early_stopping=EarlyStopping(),
        )


def test_cli_train_on_a_dataset_stops_by_itself(sims: TraceDataset, tmp_path: Path) -> None:
    net = tmp_path / "net.pt"
    r = CliRunner().invoke(
        app,
        ["train", "--dataset", str(sims.directory), "--out", str(net), "--patience", "3",
         "--batch-size", "16", "--lr", "0.01", "--lstm-dim", "16", "--head", "real=flow",
         "--seed", "4", "-q", "--no-plot"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "no better validation loss for 3" in r.output and "kept epoch" in r.output
    assert "last shard, 60 traces, held out" in r.output and net.exists()
    from rotalumis.nn import InferenceNetwork

    assert [s.proposal for s in InferenceNetwork.load(net).specs] == ["flow"]
    r = CliRunner().invoke(app, ["train", "--dataset", str(sims.directory), "--head", "x=nsf"])
    assert r.exit_code == 2 and "--head expects SELECTOR=mixture|flow" in r.output
