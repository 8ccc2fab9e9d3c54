"""The local generative surrogate: a conditional normalizing flow of ``y | psi`` (zuko).

Why a normalizing flow from zuko rather than the GAN of the L-GSO paper: a flow is fitted
by maximum likelihood, a plain minimization with no adversarial game to balance, so it
trains reliably step after step with fixed settings; it samples by a differentiable
transform of base noise, which is exactly what the pathwise gradient of ``E[R(y)]`` needs;
and its log-likelihood on held-out calls says how good the fit is. zuko is pure PyTorch
(no extra compiled code), maintained, and provides conditional flows (neural spline and
masked autoregressive) whose context is the parameter vector; the inference-compilation
work will use it too, so the project carries one flow library.

Inputs are rescaled so the flow sees the same numbers in every trust region: the context is
``c = (psi - centre) / epsilon`` (in ``[-1, 1]`` for points of the region) and the outputs
are standardized with the mean and standard deviation of the training calls.

With ``trend="linear"`` (the default) the surrogate is ``y = a + B c + s * u``, ``u`` drawn
from the flow ``q(u | c)``: ``a + B c`` is a ridge least-squares fit of the outputs on the
context, solved exactly at each fit, and the flow models the residuals (with
``residual_context``, also how their shape changes in the region). The flow alone learns how
the *location* of ``y`` moves with ``c`` by a few warm-started likelihood steps per fit: in
a 100-dimensional test its gradient pointed about as well as least squares but was 1.5 to
5 times too large, and a residual flow that sees ``c`` adds its fitted noise to the trend's
gradient (see ``tests/optimize/test_blackbox_trend.py``). The least-squares trend uses
every call for every direction at once, which is where a local surrogate beats finite
differences (each of whose calls informs one coordinate). The surrogate stays a generative
model differentiated by its samples: the trend is its first, affine layer.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import LGSOConfig

__all__ = ["FlowSurrogate"]


class FlowSurrogate:
    """A conditional flow ``q(y | psi)`` refitted in each trust region.

    Args:
        output_dim: Size of a flattened simulator output.
        dim: Number of parameters.
        cfg: The L-GSO settings (flow kind, size, training).
    """

    def __init__(self, output_dim: int, dim: int, cfg: LGSOConfig) -> None:
        import zuko

        kind: Any = zuko.flows.NSF if cfg.flow == "nsf" else zuko.flows.MAF
        self.flow: torch.nn.Module = kind(
            features=output_dim,
            context=dim,
            transforms=cfg.transforms,
            hidden_features=cfg.hidden_features,
        )
        self.cfg = cfg
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=cfg.surrogate_lr)
        self.y_mean = torch.zeros(output_dim)
        self.y_std = torch.ones(output_dim)
        self.slope = torch.zeros(dim, output_dim)  # B^T, in standardized output units
        self.fits = 0

    def fit(self, context: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        """Fit to calls: ``context`` ``(n, dim)`` already rescaled, ``y`` ``(n, output_dim)``.

        The first fit takes ``cfg.train_steps`` Adam steps, later ones (warm-started)
        ``cfg.refit_steps``.

        Returns:
            The mean negative log-likelihood (standardized units) of the last minibatch.
        """
        self.y_mean = y.mean(0)
        std = y.std(0) if y.shape[0] > 1 else torch.ones_like(self.y_mean)
        self.y_std = torch.where(std > 1e-8 * (1 + self.y_mean.abs()), std, torch.ones_like(std))
        z = (y - self.y_mean) / self.y_std
        if self.cfg.trend == "linear":
            self.slope = ridge_slope(context, z, self.cfg.ridge)
            z = z - context @ self.slope
        n = y.shape[0]
        steps = self.cfg.train_steps if self.fits == 0 else self.cfg.refit_steps
        size = min(n, self.cfg.batch_size)
        loss = torch.tensor(float("nan"))
        self.flow.train()
        for _ in range(steps):
            idx = torch.randint(n, (size,), generator=generator)
            loss = -self.flow(self._flow_context(context[idx])).log_prob(z[idx]).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.fits += 1
        return float(loss.detach())

    def _flow_context(self, context: torch.Tensor) -> torch.Tensor:
        """What the flow is conditioned on: the context, or zeros (the same shape) when
        ``cfg.residual_context`` is off, so that the residuals' law is the same across the
        region and only the trend depends on ``psi``."""
        if self.cfg.trend == "linear" and not self.cfg.residual_context:
            return torch.zeros_like(context)
        return context

    def sample(self, context: torch.Tensor, num: int) -> torch.Tensor:
        """``num`` draws of ``y`` at one rescaled ``context`` ``(dim,)``, differentiable with
        respect to ``context``; shape ``(num, output_dim)``."""
        self.flow.eval()
        z: torch.Tensor = self.flow(self._flow_context(context)).rsample((num,))
        if self.cfg.trend == "linear":
            z = z + context @ self.slope
        return z * self.y_std + self.y_mean


def ridge_slope(context: torch.Tensor, z: torch.Tensor, ridge: float) -> torch.Tensor:
    """The slope ``B^T`` (shape ``(dim, output_dim)``) of the ridge least-squares fit
    ``z ~ a + B c`` (intercept not penalized): ``(C'^T C' + ridge I)^{-1} C'^T z'`` with
    ``C'``, ``z'`` centred on their means. Solved in float64."""
    c = context.to(torch.float64)
    t = z.to(torch.float64)
    c = c - c.mean(0)
    t = t - t.mean(0)
    gram = c.T @ c + ridge * torch.eye(c.shape[1], dtype=torch.float64)
    slope: torch.Tensor = torch.linalg.solve(gram, c.T @ t)
    return slope.to(z.dtype)
