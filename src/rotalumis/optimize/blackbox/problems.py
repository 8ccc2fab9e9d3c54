"""The stochastic benchmark problems of the L-GSO paper (Shirobokov et al., NeurIPS 2020).

Reimplemented from the definitions in the paper's public code (problem formulas, noise,
dimensions and starting points; the code is not copied): each simulator draws its output
``y`` given the parameters ``psi`` and latent noise, and the objective is ``E[R(y)]``. Each
is a rotalumis model (``forward(psi)``), so any black-box method can call it, and each knows
its exact expected objective (:meth:`expected_objective`), which the benchmark and the tests
use to judge answers without spending simulator calls.

* :class:`ThreeHump` (2 parameters, start ``(2, 0)``): a two-component mixture whose means
  depend on ``psi`` through the three-hump camel function
  ``h(psi) = 2 psi1^2 - 1.05 psi1^4 + psi1^6 / 6 + psi1 psi2 + psi2^2``:
  ``x1 ~ U(-2, 2)``, ``x2 ~ U(0, 5)``, ``mu_i ~ N(x_i h(psi), 1)``, component ``i`` chosen
  with probability ``|psi_i| / (|psi1| + |psi2|)`` (1/2 each at ``psi = 0``),
  ``y ~ N(mu_i, 1)``; ``R(y) = sigmoid(y - 10) - sigmoid(y)``, lowest (about -1) when ``y``
  falls between 0 and 10.
* :class:`Rosenbrock` (``dim`` parameters, 10 in the benchmark, start ``psi = 2``):
  ``x ~ U(-10, 10)``, ``l ~ N(x, 1)``, ``y ~ N(f(psi) + l, 0.1 + 0.5 |l|)`` with the
  Rosenbrock function *without* the usual factor 100,
  ``f(psi) = sum_i (psi_{i+1} - psi_i^2)^2 + (1 - psi_i)^2``; ``R(y) = y``, so
  ``E[R] = f(psi)`` (minimum 0 at ``psi = 1``; 45 at the start) under noise of standard
  deviation about 6.6.
* :class:`SubmanifoldRosenbrock` (100 parameters, start ``psi = 0``, where ``f = 9``): the
  same, but the output depends on ``psi`` only through ``A psi``, a 10-dimensional
  projection (``A`` has orthonormal rows, drawn once from a fixed seed): 90 directions of
  ``psi`` change nothing.
"""

from __future__ import annotations

import math

import torch

from rotalumis.core import Bernoulli, Model, Normal, Uniform, sample

__all__ = ["Rosenbrock", "SubmanifoldRosenbrock", "ThreeHump", "three_hump_objective"]


def three_hump_objective(y: torch.Tensor) -> torch.Tensor:
    """``R(y) = sigmoid(y - 10) - sigmoid(y)`` per output (shape ``(n, 1)`` -> ``(n,)``)."""
    y = y.reshape(y.shape[0])
    return torch.sigmoid(y - 10.0) - torch.sigmoid(y)


def _identity(y: torch.Tensor) -> torch.Tensor:
    return y.reshape(y.shape[0])


#: The ranges of the two uniform inputs of the three-hump problem.
X1_RANGE = (-2.0, 2.0)
X2_RANGE = (0.0, 5.0)


def _camel(p1: float, p2: float) -> float:
    return 2 * p1**2 - 1.05 * p1**4 + p1**6 / 6 + p1 * p2 + p2**2


class ThreeHump(Model):
    """The probabilistic three-hump problem (2 parameters); see the module docstring.

    Attributes:
        psi0: The benchmark's starting point.
        bounds: The benchmark's box.
    """

    psi0 = (2.0, 0.0)
    bounds = (-2.0, 2.0)
    objective = staticmethod(three_hump_objective)

    def __init__(self) -> None:
        super().__init__("three_hump")

    def forward(self, psi: torch.Tensor) -> torch.Tensor:
        p1, p2 = (float(v) for v in psi)
        h = _camel(p1, p2)
        x1, x2 = sample(Uniform(*X1_RANGE), name="x1"), sample(Uniform(*X2_RANGE), name="x2")
        mu1 = sample(Normal(float(x1) * h, 1.0), name="mu1")
        mu2 = sample(Normal(float(x2) * h, 1.0), name="mu2")
        first = sample(Bernoulli(_first_weight(p1, p2)), name="first") > 0.5
        return torch.tensor([float(sample(Normal(mu1 if first else mu2, 1.0)))])

    def expected_objective(self, psi: torch.Tensor, nodes: int = 400) -> float:
        """``E[R(y)]`` at ``psi`` by quadrature: ``y | x ~ N(x h, 2)`` averaged over the
        uniform ``x`` (midpoint rule) and the Gaussian (Gauss-Hermite, 60 nodes);
        accurate to about 1e-6."""
        p1, p2 = (float(v) for v in psi)
        h, w1 = _camel(p1, p2), _first_weight(p1, p2)
        z, wz = _hermite(60)
        total = 0.0
        for weight, (lo, hi) in ((w1, X1_RANGE), (1.0 - w1, X2_RANGE)):
            if weight == 0.0:
                continue
            x = lo + (hi - lo) * (torch.arange(nodes, dtype=torch.float64) + 0.5) / nodes
            y = x[:, None] * h + math.sqrt(2.0) * z[None, :]
            r = torch.sigmoid(y - 10.0) - torch.sigmoid(y)
            total += weight * float((r * wz).sum(1).mean())
        return total


def _first_weight(p1: float, p2: float) -> float:
    """``P(component 1) = |psi1| / (|psi1| + |psi2|)``; 1/2 at ``psi = 0``."""
    total = abs(p1) + abs(p2)
    return abs(p1) / total if total > 0 else 0.5


def _hermite(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights for E[g(Z)], Z ~ N(0, 1)."""
    import numpy as np

    x, w = np.polynomial.hermite_e.hermegauss(n)
    return torch.from_numpy(x), torch.from_numpy(w / w.sum())


def rosenbrock(u: torch.Tensor) -> torch.Tensor:
    """The Rosenbrock function along the last axis, without the usual factor 100 (as in the
    L-GSO paper's code)."""
    return ((u[..., 1:] - u[..., :-1] ** 2) ** 2 + (1.0 - u[..., :-1]) ** 2).sum(-1)


class Rosenbrock(Model):
    """The stochastic Rosenbrock problem; see the module docstring.

    Args:
        dim: Number of parameters.
    """

    bounds = (-5.0, 5.0)
    objective = staticmethod(_identity)

    def __init__(self, dim: int = 10) -> None:
        super().__init__(f"rosenbrock_{dim}d")
        self.dim = dim
        self.psi0 = tuple([2.0] * dim)

    def project(self, psi: torch.Tensor) -> torch.Tensor:
        """The coordinates the output depends on (all of them here)."""
        return psi

    def forward(self, psi: torch.Tensor) -> torch.Tensor:
        f = float(rosenbrock(self.project(psi.to(torch.float64))))
        x = sample(Uniform(-10.0, 10.0), name="x")
        latent = float(sample(Normal(x, 1.0), name="latent"))
        return torch.tensor([float(sample(Normal(f + latent, 0.1 + 0.5 * abs(latent))))])

    def expected_objective(self, psi: torch.Tensor) -> float:
        """``E[y] = f(psi)`` exactly (the noise has mean 0)."""
        return float(rosenbrock(self.project(psi.to(torch.float64))))


class SubmanifoldRosenbrock(Rosenbrock):
    """Rosenbrock on a ``sub``-dimensional projection of ``dim`` parameters.

    Args:
        dim: Number of parameters.
        sub: Dimension of the subspace the output depends on.
        seed: Seed of the projection ``A`` (orthonormal rows).
    """

    def __init__(self, dim: int = 100, sub: int = 10, seed: int = 0) -> None:
        super().__init__(dim)
        self.name = f"submanifold_rosenbrock_{dim}d"
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, sub, generator=gen, dtype=torch.float64))
        self.matrix = q.T.contiguous()  # (sub, dim), orthonormal rows
        self.psi0 = tuple([0.0] * dim)  # the paper's start: A psi = 0, f = sub - 1

    def project(self, psi: torch.Tensor) -> torch.Tensor:
        """``A psi``: the 10 coordinates the output depends on."""
        projected: torch.Tensor = self.matrix @ psi.to(torch.float64)
        return projected
