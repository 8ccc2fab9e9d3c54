"""Models that misbehave, for the bad-input tests (``FILE.py:NAME`` targets of the CLI)."""

from __future__ import annotations

import torch

import rotalumis as rl


@rl.model
def vector_site() -> float:
    """A scalar latent observed through a site of shape (3,) ("v") and a scalar one ("y")."""
    mu = rl.sample(rl.Normal(0.0, 1.0), name="mu")
    rl.observe(rl.Normal(mu * torch.ones(3), 1.0), name="v")
    rl.observe(rl.Normal(mu, 1.0), name="y")
    return mu


@rl.model
def endless_draws() -> None:
    """A rejection loop that never accepts."""
    while True:
        if rl.sample(rl.Uniform(0.0, 1.0)) > 2.0:
            return


@rl.model
def endless_loop() -> None:
    """``while True`` without a single random choice."""
    mu = rl.sample(rl.Normal(0.0, 1.0), name="mu")
    while mu == mu:
        pass


@rl.model
def raises() -> float:
    """Fails on the traces where mu > 1.5 (a few per cent)."""
    mu = rl.sample(rl.Normal(0.0, 1.0), name="mu")
    if mu > 1.5:
        return 1.0 / 0.0
    return mu


@rl.model
def impossible() -> float:
    """Every trace has zero weight: factor(-inf) and no observations."""
    mu = rl.sample(rl.Normal(0.0, 1.0), name="mu")
    rl.factor(float("-inf"))
    return mu


def _draw() -> float:
    return rl.sample(rl.Normal(0.0, 1.0), name="x")


@rl.model
def same_name_twice() -> float:
    """Two sample sites named "x" in one trace."""
    return _draw() + _draw()


@rl.model
def busy() -> float:
    """A slow simulator: spins the CPU for 2 ms per trace."""
    import time

    mu = rl.sample(rl.Normal(0.0, 1.0), name="mu")
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass
    return mu
