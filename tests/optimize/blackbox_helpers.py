"""Small simulators and fast settings shared by the black-box optimization tests."""

from __future__ import annotations

import numpy as np
import torch

from rotalumis.optimize import (
    BayesOptConfig,
    CMAESConfig,
    FiniteDifferenceConfig,
    LGSOConfig,
    ScoreFunctionConfig,
)

#: Settings small enough for tests (a tiny flow, few training steps).
FAST = {
    "lgso": LGSOConfig(
        epsilon=0.5,
        samples_per_step=8,
        lr=0.2,
        hidden_features=(16,),
        transforms=1,
        flow="maf",
        train_steps=60,
        refit_steps=15,
        objective_samples=128,
    ),
    "fd": FiniteDifferenceConfig(step=0.2, lr=0.2),
    "score": ScoreFunctionConfig(sigma=0.3, samples_per_step=8, lr=0.2),
    "cmaes": CMAESConfig(sigma0=0.5, popsize=6),
    "bo": BayesOptConfig(initial_points=4, raw_samples=32, restarts=1, max_points=12),
}
METHODS = list(FAST)


def noisy_bowl(psi: torch.Tensor) -> np.ndarray:
    """An unmodified NumPy simulator: ``y = |psi - 1|^2 + N(0, 0.1^2)``; ``E[y]`` is lowest
    at ``psi = 1``."""
    return np.array([float(((psi - 1.0) ** 2).sum()) + np.random.normal(0.0, 0.1)])


def first(y: torch.Tensor) -> torch.Tensor:
    """The objective ``R(y) = y[0]``."""
    return y[:, 0]


class Recorder:
    """Wraps a simulator and records every ``psi`` it is called with (``workers=0`` only)."""

    def __init__(self, simulator=noisy_bowl) -> None:
        self.simulator = simulator
        self.seen: list[torch.Tensor] = []

    def __call__(self, psi: torch.Tensor) -> np.ndarray:
        self.seen.append(psi.clone())
        return self.simulator(psi)
