"""The typed settings of train_network: keyword form, clear errors, learning-rate scaling,
and how a data-parallel launch is recognised (no process group is started here)."""

from __future__ import annotations

import math

import pytest

from rotalumis.models import UnknownMean
from rotalumis.nn import (
    DistributedConfig,
    NetworkOptions,
    RunOptions,
    TrainingConfig,
    TrainingSource,
    launched_rank,
    train_network,
)
from rotalumis.nn.training._ddp import _launcher

SMALL = {"lstm_dim": 8, "observation_dim": 8}
TINY = TrainingConfig(num_traces=32, batch_size=16, valid_size=0, seed=1)


def test_grouped_and_keyword_forms_train_the_same_network() -> None:
    a = train_network(model=UnknownMean(), config=TINY, network_sizes=SMALL)
    b = train_network(
        config=TINY,
        source=TrainingSource(model=UnknownMean()),
        network_options=NetworkOptions(sizes=SMALL),
    )
    assert a.loss == b.loss and a.world_size == b.world_size == 1


def test_unknown_or_doubled_keywords_are_named() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) modle.*model"):
        train_network(modle=UnknownMean(), config=TINY)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="give checkpoint= inside run="):
        train_network(model=UnknownMean(), config=TINY, run=RunOptions(), checkpoint="x")
    with pytest.raises(ValueError, match="exactly one of model="):
        TrainingSource()
    with pytest.raises(ValueError, match="workers must be a non-negative"):
        TrainingSource(model=UnknownMean(), workers=-1)


def test_learning_rate_scales_with_world_size_after_warmup() -> None:
    linear = DistributedConfig(warmup_traces=100)
    assert linear.lr_factor(1, 0, 1000) == 1.0  # alone: never scaled
    assert linear.lr_factor(4, 0, 1000) == 1.0
    assert linear.lr_factor(4, 50, 1000) == pytest.approx(2.5)  # half-way: 1 + 3/2
    assert linear.lr_factor(4, 100, 1000) == 4.0
    assert DistributedConfig(lr_scaling="sqrt", warmup_traces=0).lr_factor(4, 0, 10) == 2.0
    assert DistributedConfig(lr_scaling="none").lr_factor(8, 10**6, 10) == 1.0
    # default warm-up: 5% of the budget
    assert DistributedConfig().lr_factor(2, 25, 1000) == pytest.approx(1.5)
    assert math.isclose(DistributedConfig().lr_factor(2, 50, 1000), 2.0)
    with pytest.raises(ValueError, match="lr_scaling must be one of"):
        DistributedConfig(lr_scaling="cubic")
    with pytest.raises(ValueError, match="warmup_traces must be"):
        DistributedConfig(warmup_traces=-1)


def test_launches_are_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID",
                 "SLURM_LOCALID", "MASTER_ADDR", "MASTER_PORT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert _launcher() is None and launched_rank() == 0
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _launcher() == (4, 3, 1) and launched_rank() == 3
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ValueError, match="WORLD_SIZE='four' is not an integer"):
        _launcher()
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_LOCALID", "0")
    with pytest.raises(ValueError, match="MASTER_ADDR is not set"):
        _launcher()
    monkeypatch.setenv("MASTER_ADDR", "node7")
    assert _launcher() == (2, 1, 0) and launched_rank() == 1


def test_a_checkpoint_of_several_processes_is_not_resumed_by_one(tmp_path) -> None:
    import json

    import torch

    from rotalumis.core.errors import CheckpointError

    ckpt = tmp_path / "run.ckpt"
    train_network(model=UnknownMean(), config=TINY, network_sizes=SMALL, checkpoint=ckpt)
    saved = torch.load(ckpt, weights_only=True)
    identity = json.loads(saved["identity"])  # as a 2-process run writes it
    identity["distributed"] = {"world_size": 2, "lr_scaling": "linear", "warmup_traces": None}
    saved["identity"] = json.dumps(identity)
    torch.save(saved, ckpt)
    more = TrainingConfig(num_traces=64, batch_size=16, valid_size=0, seed=1)
    with pytest.raises(CheckpointError, match=r"written by 2 processes .* resumed by one"):
        train_network(model=UnknownMean(), config=more, network_sizes=SMALL, checkpoint=ckpt)
