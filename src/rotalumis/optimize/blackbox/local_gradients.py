"""Two gradient baselines: central finite differences and the score-function estimator.

Both estimate ``grad_psi E[R(y)]`` from simulator calls around the current point and take
an Adam step, like L-GSO, so the three differ only in how the gradient is estimated.
"""

from __future__ import annotations

import torch

from ..errors import OptimizationError
from ._common import Bounds, PsiAdam, method_generator, too_small
from .config import FiniteDifferenceConfig, ScoreFunctionConfig
from .result import History
from .runner import SimulatorRunner

__all__ = ["finite_differences", "score_function"]


def finite_differences(
    runner: SimulatorRunner,
    psi0: torch.Tensor,
    bounds: Bounds,
    cfg: FiniteDifferenceConfig,
    history: History,
) -> torch.Tensor:
    """Adam on central finite differences: ``(R(psi + h e_i) - R(psi - h e_i)) / 2h``, each
    side the mean of ``cfg.repeats`` calls (points cut to the bounds; the difference is
    then divided by the actual distance).

    Under ``on_error="skip"``, a coordinate whose calls on one side all failed has no
    difference: its gradient component is 0 for that step (it does not move), the others
    step as usual.

    Raises:
        OptimizationError: if the budget is below one step, or if no coordinate has a
            difference in some step.
    """
    dim = psi0.numel()
    reps = cfg.repeats
    per_step = 2 * dim * reps
    if runner.remaining < per_step:
        raise too_small("fd", runner.remaining, per_step)
    adam = PsiAdam(psi0, cfg.lr, bounds, cfg.final_lr_factor, runner.budget)
    eye = torch.eye(dim, dtype=psi0.dtype) * cfg.step
    step = 0
    while runner.remaining >= per_step:
        psi = adam.psi
        plus, minus = bounds.clamp(psi + eye), bounds.clamp(psi - eye)
        points = torch.cat([plus, minus]).repeat_interleave(reps, dim=0)
        batch = runner.run(points)
        values = torch.where(batch.ok, batch.values, 0.0).reshape(2, dim, reps)
        counts = batch.ok.reshape(2, dim, reps).sum(-1)
        usable = (counts > 0).all(0)
        if not bool(usable.any()):
            raise OptimizationError(
                f"step {step}: every coordinate has a side (psi + h or psi - h) where all "
                "simulator calls failed; no finite difference exists"
            )
        means = values.sum(-1) / counts.clamp(min=1)
        distance = torch.diagonal(plus - minus)
        grad = torch.where(usable, (means[0] - means[1]) / distance, 0.0)
        history.record(psi, batch.mean_value(), runner.calls)
        adam.step(grad, step, runner.calls)
        step += 1
    return adam.psi


def score_function(
    runner: SimulatorRunner,
    psi0: torch.Tensor,
    bounds: Bounds,
    cfg: ScoreFunctionConfig,
    history: History,
    seed: int,
) -> torch.Tensor:
    """Adam on the REINFORCE gradient of ``E_{psi ~ N(mu, sigma^2)}[R]`` with respect to
    ``mu`` (draws cut to the bounds before the call), with a leave-one-out baseline.

    Raises:
        OptimizationError: if the budget is below one step, or a step has fewer than two
            (one without a baseline) successful calls.
    """
    n, sigma = cfg.samples_per_step, cfg.sigma
    if runner.remaining < n:
        raise too_small("score", runner.remaining, n)
    gen = method_generator(seed, "score")
    adam = PsiAdam(psi0, cfg.lr, bounds, cfg.final_lr_factor, runner.budget)
    need = 2 if cfg.baseline == "leave_one_out" else 1
    step = 0
    while runner.remaining >= n:
        mu = adam.psi
        noise = torch.randn((n, mu.numel()), generator=gen, dtype=mu.dtype)
        batch = runner.run(bounds.clamp(mu + sigma * noise))
        m = batch.num_ok
        if m < need:
            raise OptimizationError(
                f"step {step}: {m} of {n} simulator calls succeeded; the score-function "
                f"estimate needs at least {need}"
            )
        r = batch.values[batch.ok]
        eps = noise[batch.ok]
        baseline = (r.sum() - r) / (m - 1) if cfg.baseline == "leave_one_out" else 0.0
        # d/dmu log N(psi; mu, sigma^2) = (psi - mu) / sigma^2 = eps / sigma
        grad = ((r - baseline)[:, None] * eps).mean(0) / sigma
        history.record(mu, batch.mean_value(), runner.calls)
        adam.step(grad, step, runner.calls)
        step += 1
    return adam.psi
