"""Frozen, self-validating settings of each black-box method (one dataclass per method)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from .._checks import choice, in_range, positive_int

__all__ = [
    "BayesOptConfig",
    "CMAESConfig",
    "FiniteDifferenceConfig",
    "LGSOConfig",
    "MethodConfig",
    "ScoreFunctionConfig",
]

FLOWS = ("nsf", "maf")


def _positive(owner: str, name: str, value: object) -> None:
    in_range(name, value, 0.0, math.inf, low_open=True, owner=owner)


def _optional_int(owner: str, name: str, value: object) -> None:
    if value is not None:
        positive_int(name, value, owner)


@dataclass(frozen=True)
class LGSOConfig:
    """Local generative surrogate optimization (L-GSO, Shirobokov et al. 2020).

    Each step samples ``samples_per_step`` parameter points uniformly in the trust region
    ``[psi - epsilon, psi + epsilon]`` (cut to the bounds), runs the simulator once at each,
    fits a conditional normalizing flow of ``y | psi`` on every simulated point inside the
    region (new and, with ``replay``, earlier ones), and takes one Adam step on ``psi``
    along the gradient of ``E[objective(y)]`` under the flow.

    Args:
        epsilon: Half-width of the trust region, in the units of ``psi``.
        samples_per_step: New simulator calls per step; ``None``: ``max(8, dim)``.
        lr: Adam's learning rate on ``psi`` (each coordinate moves about ``lr`` per step).
        final_lr_factor: The learning rate follows a cosine schedule over the budget, from
            ``lr`` down to ``lr * final_lr_factor`` (``1.0``: constant).
        replay: Reuse earlier calls whose ``psi`` lies in the current trust region.
        max_replay: At most this many points train the flow (the most recent ones).
        replay_factor: Earlier calls are replayed when they lie within
            ``replay_factor * epsilon`` of ``psi`` in every coordinate. In many dimensions
            a step moves every coordinate (Adam normalizes each), so a box the size of the
            trust region loses nearly all earlier points at each step; a wider box keeps
            them (the context then runs over ``[-replay_factor, replay_factor]``).
        flow: ``"nsf"`` (neural spline flow: multimodal outputs) or ``"maf"`` (affine
            autoregressive flow: faster, unimodal conditionals).
        transforms: Transforms in the flow.
        hidden_features: Widths of the hidden layers of each transform's network.
        train_steps: Adam steps of the first fit of the flow.
        refit_steps: Adam steps of each later fit (warm-started from the previous flow).
        batch_size: Minibatch size of the flow's training.
        surrogate_lr: Learning rate of the flow's training.
        objective_samples: Draws from the flow per gradient estimate.
        trend: ``"linear"``: the surrogate is a least-squares linear trend of the outputs
            in ``psi`` plus the flow of the residuals (see :mod:`.surrogate`); ``"none"``:
            the flow alone.
        ridge: Ridge penalty of the linear trend, in units of the rescaled context and
            standardized outputs (each call adds about ``1/3`` per coordinate to the
            normal equations).
        residual_context: With the linear trend, condition the residuals' flow on ``psi``
            (``True``: their shape may change in the region, as in a mixture whose weights
            depend on ``psi``) or not (``False``, default: only the trend moves with
            ``psi``; with few noisy calls per step the flow's own dependence on ``psi`` is
            mostly fitted noise, which reaches the gradient: in 100 dimensions it lowered
            the cosine with the true gradient from 0.9 to 0.8, see the tests).

    Raises:
        ValueError: naming the offending field.
    """

    epsilon: float = 0.2
    samples_per_step: int | None = None
    lr: float = 0.05
    final_lr_factor: float = 0.1
    replay: bool = True
    max_replay: int = 4096
    replay_factor: float = 1.0
    flow: Literal["nsf", "maf"] = "nsf"
    transforms: int = 3
    hidden_features: tuple[int, ...] = (64, 64)
    train_steps: int = 400
    refit_steps: int = 100
    batch_size: int = 256
    surrogate_lr: float = 3e-3
    objective_samples: int = 1024
    trend: Literal["linear", "none"] = "linear"
    ridge: float = 1.0
    residual_context: bool = False

    def __post_init__(self) -> None:
        owner = "LGSOConfig"
        choice("trend", self.trend, ("linear", "none"), owner)
        _positive(owner, "ridge", self.ridge)
        in_range("replay_factor", self.replay_factor, 1.0, math.inf, owner=owner)
        _positive(owner, "epsilon", self.epsilon)
        _optional_int(owner, "samples_per_step", self.samples_per_step)
        _positive(owner, "lr", self.lr)
        in_range("final_lr_factor", self.final_lr_factor, 0.0, 1.0, owner=owner)
        _positive(owner, "surrogate_lr", self.surrogate_lr)
        for name in ("max_replay", "transforms", "train_steps", "refit_steps", "batch_size"):
            positive_int(name, getattr(self, name), owner)
        positive_int("objective_samples", self.objective_samples, owner)
        choice("flow", self.flow, FLOWS, owner)
        if not isinstance(self.residual_context, bool):
            raise ValueError(
                f"{owner}: residual_context must be True or False, got {self.residual_context!r}"
            )
        if not isinstance(self.replay, bool):
            raise ValueError(f"{owner}: replay must be True or False, got {self.replay!r}")
        hidden = self.hidden_features
        if not isinstance(hidden, tuple) or not hidden:
            raise ValueError(f"{owner}: hidden_features must be a non-empty tuple of ints")
        for width in hidden:
            positive_int("hidden_features", width, owner)


@dataclass(frozen=True)
class FiniteDifferenceConfig:
    """Central finite differences: ``2 * dim * repeats`` calls per gradient, then Adam.

    Args:
        step: Finite-difference step ``h`` along each coordinate.
        repeats: Simulator calls at each of the ``2 * dim`` points (their mean is used).
        lr: Adam's learning rate on ``psi``.
        final_lr_factor: End of the cosine schedule of the learning rate over the budget,
            as a fraction of ``lr`` (``1.0``: constant).
    """

    step: float = 0.1
    repeats: int = 1
    lr: float = 0.05
    final_lr_factor: float = 0.1

    def __post_init__(self) -> None:
        owner = "FiniteDifferenceConfig"
        _positive(owner, "step", self.step)
        positive_int("repeats", self.repeats, owner)
        _positive(owner, "lr", self.lr)
        in_range("final_lr_factor", self.final_lr_factor, 0.0, 1.0, owner=owner)


@dataclass(frozen=True)
class ScoreFunctionConfig:
    """REINFORCE over a Gaussian search distribution ``N(mu, sigma^2 I)``, then Adam on ``mu``.

    The gradient of ``E[R]`` with respect to ``mu`` is estimated by
    ``mean_i (R_i - b_i) (psi_i - mu) / sigma^2`` with ``b_i`` the mean of the *other*
    draws' objectives (leave-one-out: unbiased, lower variance) or ``0`` (``"none"``).

    Args:
        sigma: Standard deviation of the search distribution.
        samples_per_step: Draws of ``psi`` (one simulator call each) per step.
        lr: Adam's learning rate on ``mu``.
        final_lr_factor: End of the cosine schedule of the learning rate over the budget,
            as a fraction of ``lr`` (``1.0``: constant).
        baseline: ``"leave_one_out"`` or ``"none"``.
    """

    sigma: float = 0.1
    samples_per_step: int = 32
    lr: float = 0.05
    final_lr_factor: float = 0.1
    baseline: Literal["leave_one_out", "none"] = "leave_one_out"

    def __post_init__(self) -> None:
        owner = "ScoreFunctionConfig"
        _positive(owner, "sigma", self.sigma)
        positive_int("samples_per_step", self.samples_per_step, owner)
        _positive(owner, "lr", self.lr)
        in_range("final_lr_factor", self.final_lr_factor, 0.0, 1.0, owner=owner)
        choice("baseline", self.baseline, ("leave_one_out", "none"), owner)
        if self.baseline == "leave_one_out" and self.samples_per_step < 2:
            raise ValueError(f"{owner}: baseline='leave_one_out' needs samples_per_step >= 2")


@dataclass(frozen=True)
class CMAESConfig:
    """CMA-ES (the ``cma`` package) on the noisy objective.

    Args:
        sigma0: Initial step size (standard deviation of the search distribution).
        popsize: Candidates per generation; ``None``: ``cma``'s default ``4 + 3 ln(dim)``.
        repeats: Simulator calls per candidate (their mean is its objective value).
    """

    sigma0: float = 0.5
    popsize: int | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        owner = "CMAESConfig"
        _positive(owner, "sigma0", self.sigma0)
        _optional_int(owner, "popsize", self.popsize)
        positive_int("repeats", self.repeats, owner)
        if self.popsize is not None and self.popsize < 2:
            raise ValueError(f"{owner}: popsize must be at least 2, got {self.popsize}")


@dataclass(frozen=True)
class BayesOptConfig:
    """Bayesian optimization (BoTorch): a Gaussian process on the noisy objective with the
    noisy expected-improvement acquisition (``qLogNoisyExpectedImprovement``). Needs bounds.

    Args:
        initial_points: Space-filling (Sobol) points before the first fit, besides ``psi0``;
            ``None``: ``max(4, 2 * dim)``.
        batch: Points chosen per acquisition round.
        repeats: Simulator calls per point (their mean is the point's observation).
        max_points: Largest number of points the Gaussian process is fitted to (its cost
            grows as the cube); the run stops there even with budget left.
        restarts: Restarts of the acquisition optimizer.
        raw_samples: Random candidates that seed those restarts.
    """

    initial_points: int | None = None
    batch: int = 1
    repeats: int = 1
    max_points: int = 300
    restarts: int = 4
    raw_samples: int = 256

    def __post_init__(self) -> None:
        owner = "BayesOptConfig"
        _optional_int(owner, "initial_points", self.initial_points)
        for name in ("batch", "repeats", "max_points", "restarts", "raw_samples"):
            positive_int(name, getattr(self, name), owner)


MethodConfig = (
    LGSOConfig | FiniteDifferenceConfig | ScoreFunctionConfig | CMAESConfig | BayesOptConfig
)


def describe(config: Any) -> dict[str, object]:
    """The fields of a method's configuration as a plain dict (for results and reports)."""
    return {f.name: getattr(config, f.name) for f in fields(config)}
