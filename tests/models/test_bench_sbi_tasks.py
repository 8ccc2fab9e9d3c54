"""The sbibm benchmark's proposal-only row: sampled from the network alone, via the API."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rotalumis.core import InferenceError
from rotalumis.models import SBI_TASKS
from rotalumis.nn import BudgetConfig, InferenceNetwork, simulate_dataset, train_on_dataset
from rotalumis.nn.interest import SiteSequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(scope="module")
def bench():
    import bench_sbi_tasks

    return bench_sbi_tasks


def test_a_network_saved_without_its_sequence_gets_it_from_the_training_data(
    bench, tmp_path: Path
) -> None:
    model = SBI_TASKS["gaussian_mixture"]()
    ds = simulate_dataset(model, tmp_path / "d", 40, valid_fraction=0.25, seed=1)
    config = BudgetConfig(max_epochs=1, batch_size=16)
    net = train_on_dataset(ds, config=config, network_sizes=bench.NETWORK).network
    recorded = net.sequence.sites
    net.sequence = SiteSequence()  # as networks saved before the sequence was recorded
    path = tmp_path / "net.pt"
    net.save(path)
    with pytest.raises(InferenceError, match="no fixed sequence"):
        model.posterior(4, engine="ic", observe={"x": np.zeros(2)}, network=str(path),
                        proposal_only=True, seed=0)  # fmt: skip
    assert bench.with_sequence(path, ds) == path
    assert InferenceNetwork.load(path).sequence.sites == recorded
    post = model.posterior(4, engine="ic", observe={"x": np.zeros(2)}, network=str(path),
                           proposal_only=True, seed=0)  # fmt: skip
    assert post.info.engine == "proposal"
    assert post.get("theta").to_numpy().shape == (4, 2)
