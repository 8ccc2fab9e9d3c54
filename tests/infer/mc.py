"""Monte Carlo error estimates used to derive test tolerances (shared by the engine tests).

Tolerances are ``Z`` standard errors of the estimate: ``Z = 5`` gives a false-failure
probability below 1e-6 per comparison for a correct engine (normal approximation), while a
wrong engine (bias of a few standard errors at these budgets) fails.
"""

from __future__ import annotations

import numpy as np

Z = 5.0


def is_stderr(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard error of a self-normalised importance-sampling mean: sqrt(Var_w / ESS).

    Uses Kish's effective sample size, the usual approximation of the IS variance.
    """
    w = weights / weights.sum()
    mean = float(np.sum(w * values))
    var = float(np.sum(w * (values - mean) ** 2))
    ess = 1.0 / float(np.sum(w * w))
    return float(np.sqrt(max(var, 1e-12) / ess))


def mcmc_stderr(values: np.ndarray, batches: int = 25) -> float:
    """Batch-means standard error of an MCMC mean (accounts for autocorrelation)."""
    n = len(values) // batches * batches
    means = values[:n].reshape(batches, -1).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(batches))


def stderr(values: np.ndarray, weights: np.ndarray | None) -> float:
    """IS standard error with weights, batch means without."""
    values = np.asarray(values, dtype=float)
    if weights is None:
        return mcmc_stderr(values)
    return is_stderr(values, np.asarray(weights, dtype=float))


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    values = np.asarray(values, dtype=float)
    if weights is None:
        return float(values.mean())
    w = np.asarray(weights, dtype=float)
    return float(np.sum(w * values) / w.sum())


def indicator_stderr(indicator: np.ndarray, weights: np.ndarray | None, p: float) -> float:
    """Standard error of an estimated probability under the hypothesis that it is ``p``.

    The Monte Carlo variance of a frequency is proportional to ``p (1 - p)``; estimated from
    the sample itself it shrinks with the estimate, so a chain that happened to visit a
    rare state in few short excursions reports a tiny error exactly when it is far off
    (LMH on the branching model: 3 excursions, estimate 0.002 +- 0.0015 for p = 0.0145).
    The batch-means (or Kish) error is therefore rescaled from the estimate's variance to
    the variance under the hypothesis; the autocorrelation it measured is kept.
    """
    ind = np.asarray(indicator, dtype=float)
    se = stderr(ind, weights)
    est = weighted_mean(ind, weights)
    if 0.0 < est < 1.0:
        se = max(se, se * float(np.sqrt(p * (1.0 - p) / (est * (1.0 - est)))))
    return se
