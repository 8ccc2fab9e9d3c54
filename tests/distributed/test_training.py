"""Online training with its batches simulated on a real Dask ``LocalCluster``.

Batch ``i`` is simulated from ``derive_seed(seed, "train", i)`` wherever it runs and the
batches are consumed in index order, so the trained network must be identical, parameter
for parameter, to the one trained with its batches simulated here or in forked workers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rotalumis.core import Model, ModelError, Normal, observe, sample
from rotalumis.models import Branching
from rotalumis.nn import InferenceNetwork, TrainingConfig, train_network

distributed = pytest.importorskip("dask.distributed")

from rotalumis.distributed import DaskExecutor  # noqa: E402

torch.set_num_threads(1)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SMALL = {"lstm_dim": 16, "observation_dim": 8, "address_dim": 4, "value_dim": 4}


def _train(**where):
    config = TrainingConfig(num_traces=320, batch_size=32, valid_size=32, valid_every=160, seed=3)
    return train_network(model=Branching(rate=1.0), config=config, network_sizes=SMALL, **where)


def test_online_training_on_a_cluster_trains_the_same_network() -> None:
    here = _train()
    forked = _train(workers=2)
    with DaskExecutor("local:2") as cluster:
        on_cluster = _train(cluster=cluster)
    want = here.network.state_dict()
    for result in (forked, on_cluster):
        got = result.network.state_dict()
        assert got.keys() == want.keys()
        for key, value in want.items():
            torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
        assert result.traces == here.traces


class Breaks(Model):
    """Raises when it draws x > 2.5 (in about one execution of 160)."""

    def forward(self) -> None:
        x = sample(Normal(0.0, 1.0), name="x")
        if x > 2.5:
            raise RuntimeError(f"simulator broke at x={x:.3f}")
        observe(Normal(x, 1.0), name="y")


def test_a_failing_batch_on_a_cluster_is_named() -> None:
    config = TrainingConfig(
        num_traces=4096, batch_size=64, valid_size=0, seed=1, on_invalid="raise"
    )
    with DaskExecutor("local:1") as cluster, pytest.raises(ModelError) as info:
        train_network(model=Breaks(), config=config, network_sizes=SMALL, cluster=cluster)
    assert "simulator broke at x=" in str(info.value)
    assert "training batch" in str(info.value) and "seed 1" in str(info.value)


def test_rotalumis_train_on_a_cluster_saves_the_same_network(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "unknown_mean.py"
    tiny = ["-n", "128", "--batch-size", "32", "--no-plot", "-q", "--lstm-dim", "8"]
    nets = {}
    for name, where in (("here", []), ("dask", ["--cluster", "local:2"])):
        nets[name] = tmp_path / f"{name}.pt"
        r = subprocess.run(
            [sys.executable, "-m", "rotalumis.cli", "train", f"{example}:model",
             "--out", str(nets[name]), *tiny, *where],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    want = InferenceNetwork.load(nets["here"]).state_dict()
    got = InferenceNetwork.load(nets["dask"]).state_dict()
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
