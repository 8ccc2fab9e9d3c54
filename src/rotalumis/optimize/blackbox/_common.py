"""Pieces shared by the black-box methods: bounds, Adam on psi, seeded randomness."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from rotalumis.core.rng import derive_seed

from ..errors import OptimizationError

__all__ = ["Bounds", "PsiAdam", "make_bounds", "method_generator", "seeded_torch", "too_small"]


@dataclass(frozen=True)
class Bounds:
    """Box bounds ``low <= psi <= high`` (infinite where a coordinate is unbounded)."""

    low: torch.Tensor
    high: torch.Tensor

    @property
    def finite(self) -> bool:
        """Whether every coordinate has finite bounds on both sides."""
        return bool(torch.isfinite(self.low).all() and torch.isfinite(self.high).all())

    def clamp(self, psi: torch.Tensor) -> torch.Tensor:
        """``psi`` moved onto the box (elementwise, any leading batch shape)."""
        return torch.maximum(torch.minimum(psi, self.high), self.low)


def make_bounds(
    bounds: tuple[float | Sequence[float], float | Sequence[float]] | None, dim: int
) -> Bounds:
    """Validate user bounds ``(low, high)`` (scalars or one value per parameter).

    Raises:
        ValueError: naming the coordinate whose bounds are wrong.
    """
    if bounds is None:
        inf = torch.full((dim,), math.inf)
        return Bounds(-inf, inf)
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}")
    sides = []
    for side, value in zip(("low", "high"), bounds, strict=True):
        t = torch.as_tensor(value, dtype=torch.get_default_dtype()).reshape(-1)
        if t.numel() == 1:
            t = t.expand(dim).clone()
        if t.numel() != dim:
            raise ValueError(f"bounds: {side} has {t.numel()} values for {dim} parameters")
        if bool(torch.isnan(t).any()):
            raise ValueError(f"bounds: {side} has a NaN")
        sides.append(t)
    low, high = sides
    bad = (low >= high).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"bounds: parameter {i} has low={low[i].item()} >= high={high[i].item()}")
    return Bounds(low, high)


class PsiAdam:
    """Adam on ``psi`` with a given gradient, projected back onto the bounds after each step.

    The learning rate follows a cosine schedule over the budget, from ``lr`` when no call
    was made down to ``lr * final_lr_factor`` when the budget is spent.

    Args:
        psi0: Starting point.
        lr: Learning rate.
        bounds: The box.
        final_lr_factor: Where the schedule ends, as a fraction of ``lr``.
        budget: The run's budget of calls (the schedule's length).
    """

    def __init__(
        self,
        psi0: torch.Tensor,
        lr: float,
        bounds: Bounds,
        final_lr_factor: float = 1.0,
        budget: int = 1,
    ) -> None:
        self.param = psi0.detach().clone()
        self.bounds = bounds
        self.lr = lr
        self.final_lr_factor = final_lr_factor
        self.budget = budget
        self.optimizer = torch.optim.Adam([self.param], lr=lr)

    @property
    def psi(self) -> torch.Tensor:
        """The current point (a copy)."""
        return self.param.detach().clone()

    def step(self, grad: torch.Tensor, step: int, calls: int = 0) -> None:
        """One Adam step along ``-grad``, ``calls`` calls into the budget.

        Raises:
            OptimizationError: if the gradient is not finite (naming the step and psi).
        """
        if not bool(torch.isfinite(grad).all()):
            raise OptimizationError(
                f"step {step}: the gradient estimate is not finite ({short(grad)}) at "
                f"psi={short(self.param)}; stopping"
            )
        self.param.grad = grad.detach().to(self.param.dtype).reshape(self.param.shape)
        done = min(1.0, calls / self.budget)
        f = self.final_lr_factor
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * (f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * done)))
        self.optimizer.step()
        with torch.no_grad():
            self.param.copy_(self.bounds.clamp(self.param))


def method_generator(seed: int, label: str) -> torch.Generator:
    """A torch generator for a method's own draws (not the simulator's)."""
    gen = torch.Generator()
    gen.manual_seed(derive_seed(seed, "method", label))
    return gen


@contextmanager
def seeded_torch(seed: int, *path: int | str) -> Iterator[None]:
    """Seed torch's global generator inside the block and restore it after (for libraries
    that draw from it: network initialisation, flow sampling, BoTorch)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, *path))
        yield


def too_small(method: str, budget: int, needed: int) -> OptimizationError:
    """The error for a budget below one step of a method."""
    return OptimizationError(
        f"method={method!r}: a budget of {budget} calls is less than one step needs "
        f"({needed} calls); raise the budget or lower the calls per step"
    )


def short(t: torch.Tensor) -> str:
    """The first six elements of ``t``, for error messages."""
    v = t.detach().reshape(-1)
    shown = ", ".join(f"{float(x):.4g}" for x in v[:6])
    return f"[{shown}{', ...' if v.numel() > 6 else ''}]"
