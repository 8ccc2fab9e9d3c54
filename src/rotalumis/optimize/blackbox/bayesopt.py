"""Bayesian-optimization baseline through BoTorch.

Why BoTorch: it is maintained (Meta), built on PyTorch and GPyTorch like the rest of this
project, and has the acquisition function a noisy simulator needs, noisy expected
improvement (``qLogNoisyExpectedImprovement``), which integrates over the noise of the
observations instead of trusting the best noisy value. It installs next to the pinned
``torch==2.13.0`` without changing it (checked with ``pip install --dry-run``). It is heavy
(GPyTorch, linear_operator, scikit-learn come with it), so it lives in the optional extra
``rotalumis[optimize]`` and is imported only when ``method="bo"`` runs.

The parameters are scaled to the unit cube (bounds are required), the objective is
standardized, and a Gaussian process with a learned noise level is refitted each round.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import OptimizationError
from ._common import Bounds, seeded_torch, too_small
from .config import BayesOptConfig
from .result import History
from .runner import SimulatorRunner

__all__ = ["bayesopt"]


def bayesopt(
    runner: SimulatorRunner,
    psi0: torch.Tensor,
    bounds: Bounds,
    cfg: BayesOptConfig,
    history: History,
    seed: int,
) -> torch.Tensor:
    """Run Bayesian optimization until the budget or ``cfg.max_points`` points are used.

    Each point's observation is the mean objective of its ``repeats`` calls; a point whose
    calls all failed (``on_error="skip"``) is left out of the Gaussian process. The answer
    is the evaluated point with the lowest posterior mean.

    Raises:
        OptimizationError: without finite bounds, if the budget is below the initial
            design, or if every call of the initial design failed.
    """
    if not bounds.finite:
        raise OptimizationError(
            "method='bo' needs finite bounds on every parameter (it searches a box): "
            "pass bounds=(low, high)"
        )
    dim = psi0.numel()
    reps = cfg.repeats
    n_init = cfg.initial_points if cfg.initial_points is not None else max(4, 2 * dim)
    if runner.remaining < (n_init + 1) * reps:
        raise too_small("bo", runner.remaining, (n_init + 1) * reps)
    low, span = bounds.low.double(), (bounds.high - bounds.low).double()
    sobol = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed % (2**31))  # type: ignore[no-untyped-call]
    unit = torch.cat([((psi0.double() - low) / span)[None], sobol.draw(n_init, dtype=torch.double)])
    xs = torch.empty(0, dim, dtype=torch.double)
    ys = torch.empty(0, dtype=torch.double)
    answer = psi0.clone()
    step = 0
    while True:
        batch = runner.run((low + span * unit).to(psi0.dtype).repeat_interleave(reps, dim=0))
        sums = torch.where(batch.ok, batch.values, 0.0).reshape(-1, reps).sum(1).double()
        counts = batch.ok.reshape(-1, reps).sum(1)
        keep = counts > 0
        history.record(answer, batch.mean_value(), runner.calls)
        xs = torch.cat([xs, unit[keep]])
        ys = torch.cat([ys, sums[keep] / counts[keep]])
        if len(ys) < 2:
            raise OptimizationError(f"step {step}: fewer than 2 points have a successful call")
        with seeded_torch(seed, "bo", step), _routine_warnings_silenced():
            model = _fit(xs, ys)
            answer = (low + span * xs[_lowest_mean(model, xs)]).to(psi0.dtype)
            q = min(cfg.batch, cfg.max_points - len(xs), runner.remaining // reps)
            if q < 1:
                break
            unit = _acquire(model, xs, q, cfg)
        step += 1
    return answer


def _import_botorch() -> None:
    """Import BoTorch once. linear_operator (a GPyTorch dependency) still compiles a few
    functions with ``torch.jit.script``, which torch 2.13 deprecates with a warning at
    import time; the functions work, so that one warning is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*torch\.jit\.script.*", DeprecationWarning)
        import botorch  # noqa: F401


def _fit(xs: torch.Tensor, ys: torch.Tensor) -> object:
    _import_botorch()
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    # BoTorch maximizes: the GP models -objective
    model = SingleTaskGP(xs, -ys[:, None], outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


@contextmanager
def _routine_warnings_silenced() -> Iterator[None]:
    """Silence BoTorch's routine warnings on noisy data: L-BFGS stopping early ("ABNORMAL"
    line searches on a noisy likelihood or acquisition surface), the jitter added to a
    nearly singular covariance, the fallback from low-rank Cholesky updates to plain
    sampling. Each is BoTorch coping as designed; the result is still the best it found,
    and the benchmark judges it by its exact objective."""
    _import_botorch()
    from botorch.exceptions.warnings import BotorchWarning
    from linear_operator.utils.warnings import NumericalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BotorchWarning)
        warnings.simplefilter("ignore", NumericalWarning)
        yield


def _lowest_mean(model: object, xs: torch.Tensor) -> int:
    with torch.no_grad():
        mean = model.posterior(xs).mean.reshape(-1)  # type: ignore[attr-defined]
    return int(mean.argmax())  # the GP models -objective


def _acquire(model: object, xs: torch.Tensor, q: int, cfg: BayesOptConfig) -> torch.Tensor:
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.optim.optimize import optimize_acqf

    acq = qLogNoisyExpectedImprovement(model, X_baseline=xs, prune_baseline=True)  # type: ignore[arg-type]
    box = torch.stack([torch.zeros(xs.shape[1]), torch.ones(xs.shape[1])]).double()
    candidates, _ = optimize_acqf(
        acq,
        bounds=box,
        q=q,
        num_restarts=cfg.restarts,
        raw_samples=cfg.raw_samples,
        retry_on_optimization_warning=False,
    )
    return candidates.detach()
