"""L-GSO: black-box optimization with local generative surrogates (Shirobokov et al. 2020).

One step at the current point ``psi``:

1. draw ``samples_per_step`` points uniformly in the trust region
   ``[psi - epsilon, psi + epsilon]`` (cut to the bounds) and call the simulator once at each;
2. take every successful call whose point lies in the region: this step's and, with
   ``replay``, earlier steps' (the most recent ``max_replay``);
3. fit the surrogate ``q(y | psi)`` to them (:class:`~.surrogate.FlowSurrogate`: a
   least-squares linear trend in ``psi`` plus a conditional flow of the residuals,
   warm-started from the previous step's flow);
4. estimate ``grad_psi E_q[R(y)]`` by the pathwise gradient through ``objective_samples``
   draws of the flow at ``psi``, and take one Adam step (projected onto the bounds).

The simulator is never differentiated: only the surrogate and the objective are. Replay is
what makes the method economical: steps are shorter than the region, so most earlier calls
keep informing the fit (in low dimensions: in many, a step moves every coordinate and
leaves most earlier points outside the new region, see ``replay_factor``), and a
least-squares slope uses every call for every direction, where finite differences spend
``2 dim`` calls per gradient, each informing one coordinate.
"""

from __future__ import annotations

import torch

from ..errors import OptimizationError
from ._common import Bounds, PsiAdam, method_generator, seeded_torch, too_small
from .config import LGSOConfig
from .result import History
from .runner import SimulatorRunner
from .surrogate import FlowSurrogate

__all__ = ["lgso"]


def lgso(
    runner: SimulatorRunner,
    psi0: torch.Tensor,
    bounds: Bounds,
    cfg: LGSOConfig,
    history: History,
    seed: int,
) -> torch.Tensor:
    """Run L-GSO until the next step no longer fits in the budget; returns the final ``psi``.

    Raises:
        OptimizationError: if the budget is below one step, if a step has fewer than two
            successful calls in its region to fit the flow, or if the objective does not
            depend differentiably on the flow's draws.
    """
    dim = psi0.numel()
    n = cfg.samples_per_step or max(8, dim)
    if runner.remaining < n:
        raise too_small("lgso", runner.remaining, n)
    gen = method_generator(seed, "lgso")
    adam = PsiAdam(psi0, cfg.lr, bounds, cfg.final_lr_factor, runner.budget)
    eps = cfg.epsilon
    seen_psi: list[torch.Tensor] = []
    seen_y: list[torch.Tensor] = []
    surrogate: FlowSurrogate | None = None
    step = 0
    while runner.remaining >= n:
        centre = adam.psi
        low = bounds.clamp(centre - eps)
        high = bounds.clamp(centre + eps)
        points = low + (high - low) * torch.rand((n, dim), generator=gen, dtype=centre.dtype)
        batch = runner.run(points)
        if batch.num_ok:
            seen_psi.append(batch.psi[batch.ok])
            seen_y.append(batch.outputs[batch.ok].reshape(batch.num_ok, -1))
        psi_all = torch.cat(seen_psi) if seen_psi else torch.empty(0, dim)
        y_all = torch.cat(seen_y) if seen_y else torch.empty(0, 1)
        if cfg.replay:
            reach = eps * cfg.replay_factor * (1 + 1e-6)
            inside = ((psi_all - centre).abs() <= reach).all(dim=1)
            psi_fit, y_fit = psi_all[inside][-cfg.max_replay :], y_all[inside][-cfg.max_replay :]
        else:
            psi_fit = batch.psi[batch.ok]
            y_fit = batch.outputs[batch.ok].reshape(batch.num_ok, -1)
        if psi_fit.shape[0] < 2:
            raise OptimizationError(
                f"step {step}: {psi_fit.shape[0]} successful simulator call(s) in the trust "
                f"region around psi; the surrogate needs at least 2 ({batch.num_ok} of "
                f"{n} calls of this step succeeded)"
            )
        with seeded_torch(seed, "lgso", step):
            if surrogate is None:
                surrogate = FlowSurrogate(y_fit.shape[1], dim, cfg)
            surrogate.fit((psi_fit - centre) / eps, y_fit, gen)
            grad = _surrogate_gradient(runner, surrogate, centre, eps, cfg, step)
        history.record(centre, batch.mean_value(), runner.calls)
        adam.step(grad, step, runner.calls)
        step += 1
    return adam.psi


def _surrogate_gradient(
    runner: SimulatorRunner,
    surrogate: FlowSurrogate,
    centre: torch.Tensor,
    eps: float,
    cfg: LGSOConfig,
    step: int,
) -> torch.Tensor:
    """``grad_psi E_q[R(y)]`` at ``centre`` through ``cfg.objective_samples`` flow draws."""
    psi = centre.clone().requires_grad_(True)
    draws = surrogate.sample((psi - centre) / eps, cfg.objective_samples)
    shape = runner.output_shape if runner.output_shape is not None else (draws.shape[1],)
    try:
        values = runner.evaluate(draws.reshape(draws.shape[0], *shape))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise OptimizationError(
            f"step {step}: the objective failed on the surrogate's draws, which carry "
            f"gradients ({type(exc).__name__}: {exc}); L-GSO differentiates the objective: "
            "write it with torch operations (no .numpy(), .item() or float())"
        ) from exc
    if not values.requires_grad:
        raise OptimizationError(
            "L-GSO differentiates the objective through the surrogate's draws, but the "
            "objective's values carry no gradient: write it with torch operations on the "
            "output tensor (no .item(), float() or NumPy)"
        )
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        raise OptimizationError(
            f"step {step}: the objective is not finite on {int((~finite).sum())} of "
            f"{values.numel()} draws of the surrogate; bound the objective"
        )
    (grad,) = torch.autograd.grad(values.mean(), psi)
    return grad
