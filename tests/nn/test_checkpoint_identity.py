"""A checkpoint is resumed only by the training run that wrote it (issue 12, defect 3).

Before, a rerun with other hyper-parameters, another seed or another architecture resumed
the old checkpoint without a word and saved the old network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rotalumis.core import CheckpointError
from rotalumis.data import TraceDataset, generate_dataset
from rotalumis.models import GaussianMixture, UnknownMean
from rotalumis.nn import InferenceNetwork, TrainingConfig, train_network

torch.set_num_threads(1)
SMALL = {"lstm_dim": 16, "observation_dim": 8, "address_dim": 4, "value_dim": 4}


def _config(n: int = 64, **kw: Any) -> TrainingConfig:
    return TrainingConfig(**{"num_traces": n, "batch_size": 32, "valid_size": 32, **kw})


def _train(ckpt: Path, config: TrainingConfig | None = None, **kw: Any) -> Any:
    kw.setdefault("model", UnknownMean())
    kw.setdefault("network_sizes", SMALL)
    return train_network(config=config or _config(), checkpoint=ckpt, **kw)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"config": _config(seed=1)}, "seed 0 (now 1)"),
        ({"config": _config(learning_rate=3e-3)}, "learning_rate 0.001 (now 0.003)"),
        ({"config": _config(batch_size=16)}, "batch_size 32 (now 16)"),
        ({"network_sizes": {**SMALL, "lstm_dim": 32}}, "lstm_dim 16 (now 32)"),
        ({"embeddings": {"obs0": "cnn2d"}}, "observation 'obs0' embedding 'ff' (now 'cnn2d')"),
        ({"model": GaussianMixture()}, "model 'UnknownMean' (now 'GaussianMixture')"),
    ],
    ids=["seed", "learning-rate", "batch-size", "architecture", "embedding", "model"],
)
def test_resuming_with_other_settings_is_an_error(
    change: dict[str, Any], named: str, tmp_path: Path
) -> None:
    ckpt = tmp_path / "net.ckpt"
    _train(ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError) as info:
        _train(ckpt, **change)
    text = str(info.value)
    assert f"checkpoint {ckpt} belongs to another training run" in text and named in text
    assert "fresh=True" in text and "--fresh" in text  # says how to start afresh
    assert ckpt.read_bytes() == before  # untouched


def test_same_settings_resume_and_a_larger_budget_continues(tmp_path: Path) -> None:
    ckpt = tmp_path / "net.ckpt"
    first = _train(ckpt)
    again = _train(ckpt)  # nothing left to do
    assert again.resumed_traces == again.traces == first.traces == 64
    more = _train(ckpt, _config(128))
    assert more.resumed_traces == 64 and more.traces == 128
    # options left unset take the checkpoint's architecture
    rest = train_network(model=UnknownMean(), config=_config(160), checkpoint=ckpt)
    assert rest.traces == 160 and rest.network.config.lstm_dim == 16


def test_fresh_starts_over(tmp_path: Path) -> None:
    ckpt = tmp_path / "net.ckpt"
    _train(ckpt)
    result = _train(ckpt, _config(seed=5), fresh=True, network_sizes={**SMALL, "lstm_dim": 8})
    assert result.resumed_traces == 0 and result.network.config.lstm_dim == 8
    assert _train(ckpt, _config(seed=5), network_sizes={**SMALL, "lstm_dim": 8}).traces == 64


def test_another_dataset_is_another_run(tmp_path: Path) -> None:
    generate_dataset(UnknownMean(), tmp_path / "a", 64, seed=1, traces_per_shard=32)
    generate_dataset(UnknownMean(), tmp_path / "b", 64, seed=2, traces_per_shard=32)
    ckpt = tmp_path / "net.ckpt"
    train_network(
        dataset=TraceDataset(tmp_path / "a"), config=_config(), checkpoint=ckpt, network_sizes=SMALL
    )
    with pytest.raises(CheckpointError, match="dataset_seed 1 \\(now 2\\)"):
        train_network(dataset=TraceDataset(tmp_path / "b"), config=_config(), checkpoint=ckpt)


def test_a_given_network_must_match_the_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "net.ckpt"
    first = _train(ckpt)
    same = InferenceNetwork(first.network.config)
    assert _train(ckpt, network=same).traces == 64
    other = InferenceNetwork(
        type(first.network.config)(**{**first.network.config.__dict__, "value_dim": 8})
    )
    with pytest.raises(CheckpointError, match="value_dim 4 \\(now 8\\)"):
        _train(ckpt, network=other)
