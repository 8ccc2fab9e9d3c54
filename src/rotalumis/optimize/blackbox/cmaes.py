"""CMA-ES baseline through the ``cma`` package (ask/tell), on the noisy objective."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rotalumis.core.rng import derive_seed

from ..errors import OptimizationError
from ._common import Bounds, too_small
from .config import CMAESConfig
from .result import History
from .runner import SimulatorRunner

__all__ = ["cmaes"]


def cmaes(
    runner: SimulatorRunner,
    psi0: torch.Tensor,
    bounds: Bounds,
    cfg: CMAESConfig,
    history: History,
    seed: int,
) -> torch.Tensor:
    """Run CMA-ES generations until the next no longer fits in the budget.

    Each candidate's value is the mean objective of its ``repeats`` calls. A candidate
    whose calls all failed (``on_error="skip"``) is ranked last: it gets the worst value of
    the generation (CMA-ES only uses ranks). The answer is the mean of the search
    distribution. ``cma``'s own stopping rules are switched off: the budget decides.

    Raises:
        OptimizationError: if the budget is below one generation or every call of a
            generation failed.
    """
    import cma

    dim = psi0.numel()
    if dim < 2:
        raise OptimizationError("method='cmaes' needs at least 2 parameters (cma's limit)")
    normal = np.random.default_rng(derive_seed(seed, "method", "cmaes"))
    options: dict[str, Any] = {
        "randn": lambda *shape: normal.standard_normal(shape),
        "seed": math.nan,  # do not touch NumPy's global generator
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        "tolfun": 0.0,
        "tolfunhist": 0.0,
        "tolflatfitness": math.inf,
        "tolx": 0.0,
        "tolstagnation": 2**62,
        "maxiter": math.inf,
        "maxfevals": math.inf,
    }
    if cfg.popsize is not None:
        options["popsize"] = cfg.popsize
    if bool(torch.isfinite(bounds.low).any() or torch.isfinite(bounds.high).any()):
        options["bounds"] = [_side(bounds.low), _side(bounds.high)]
    es = cma.CMAEvolutionStrategy(psi0.double().numpy(), cfg.sigma0, options)
    reps = cfg.repeats
    per_step = es.popsize * reps
    if runner.remaining < per_step:
        raise too_small("cmaes", runner.remaining, per_step)
    step = 0
    while runner.remaining >= per_step:
        answer = _answer(es, bounds)
        candidates = es.ask()
        points = torch.as_tensor(np.array(candidates), dtype=psi0.dtype)
        batch = runner.run(points.repeat_interleave(reps, dim=0))
        ok = batch.ok.reshape(-1, reps)
        sums = torch.where(batch.ok, batch.values, 0.0).reshape(-1, reps).sum(1)
        counts = ok.sum(1)
        if not bool((counts > 0).any()):
            raise OptimizationError(f"step {step}: every simulator call of the generation failed")
        values = sums / counts.clamp(min=1)
        worst = values[counts > 0].max()
        values = torch.where(counts > 0, values, worst)
        history.record(answer, batch.mean_value(), runner.calls)
        es.tell(candidates, values.double().tolist())
        step += 1
    return _answer(es, bounds)


def _side(t: torch.Tensor) -> list[float] | None:
    return [float(v) if math.isfinite(v) else (math.inf if v > 0 else -math.inf) for v in t]


def _answer(es: Any, bounds: Bounds) -> torch.Tensor:
    """The mean of the search distribution, mapped through cma's bound handling."""
    mean = torch.as_tensor(np.asarray(es.result.xfavorite), dtype=torch.get_default_dtype())
    return bounds.clamp(mean)
