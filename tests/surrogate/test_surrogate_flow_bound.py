"""The spline domain of a surrogate's flow heads (``SurrogateConfig.flow_bound``)."""

from __future__ import annotations

import pytest
import torch

from rotalumis.core import Model, Normal, Uniform, observe, sample
from rotalumis.surrogate import (
    SurrogateConfig,
    SurrogateNetwork,
    SurrogateTraining,
    train_surrogate,
)


class VectorObservation(Model):
    """A 2-vector observation (its head is a flow, the default for vector sites)."""

    def forward(self) -> None:
        theta = sample(Uniform(0.0, 1.0), name="theta")
        observe(Normal(torch.tensor([theta, 2.0 * theta]), 1.0), name="y")


def test_the_bound_reaches_the_flow_heads_and_is_saved(tmp_path) -> None:
    config = SurrogateConfig(lstm_dim=8, address_dim=4, value_dim=4, flow_bound=10.0)
    trained = train_surrogate(VectorObservation(), config, SurrogateTraining(num_traces=50, seed=1))
    path = trained.network.save(tmp_path / "s.pt")
    net = SurrogateNetwork.load(path)
    assert net.config.flow_bound == 10.0
    (i,) = (i for i, spec in enumerate(net.specs) if spec.name == "y")
    head = net.layers(i).head
    flow = head._flow(torch.zeros(1, 8))
    # splines act on [-10, 10]: u = 7 moves; u = 12 is past the domain, where it is the identity
    inside, outside = torch.full((1, 2), 7.0), torch.full((1, 2), 12.0)
    assert not torch.allclose(flow.transform(inside), inside, atol=1e-4)
    assert torch.allclose(flow.transform(outside), outside, atol=1e-5)


def test_surrogates_saved_before_flow_bound_load_with_the_old_domain() -> None:
    d = SurrogateConfig().to_dict()
    del d["flow_bound"]
    assert SurrogateConfig.from_dict(d).flow_bound == 5.0
    for bad in (0.0, -1.0, float("inf"), float("nan"), True, "10"):
        with pytest.raises(ValueError, match="flow_bound must be a positive number"):
            SurrogateConfig(flow_bound=bad)  # type: ignore[arg-type]
