"""Four tasks of the simulation-based-inference benchmark (sbibm, Lueckmann et al. 2021).

Each task is a :class:`~rotalumis.core.Model` with one vector-valued latent site named
``"theta"`` (the parameters) and one observation named ``"x"`` (the data), written from the
task definitions of sbibm 1.1.0 (priors, simulators and constants are the same; the code is
our own). Unlike sbibm, every task here also has its exact likelihood, so importance
sampling — and inference compilation — can weight with it:

================  ====  ====  =============================================================
task              dim θ dim x model
================  ====  ====  =============================================================
two_moons         2     2     θ ~ U(-1, 1)²; a ~ U(-π/2, π/2), r ~ N(0.1, 0.01);
                              x = (r cos a + 0.25, r sin a) + (-|θ₁ + θ₂|/√2, (θ₂ - θ₁)/√2)
gaussian_linear   10    10    θ ~ N(0, 0.1 I); x ~ N(θ, 0.1 I)
slcp              5     8     θ ~ U(-3, 3)⁵; x = four i.i.d. draws of a 2-D normal with mean
                              (θ₁, θ₂), standard deviations θ₃², θ₄², correlation tanh θ₅
                              (1e-6 added to both variances, as sbibm does)
gaussian_mixture  2     2     θ ~ U(-10, 10)²; x ~ ½ N(θ, I) + ½ N(θ, 0.01 I)
================  ====  ====  =============================================================

The two-moons likelihood is the density of ``p = (r cos a + 0.25, r sin a)`` after the change
of variables from ``(a, r)``: ``N(r; 0.1, 0.01) / (π r)`` where ``p`` lies right of 0.25
(``cos a > 0``), zero elsewhere. Values are float64 tensors.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from rotalumis.core import Distribution, Model, Normal, Uniform, observe, sample
from rotalumis.core.rng import RNG

__all__ = [
    "SBI_TASKS",
    "GaussianLinearTask",
    "GaussianMixtureTask",
    "SLCPTask",
    "TwoMoonsTask",
]

_DTYPE = torch.float64
_LOG_2PI = math.log(2.0 * math.pi)


def _tensor(x: Any) -> torch.Tensor:
    return torch.as_tensor(x, dtype=_DTYPE)


class _Likelihood(Distribution):
    """A task's likelihood given ``theta``: a joint density over the whole data vector."""

    __slots__ = ("theta",)
    param_names: ClassVar[tuple[str, ...]] = ("theta",)
    data_shape: ClassVar[tuple[int, ...]] = ()

    def __init__(self, theta: Any) -> None:
        self.theta = _tensor(theta)

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.data_shape)

    def log_prob(self, value: Any) -> torch.Tensor:
        """The joint log-density of the data vector (a 0-d tensor)."""
        raise NotImplementedError

    def in_support(self, value: Any) -> bool:
        return bool(torch.isfinite(self.log_prob(value)))

    def _check(self, value: Any) -> torch.Tensor:
        x = _tensor(value)
        if tuple(x.shape) != self.data_shape:
            raise ValueError(f"{self.name}: data must have shape {self.data_shape}, got {x.shape}")
        return x


class TwoMoonsLikelihood(_Likelihood):
    """Two moons: ``x = p(a, r) + shift(theta)`` (see the module docstring)."""

    __slots__ = ()
    name: ClassVar[str] = "TwoMoonsLikelihood"
    data_shape: ClassVar[tuple[int, ...]] = (2,)
    R_LOC, R_SCALE, OFFSET = 0.1, 0.01, 0.25

    def _shift(self) -> torch.Tensor:
        t0, t1 = self.theta[0], self.theta[1]
        root2 = math.sqrt(2.0)
        return torch.stack([-torch.abs(t0 + t1) / root2, (t1 - t0) / root2])

    def sample(self, rng: RNG) -> torch.Tensor:
        u = torch.rand(2, generator=rng.torch, dtype=_DTYPE)
        a = math.pi * (u[0] - 0.5)
        r = self.R_LOC + self.R_SCALE * torch.randn(1, generator=rng.torch, dtype=_DTYPE)[0]
        p = torch.stack([r * torch.cos(a) + self.OFFSET, r * torch.sin(a)])
        return p + self._shift()

    def log_prob(self, value: Any) -> torch.Tensor:
        p = self._check(value) - self._shift()
        u, v = p[0] - self.OFFSET, p[1]
        r = torch.sqrt(u * u + v * v)
        z = (r - self.R_LOC) / self.R_SCALE
        lp = -0.5 * z * z - math.log(self.R_SCALE) - 0.5 * _LOG_2PI - math.log(math.pi)
        lp = lp - torch.log(r)
        return torch.where(u > 0, lp, torch.full_like(lp, -math.inf))


class SLCPLikelihood(_Likelihood):
    """SLCP: four i.i.d. 2-D normal draws, flattened to 8 values (draw 1, draw 2, ...)."""

    __slots__ = ()
    name: ClassVar[str] = "SLCPLikelihood"
    data_shape: ClassVar[tuple[int, ...]] = (8,)
    NUM_DRAWS, EPS = 4, 1e-6

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.theta
        s1, s2, rho = t[2] ** 2, t[3] ** 2, torch.tanh(t[4])
        return t[:2], s1 * s1 + self.EPS, s2 * s2 + self.EPS, rho * s1 * s2

    def sample(self, rng: RNG) -> torch.Tensor:
        mean, c00, c11, c01 = self._moments()
        l00 = torch.sqrt(c00)
        l10 = c01 / l00
        l11 = torch.sqrt(c11 - l10 * l10)
        e = torch.randn(self.NUM_DRAWS, 2, generator=rng.torch, dtype=_DTYPE)
        x0 = mean[0] + l00 * e[:, 0]
        x1 = mean[1] + l10 * e[:, 0] + l11 * e[:, 1]
        return torch.stack([x0, x1], 1).reshape(-1)

    def log_prob(self, value: Any) -> torch.Tensor:
        d = self._check(value).reshape(self.NUM_DRAWS, 2)
        mean, c00, c11, c01 = self._moments()
        d = d - mean
        det = c00 * c11 - c01 * c01
        quad = (c11 * d[:, 0] ** 2 - 2 * c01 * d[:, 0] * d[:, 1] + c00 * d[:, 1] ** 2) / det
        return (-_LOG_2PI - 0.5 * torch.log(det) - 0.5 * quad).sum()


class GaussianMixtureLikelihood(_Likelihood):
    """Gaussian mixture: ``½ N(theta, I) + ½ N(theta, 0.01 I)`` (one component per draw)."""

    __slots__ = ()
    name: ClassVar[str] = "GaussianMixtureLikelihood"
    data_shape: ClassVar[tuple[int, ...]] = (2,)
    SCALES = (1.0, 0.1)

    def sample(self, rng: RNG) -> torch.Tensor:
        wide = bool(torch.rand(1, generator=rng.torch, dtype=_DTYPE)[0] < 0.5)
        scale = self.SCALES[0] if wide else self.SCALES[1]
        return self.theta + scale * torch.randn(2, generator=rng.torch, dtype=_DTYPE)

    def log_prob(self, value: Any) -> torch.Tensor:
        d = self._check(value) - self.theta
        comps = [
            (-0.5 * (d / s) ** 2 - math.log(s) - 0.5 * _LOG_2PI).sum() + math.log(0.5)
            for s in self.SCALES
        ]
        return torch.logsumexp(torch.stack(comps), 0)


class _Task(Model):
    """A benchmark task: ``theta`` from the prior, then ``x`` from the likelihood.

    Attributes:
        task_name: The sbibm name of the task.
        parameter_dim: Elements of ``theta``.
        data_dim: Elements of ``x``.
    """

    task_name: ClassVar[str] = ""
    parameter_dim: ClassVar[int] = 0
    data_dim: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__(self.task_name)

    def prior_distribution(self) -> Distribution:
        """The prior of ``theta``."""
        raise NotImplementedError

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        """The distribution of ``x`` given ``theta``."""
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        theta = sample(self.prior_distribution(), name="theta")
        observe(self.likelihood(theta), name="x")
        return theta  # type: ignore[no-any-return]


def _box(bound: float, dim: int) -> Uniform:
    return Uniform(
        torch.full((dim,), -bound, dtype=_DTYPE), torch.full((dim,), bound, dtype=_DTYPE)
    )


class TwoMoonsTask(_Task):
    """sbibm ``two_moons``: a bimodal, crescent-shaped posterior in 2-D."""

    task_name = "two_moons"
    parameter_dim = 2
    data_dim = 2

    def prior_distribution(self) -> Distribution:
        return _box(1.0, 2)

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        return TwoMoonsLikelihood(theta)


class GaussianLinearTask(_Task):
    """sbibm ``gaussian_linear``: a 10-D normal prior and likelihood (exact posterior)."""

    task_name = "gaussian_linear"
    parameter_dim = 10
    data_dim = 10
    VARIANCE = 0.1  # of the prior and of the noise

    def prior_distribution(self) -> Distribution:
        return Normal(torch.zeros(10, dtype=_DTYPE), math.sqrt(self.VARIANCE))

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        return Normal(theta, math.sqrt(self.VARIANCE))

    def exact_posterior(self, x: Any) -> tuple[torch.Tensor, float]:
        """Posterior mean (``x / 2``) and per-element standard deviation (``√0.05``)."""
        return _tensor(x) / 2.0, math.sqrt(self.VARIANCE / 2.0)


class SLCPTask(_Task):
    """sbibm ``slcp``: simple likelihood, complex (four-modal) posterior in 5-D."""

    task_name = "slcp"
    parameter_dim = 5
    data_dim = 8

    def prior_distribution(self) -> Distribution:
        return _box(3.0, 5)

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        return SLCPLikelihood(theta)


class GaussianMixtureTask(_Task):
    """sbibm ``gaussian_mixture``: a broad and a narrow normal around ``theta`` in 2-D."""

    task_name = "gaussian_mixture"
    parameter_dim = 2
    data_dim = 2

    def prior_distribution(self) -> Distribution:
        return _box(10.0, 2)

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        return GaussianMixtureLikelihood(theta)


SBI_TASKS: dict[str, type[_Task]] = {
    t.task_name: t for t in (TwoMoonsTask, GaussianLinearTask, SLCPTask, GaussianMixtureTask)
}
"""The tasks by sbibm name."""
