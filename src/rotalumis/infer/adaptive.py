"""Adaptive inference compilation: refit a network's proposal to one observation.

An amortized network proposes well for typical observations; a very informative one (an
image of thousands of pixels pins every latent to a fraction of a percent of its prior
range) needs a sharper proposal than any affordable amortized training gives, and the
importance weights of plain IC collapse onto one trace. Adaptive importance sampling fixes
that for the observation at hand: each round draws ``traces`` IC importance samples with the
current proposal, tempers their weights to ``w**beta`` with the largest ``beta <= 1`` that
keeps their effective sample size at ``target_ess`` of the traces, and trains the network
on the round's traces weighted by ``w**beta`` (:func:`rotalumis.nn.train_weighted`, the
weighted IC loss ``-sum w**beta log q(x | y) / sum w**beta`` with early stopping on held-out
traces: the traces stand for ``q^(1 - beta) p(x | y)^beta``). Tempering
moves the proposal towards the posterior at the pace the weights allow, from the broad
amortized proposal to the sharp posterior, without collapsing it onto a single trace.

The proposal is only a proposal: importance sampling with the adapted network
(``engine="ic"``) keeps the weights ``p(x, y) / q(x | y)`` and is exact whatever the rounds
did; the rounds only raise the effective sample size. They cost ``rounds * traces``
simulations and leave the amortized network untouched (a copy is adapted). Two safeguards:
categorical proposals are mixed with their prior (``defensive``, in the rounds and to be
passed to the final run), so a discrete alternative the adapted network all but rules out
keeps bounded weights; and the network of the round with the largest ESS is returned (a
round can overshoot).

Beside :func:`~.sequential.sequential_ic`: sequential rounds weight their traces back to the
prior predictive, so the network stays an amortized posterior estimator for every
observation; adaptive rounds give that up and fit the proposal to this one observation's
posterior, which is what a sharp likelihood needs. Both train with
:func:`~rotalumis.nn.train_weighted` and end in exact importance sampling.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rotalumis.core import Model
from rotalumis.core.rng import derive_seed
from rotalumis.data.empirical import kish_ess

if TYPE_CHECKING:
    from rotalumis.nn import BudgetConfig

__all__ = ["AdaptiveResult", "adaptive_ic", "tempering_exponent"]


@dataclass
class AdaptiveResult:
    """What :func:`adaptive_ic` did.

    Attributes:
        network: The adapted network of the round with the largest ESS (use it with
            ``engine="ic", defensive=result.defensive`` for this observation).
        rounds: Per round: ``ess`` (of the round's IC weights), ``beta`` (tempering
            exponent used for training), ``seconds``.
        posterior: That round's importance-sampling result (weighted, exact).
        defensive: The defensive weight of categorical proposals used.
    """

    network: Any
    rounds: list[dict[str, float]] = field(default_factory=list)
    posterior: Any = None
    defensive: float = 0.0


def _ess(log_weights: np.ndarray) -> float:
    """Kish ESS of (possibly tempered) log weights; ``-inf`` entries count as zero weights."""
    finite = log_weights[np.isfinite(log_weights)]
    return kish_ess(finite) if finite.size else 0.0


def tempering_exponent(log_weights: np.ndarray, target: float) -> float:
    """The largest ``beta`` in ``(0, 1]`` with ``ESS(w**beta) >= target * len(w)``."""
    lw = np.asarray(log_weights, dtype=float)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    if _ess(lw) >= target * len(lw):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(50):  # bisection: the ESS of w**beta falls as beta grows
        mid = 0.5 * (lo + hi)
        if _ess(mid * lw) >= target * len(lw):
            lo = mid
        else:
            hi = mid
    return max(lo, 1e-12)


def adaptive_ic(
    model: Model,
    observe: Mapping[str, Any],
    network: Any,
    *,
    rounds: int = 8,
    traces: int = 2000,
    target_ess: float = 0.3,
    config: BudgetConfig | None = None,
    defensive: float = 0.02,
    seed: int = 0,
    model_args: tuple[Any, ...] = (),
    on_round: Callable[[int, dict[str, float]], None] | None = None,
) -> AdaptiveResult:
    """Adapt a copy of ``network`` to the observation ``observe`` (see the module docstring).

    Args:
        model: The model.
        observe: The observation.
        network: A trained :class:`~rotalumis.nn.InferenceNetwork` (or its path); not
            modified.
        rounds: Adaptation rounds.
        traces: IC importance samples per round.
        target_ess: Share of ``traces`` the tempered weights keep as effective samples.
        config: Training of each round on its traces, weighted by the tempered weights
            (:func:`~rotalumis.nn.train_weighted`: epochs until the held-out weighted loss
            stops improving; the best epoch's network is kept). Default: at most 4
            epochs, patience 1, batches of 64, learning rate 3e-4.
        defensive: Weight of the prior in categorical proposals (see
            :class:`~rotalumis.nn.NetworkProposal`).
        seed: Seed of the importance sampling, resampling and initial state.
        model_args: Arguments of ``model.forward``.
        on_round: Called as ``on_round(k, info)`` after each round.

    Returns:
        An :class:`AdaptiveResult`; ``result.posterior`` is the best round's (exact,
        weighted) importance-sampling result.
    """
    from rotalumis.nn import BudgetConfig, train_weighted

    from .ic import load_network

    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    if not 0.0 < target_ess < 1.0:
        raise ValueError(f"target_ess must be in (0, 1), got {target_ess!r}")
    config = config or BudgetConfig(max_epochs=4, patience=1, batch_size=64, learning_rate=3e-4)
    net = copy.deepcopy(load_network(network))
    result = AdaptiveResult(net, defensive=defensive)
    best = -1.0
    for k in range(rounds + 1):
        start = time.perf_counter()
        post = model.posterior(
            traces, engine="ic", observe=observe, seed=derive_seed(seed, "round", k),
            network=net, keep_traces=k < rounds, progress=False, model_args=model_args,
            defensive=defensive,
        )  # fmt: skip
        lw = np.asarray(post.log_weights, dtype=float)
        info = {"round": float(k), "ess": _ess(lw), "beta": math.nan, "seconds": 0.0}
        if info["ess"] > best:
            best, result.posterior = info["ess"], post
            result.network = copy.deepcopy(net)
        if k < rounds:
            info["beta"] = beta = tempering_exponent(lw, target_ess)
            keep = np.flatnonzero(np.isfinite(lw))  # zero weights teach nothing
            if len(keep) >= 2:
                train_weighted(
                    net, [post.traces[i] for i in keep], beta * lw[keep],
                    replace(config, seed=derive_seed(seed, "adaptive", k)),
                )  # fmt: skip
        info["seconds"] = time.perf_counter() - start
        result.rounds.append(info)
        if on_round is not None:
            on_round(k, info)
    return result
