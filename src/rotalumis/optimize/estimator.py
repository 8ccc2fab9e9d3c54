"""The gradient estimator: pathwise and score-function gradients combined in one surrogate.

For design parameters ``psi`` and a loss ``L`` of one simulator execution, the gradient of the
expected loss is (continuous choices reparameterized, discrete choices ``d`` scored)

    grad E[L] = E[ grad L  +  (L - b) * grad sum_d log p(d) ]

for any baseline ``b`` that does not depend on the execution's own random choices. Each
execution contributes the surrogate ``L + stop_grad(L - b) * sum_d log p(d)``, whose plain
gradient is one unbiased sample of the above; the estimate averages a batch of them.
Baselines: the mean loss of the *other* executions of the batch (leave-one-out), or a
moving average of earlier batches; both are independent of the execution they serve, so
the estimate stays unbiased while its variance drops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rotalumis.core.model import Model
from rotalumis.core.rng import RNG

from .config import OptimizeConfig
from .errors import OptimizationError
from .handler import GradientHandler

__all__ = ["GradientEstimate", "GradientEstimator", "Loss"]

Loss = Callable[[Any], "torch.Tensor | float"]
"""Maps the result of one execution to its scalar loss (a 0-d tensor)."""


@dataclass(frozen=True)
class GradientEstimate:
    """One batch's gradient estimate.

    Attributes:
        loss: Mean loss over the batch (a float; the quantity being minimized).
        losses: The batch's per-execution losses (detached, shape ``(batch_size,)``).
        gradients: Estimated gradient of the expected loss, by parameter name.
        surrogate: The surrogate whose gradient this is (detached value).
        pathwise_sites: Number of pathwise (reparameterized) choices in the batch.
        score_sites: Number of score-function choices in the batch.
    """

    loss: float
    losses: torch.Tensor
    gradients: dict[str, torch.Tensor]
    surrogate: float
    pathwise_sites: int
    score_sites: int


class GradientEstimator:
    """Estimates ``grad_psi E[loss(model(psi))]`` from a batch of executions.

    Args:
        model: The simulator.
        loss: Maps an execution's result to its loss; ``None`` takes the result itself.
        config: Batch size, baseline and gradient mode (other fields are ignored here).
        model_args: Positional arguments for every execution.
        pass_params: Give the parameters to ``forward`` as keyword arguments (``True``), or
            not, when the model holds the very tensors being optimized (``False``).

    Example:
        >>> import torch
        >>> from rotalumis.core import RNG, Normal, model, sample
        >>> @model
        ... def sim(mu):
        ...     return sample(Normal(mu, 1.0))
        >>> est = GradientEstimator(sim, lambda x: x**2, OptimizeConfig(batch_size=64))
        >>> g = est.estimate({"mu": torch.tensor(1.0, requires_grad=True)}, RNG(0))
        >>> abs(float(g.gradients["mu"]) - 2.0) < 0.6  # d/dmu (mu^2 + 1) = 2 mu
        True
    """

    def __init__(
        self,
        model: Model,
        loss: Loss | None = None,
        config: OptimizeConfig | None = None,
        model_args: tuple[Any, ...] = (),
        pass_params: bool = True,
    ) -> None:
        if not isinstance(model, Model):
            raise TypeError(
                f"GradientEstimator needs a rotalumis Model, got {type(model).__name__}; "
                "wrap a function with rotalumis.model"
            )
        if loss is not None and not callable(loss):
            raise TypeError(f"loss must be callable or None, got {type(loss).__name__}")
        self.model = model
        self.loss = loss
        self.config = config if config is not None else OptimizeConfig()
        self.model_args = tuple(model_args)
        self.pass_params = pass_params
        self.moving_average: float | None = None

    def surrogate(
        self, params: Mapping[str, torch.Tensor], rng: RNG
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Run one batch and build its surrogate.

        Returns:
            ``(surrogate, losses, (pathwise_sites, score_sites))``: the scalar surrogate
            whose gradient is the estimate, and the per-execution losses (with gradient).
        """
        cfg = self.config
        handler = GradientHandler(cfg.gradient)
        kwargs = dict(params) if self.pass_params else {}
        losses: list[torch.Tensor] = []
        scores: list[torch.Tensor | float] = []
        n_path = n_score = 0
        with handler, self.model.executions(rng) as run:
            for i in range(cfg.batch_size):
                handler.reset()
                result = run(*self.model_args, **kwargs)
                losses.append(self._loss_of(result, i))
                scores.append(handler.score_log_prob)
                n_path += len(handler.pathwise_sites)
                n_score += len(handler.score_sites)
        loss_t = torch.stack(losses)
        if n_score == 0:
            return loss_t.mean(), loss_t, (n_path, n_score)
        score_t = torch.stack([torch.as_tensor(s, dtype=loss_t.dtype) for s in scores])
        centred = loss_t.detach() - self._baseline(loss_t.detach())
        return (loss_t + centred * score_t).mean(), loss_t, (n_path, n_score)

    def estimate(self, params: Mapping[str, torch.Tensor], rng: RNG) -> GradientEstimate:
        """One gradient estimate of the expected loss with respect to ``params``.

        Raises:
            OptimizationError: if a parameter receives no gradient (naming it) or the
                loss is not a scalar.
        """
        names = list(params)
        surrogate, losses, (n_path, n_score) = self.surrogate(params, rng)
        if not surrogate.requires_grad:
            raise OptimizationError(_no_gradient_message(names))
        grads = torch.autograd.grad(surrogate, [params[n] for n in names], allow_unused=True)
        missing = [n for n, g in zip(names, grads, strict=True) if g is None]
        if missing:
            raise OptimizationError(_no_gradient_message(missing))
        detached = losses.detach()
        self._update_average(detached)
        return GradientEstimate(
            loss=float(detached.mean()),
            losses=detached,
            gradients={n: g for n, g in zip(names, grads, strict=True) if g is not None},
            surrogate=float(surrogate.detach()),
            pathwise_sites=n_path,
            score_sites=n_score,
        )

    def _loss_of(self, result: Any, index: int) -> torch.Tensor:
        value = result if self.loss is None else self.loss(result)
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise OptimizationError(
                    f"the loss of execution {index} must be a scalar, got a tensor of shape "
                    f"{tuple(value.shape)}; reduce it (e.g. .sum() or .mean())"
                )
            return value.reshape(()) if value.is_floating_point() else value.double().reshape(())
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return torch.tensor(float(value), dtype=torch.get_default_dtype())
        what = "the model's result" if self.loss is None else "the loss function"
        raise OptimizationError(
            f"{what} must give a scalar tensor per execution, got {type(value).__name__}"
        )

    def _baseline(self, losses: torch.Tensor) -> torch.Tensor | float:
        kind = self.config.baseline
        if kind == "leave_one_out":
            n = losses.shape[0]
            return (losses.sum() - losses) / (n - 1)
        if kind == "moving_average" and self.moving_average is not None:
            return self.moving_average
        return 0.0

    def _update_average(self, losses: torch.Tensor) -> None:
        mean = float(losses.mean())
        if not math.isfinite(mean):
            return
        avg, decay = self.moving_average, self.config.baseline_decay
        self.moving_average = mean if avg is None else decay * avg + (1.0 - decay) * mean


def _no_gradient_message(names: list[str]) -> str:
    which = ", ".join(repr(n) for n in names)
    return (
        f"parameter {which} gets no gradient: the loss does not depend on it through "
        "differentiable operations. Check that the model uses the tensor itself (not "
        "float(x), x.item() or a Python number derived from it) in its distributions or "
        "its result, and that it takes the parameter as a keyword argument of forward "
        "(or pass pass_params=False when the model holds the tensor)"
    )
