"""A simulator written in torch, unmodified, gives the exact posterior (issue 11, defect 3):
its torch draws are sites that importance sampling weights and RMH proposes and replays.

The simulator draws its own parameter ``theta = torch.randn(())`` (named by pattern), a
latent ``x = theta + Tensor.normal_(0, 1)`` and the measurement ``y = torch.normal(x, 0.5)``
(declared observed: its own noise is the likelihood). So ``y | theta ~ Normal(theta,
sqrt(1.25))`` and the posterior of ``theta`` is Normal with variance ``1 / (1 + 1 / 1.25)``
and mean ``var * y / 1.25``. Tolerance: 5 Monte Carlo standard errors (Kish ESS for IS,
batch means for RMH); seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from intercept_support import check_normal_posterior

from rotalumis.intercept import InterceptedModel

Y = 1.5
VAR = 1.0 / (1.0 + 1.0 / 1.25)
MEAN = VAR * Y / 1.25


def _parameter() -> torch.Tensor:
    return torch.randn(())


def _latent(theta: torch.Tensor) -> torch.Tensor:
    return theta + torch.empty(()).normal_(0.0, 1.0)


def _measure(x: torch.Tensor) -> torch.Tensor:
    return torch.normal(x, torch.tensor(0.5))


def simulate() -> torch.Tensor:
    """Unmodified torch simulator: knows nothing about rotalumis."""
    return _measure(_latent(_parameter()))


MODEL = InterceptedModel(simulate, names={"theta": "._parameter:"}, observed={"y": "._measure:"})


@pytest.mark.parametrize(
    ("engine", "n", "opts"),
    [("is", 4000, {}), ("rmh", 4000, {"burn_in": 200, "scale": 0.5})],
)
def test_exact_posterior_through_torch_draws(engine: str, n: int, opts: dict) -> None:
    post = MODEL.posterior(n, engine=engine, observe={"y": Y}, seed=3, progress=False, **opts)
    theta = post.get("theta")
    values = np.asarray([float(v) for v in theta.to_numpy()], dtype=float)
    w = np.asarray(theta.weights, dtype=float)
    check_normal_posterior(values, None if np.allclose(w, w[0]) else w, MEAN, VAR, engine)


def test_the_observed_torch_draw_returns_the_data() -> None:
    trace = MODEL.get_trace(seed=0, observe={"y": Y})
    assert float(trace.result) == Y and trace.result.dtype == torch.float32
    assert [s.name for s in trace.observations] == ["y"]
    assert [s.name for s in trace.controlled] == ["theta", None]
    assert trace.controlled[1].address.split("/")[-1] == "Tensor.normal___Normal__1"
