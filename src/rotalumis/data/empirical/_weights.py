"""Numerics on log weights: normalisation, ESS, evidence, weighted quantiles, resampling.

Everything here works on plain NumPy arrays (``float64`` log weights of shape ``(N,)``) and
knows nothing about columns or :class:`~rotalumis.data.Empirical`.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

from ...core.errors import InferenceError
from ...core.rng import RNG
from ._columns import freeze

__all__ = [
    "ALL_ZERO_MESSAGE",
    "as_generator",
    "as_log_weights",
    "ess",
    "log_evidence",
    "normalized_weights",
    "resample_indices",
    "weighted_quantiles",
]

ALL_ZERO_MESSAGE = (
    "all importance weights are zero (log weight -inf): the observations are impossible "
    "under every sampled trace"
)

SeedLike = int | RNG | random.Random | np.random.Generator | None


def _check_finite_above(logw: np.ndarray, what: str = "log weights") -> float:
    """Return ``max(logw)``; raise :class:`InferenceError` on empty input, NaN or ``+inf``."""
    n = logw.shape[0]
    if n == 0:
        raise InferenceError("the Empirical is empty: there are no entries to compute statistics")
    top = float(logw.max())
    if math.isnan(top):
        bad = np.isnan(logw)
        first = int(np.argmax(bad))
        raise InferenceError(
            f"{int(bad.sum())} of {n} {what} are NaN (first at index {first}): the model or "
            "proposal produced an undefined log-probability"
        )
    if top == math.inf:
        bad = np.isposinf(logw)
        first = int(np.argmax(bad))
        raise InferenceError(
            f"{int(bad.sum())} of {n} {what} are +inf (first at index {first}): a log-density "
            "diverged"
        )
    return top


def normalized_weights(logw: np.ndarray) -> np.ndarray:
    """Normalised weights ``exp(logw) / sum(exp(logw))`` as ``float64``, computed stably.

    Raises:
        InferenceError: if ``logw`` is empty, contains NaN or ``+inf``, or is all ``-inf``.
    """
    top = _check_finite_above(logw)
    if top == -math.inf:
        raise InferenceError(ALL_ZERO_MESSAGE)
    w = np.exp(logw - top)
    w /= w.sum()
    return w


def ess(logw: np.ndarray) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2``, evaluated from log weights.

    Shifting by the largest log weight keeps every term in ``(0, 1]``, which is the same as
    computing ``exp(2 * logsumexp(logw) - logsumexp(2 * logw))`` without overflow.
    """
    top = _check_finite_above(logw)
    if top == -math.inf:
        raise InferenceError(ALL_ZERO_MESSAGE)
    w = np.exp(logw - top)
    s = float(w.sum())
    return s * s / float(np.dot(w, w))


def log_evidence(logw: np.ndarray) -> float:
    """``log(mean(exp(logw)))``: the importance-sampling marginal-likelihood estimate.

    Returns ``-inf`` when every log weight is ``-inf`` (an estimate of zero evidence).
    """
    top = _check_finite_above(logw)
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(logw - top).sum())) - math.log(logw.shape[0])


def weighted_quantiles(x: np.ndarray, w: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles of the weighted empirical distribution (the inverse of its CDF).

    The ``q``-quantile is the smallest value ``x_i`` (in sorted order) whose cumulative
    normalised weight reaches ``q``; entries of zero weight are ignored. This equals
    ``numpy.quantile(x, q, weights=w, method="inverted_cdf")``.

    Args:
        x: Values, shape ``(N, *shape)``; quantiles are taken elementwise along axis 0.
        w: Non-negative weights, shape ``(N,)``, not all zero.
        qs: Probabilities in ``[0, 1]``, shape ``(Q,)``.

    Returns:
        An array of shape ``(Q, *shape)`` with the dtype of ``x``.
    """
    keep = w > 0
    if not keep.all():
        x, w = x[keep], w[keep]
    n = x.shape[0]
    flat = x.reshape(n, -1)
    out = np.empty((qs.shape[0], flat.shape[1]), dtype=x.dtype)
    for j in range(flat.shape[1]):
        col = flat[:, j]
        order = np.argsort(col, kind="stable")
        cdf = np.cumsum(w[order], dtype=np.float64)
        cdf /= cdf[-1]
        idx = np.minimum(np.searchsorted(cdf, qs, side="left"), n - 1)
        out[:, j] = col[order[idx]]
    return out.reshape((qs.shape[0], *x.shape[1:]))


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A NumPy generator from an int seed, a :class:`~rotalumis.core.rng.RNG` (advancing its
    stream), a :class:`random.Random`, an existing generator, or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, RNG):
        return np.random.default_rng(seed.py.getrandbits(63))
    if isinstance(seed, random.Random):
        return np.random.default_rng(seed.getrandbits(63))
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(
        "seed must be an int, RNG, random.Random, numpy Generator or None, "
        f"not {type(seed).__name__}"
    )


def resample_indices(w: np.ndarray, n: int, method: str, gen: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` draws from the categorical distribution with normalised weights ``w``.

    ``"multinomial"`` draws ``n`` independent uniforms; ``"systematic"`` uses one uniform
    offset and the ``n`` evenly spaced points ``(u + i) / n``, which is unbiased too and has
    lower variance (each entry is copied ``floor(n w_i)`` or ``ceil(n w_i)`` times).
    Entries of zero weight are never selected.
    """
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    if method == "multinomial":
        u = gen.random(n)
    elif method == "systematic":
        u = (gen.random() + np.arange(n, dtype=np.float64)) / n
    else:
        raise ValueError(f"unknown resampling method {method!r}; use 'multinomial' or 'systematic'")
    idx: np.ndarray = np.searchsorted(cdf, u, side="right")
    out: np.ndarray = np.minimum(idx, w.shape[0] - 1).astype(np.int64)
    return out


def as_log_weights(log_weights: Any, n: int) -> np.ndarray:
    """Log weights as a read-only ``float64`` array of shape ``(n,)`` (``None``: zeros)."""
    if log_weights is None:
        return freeze(np.zeros(n))
    if isinstance(log_weights, torch.Tensor):
        log_weights = log_weights.detach().cpu().double().numpy()
    lw = np.array(log_weights, dtype=np.float64)
    if lw.shape != (n,):
        raise ValueError(f"log_weights must have shape ({n},) like the values, got {lw.shape}")
    return freeze(lw)
