"""The optimization loop: :func:`optimize`."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from rotalumis.core.errors import DistributionError
from rotalumis.core.model import Model
from rotalumis.core.progress import ProgressBar
from rotalumis.core.rng import RNG

from .config import OptimizeConfig
from .errors import OptimizationError
from .estimator import GradientEstimate, GradientEstimator, Loss
from .result import OptimizationResult

__all__ = ["optimize"]

logger = logging.getLogger(__name__)

ParamLike = torch.Tensor | float | int


def optimize(
    model: Model,
    params: Mapping[str, ParamLike],
    loss: Loss | None = None,
    *,
    config: OptimizeConfig | None = None,
    seed: int | None = None,
    model_args: tuple[Any, ...] = (),
    pass_params: bool = True,
) -> OptimizationResult:
    """Minimize the expected loss of a stochastic simulator over its parameters ``psi``.

    Each step runs ``config.batch_size`` executions of ``model`` under a
    :class:`~rotalumis.optimize.GradientHandler` (pathwise gradients through continuous
    choices, score-function gradients with a baseline for discrete ones), estimates
    ``grad_psi E[loss]`` and takes one optimizer step.

    Args:
        model: The simulator; by default ``forward`` receives the parameters as keyword
            arguments (after ``model_args``).
        params: Initial values by name: numbers or floating tensors. A leaf tensor with
            ``requires_grad=True`` is optimized in place (the same object); anything else
            is copied into a new leaf tensor.
        loss: Maps one execution's result to a scalar loss; ``None``: the result is the loss.
        config: Budget, estimator and optimizer settings (default :class:`OptimizeConfig`).
        seed: Seed of the simulator's random choices; ``None`` picks one (recorded in the
            result).
        model_args: Positional arguments of ``forward`` for every execution.
        pass_params: ``False`` when the model holds the tensors of ``params`` itself and
            ``forward`` must not receive them.

    Returns:
        An :class:`OptimizationResult` with the final parameters and the loss history.

    Raises:
        OptimizationError: a parameter gets no gradient (named), the loss or a gradient is
            not finite (naming the step), or the model fails at some step.
        ValueError: a parameter value is not a finite number or floating tensor.

    Example:
        >>> from rotalumis.core import Normal, model, sample
        >>> @model
        ... def sim(mu):
        ...     return sample(Normal(mu, 1.0))
        >>> res = optimize(sim, {"mu": 3.0}, lambda x: (x - 1.0) ** 2,
        ...                config=OptimizeConfig(steps=100, lr=0.1, progress=False), seed=0)
        >>> abs(float(res.params["mu"]) - 1.0) < 0.2
        True
    """
    cfg = config if config is not None else OptimizeConfig()
    if not isinstance(cfg, OptimizeConfig):
        raise TypeError(f"config must be an OptimizeConfig, got {type(cfg).__name__}")
    tensors = _leaf_params(params)
    rng = RNG(seed)
    estimator = GradientEstimator(model, loss, cfg, model_args, pass_params)
    opt = cfg.make_optimizer(tensors.values())
    schedule = _schedule(opt, cfg)
    history: list[float] = []
    trajectory: dict[str, list[torch.Tensor]] = {
        n: [t.detach().clone()] for n, t in tensors.items()
    }
    with ProgressBar(cfg.steps, "optimize", cfg.progress) as bar:
        for step in range(cfg.steps):
            est = _estimate(estimator, tensors, rng, step)
            _check_finite(est, tensors, step)
            opt.zero_grad(set_to_none=True)
            for name, t in tensors.items():
                t.grad = est.gradients[name]
            opt.step()
            if schedule is not None:
                schedule.step()
            history.append(est.loss)
            for name, t in tensors.items():
                trajectory[name].append(t.detach().clone())
            bar.update(step + 1, f"loss {est.loss:.4g} {_short(tensors)}")
    logger.info("optimize: %d steps, last loss %.4g, %s", cfg.steps, history[-1], _short(tensors))
    return OptimizationResult(
        params={n: t.detach().clone() for n, t in tensors.items()},
        loss_history=tuple(history),
        param_history={n: torch.stack(h) for n, h in trajectory.items()},
        config=cfg,
        seed=rng.seed,
    )


def _leaf_params(params: Mapping[str, ParamLike]) -> dict[str, torch.Tensor]:
    if not isinstance(params, Mapping) or not params:
        raise ValueError("params must be a non-empty mapping of name to initial value")
    out: dict[str, torch.Tensor] = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter names must be identifiers, got {name!r}")
        if isinstance(value, torch.Tensor):
            if not value.is_floating_point():
                raise ValueError(f"parameter {name!r} must be a floating tensor, got {value.dtype}")
            t = value if value.is_leaf and value.requires_grad else value.detach().clone()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            t = torch.tensor(float(value), dtype=torch.get_default_dtype())
        else:
            raise ValueError(
                f"parameter {name!r} must be a number or a floating tensor, "
                f"got {type(value).__name__}"
            )
        if not bool(torch.isfinite(t.detach()).all()):
            raise ValueError(f"parameter {name!r} must be finite, got {t.detach()}")
        out[name] = t.requires_grad_(True) if not t.requires_grad else t
    return out


def _schedule(
    opt: torch.optim.Optimizer, cfg: OptimizeConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if cfg.final_lr_factor == 1.0:
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.steps, eta_min=cfg.lr * cfg.final_lr_factor
    )


def _estimate(
    estimator: GradientEstimator, tensors: dict[str, torch.Tensor], rng: RNG, step: int
) -> GradientEstimate:
    try:
        return estimator.estimate(tensors, rng)
    except DistributionError as exc:
        raise OptimizationError(
            f"step {step}: the model built an invalid distribution at {_short(tensors)}: {exc}"
        ) from exc


def _check_finite(est: GradientEstimate, tensors: dict[str, torch.Tensor], step: int) -> None:
    if not math.isfinite(est.loss):
        bad = (~torch.isfinite(est.losses)).nonzero()
        what = (
            f"the loss is {est.losses[int(bad[0, 0])].item()} (execution {int(bad[0, 0])} of "
            "the batch)"
            if len(bad)
            else f"the batch's mean loss overflows to {est.loss}"
        )
        raise OptimizationError(
            f"step {step}: {what} at {_short(tensors)}; stopping. Bound the loss or the "
            "parameters (e.g. a smaller lr, or a transform that keeps them in range)"
        )
    for name, g in est.gradients.items():
        if not bool(torch.isfinite(g).all()):
            raise OptimizationError(
                f"step {step}: the gradient of parameter {name!r} is not finite ({g}) at "
                f"{_short(tensors)}; stopping.{_SCORE_HINT if est.score_sites else ''}"
            )


_SCORE_HINT = (
    " A discrete choice whose probability reaches exactly 0 or 1 has a log-probability with "
    "an undefined gradient: keep such probabilities inside (0, 1)."
)


def _short(tensors: Mapping[str, torch.Tensor]) -> str:
    parts = []
    for name, t in tensors.items():
        v = t.detach()
        parts.append(f"{name}={v.item():.4g}" if v.numel() == 1 else f"{name}={tuple(v.shape)}")
    return " ".join(parts)
