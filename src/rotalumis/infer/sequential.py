"""Sequential inference compilation: rounds of simulations focused on one observation.

Round 0 simulates from the prior and trains a network. Each later round ``k`` simulates
``N_k`` traces from the current network's proposal for the observation of interest
``y_o`` (``x ~ q_{k-1}(x | y_o)``, data ``y ~ p(y | x)``), and trains the same network further
on all traces so far. Traces from proposals are over-represented near ``y_o``; weighting every
trace by ``p(x) / M(x)``, with ``M = sum_k (N_k / N) r_k`` the mixture of all rounds'
proposals (``r_0 = p``: multiple importance sampling with the balance heuristic), makes the
training objective again ``E_p(x, y)[-log q(x | y)]``. So the network stays an estimator
of the posterior (for every observation), the weights are bounded by ``N / N_0``, and
importance sampling with the exact likelihood at the end (``engine="ic"``) is exact
whatever the network learnt; the rounds only put more of the simulation budget where it
helps ``y_o``.

Example:
    >>> result = sequential_ic(model, {"x": x_o}, simulations=(5000, 5000))  # doctest: +SKIP
    >>> posterior = model.posterior(10_000, engine="ic", observe={"x": x_o},
    ...                             network=result.network)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from rotalumis.core import Model, Trace
from rotalumis.core.handlers import normalize_observation
from rotalumis.core.rng import derive_seed
from rotalumis.data import TraceBatch, flat_value
from rotalumis.nn import BudgetConfig, InferenceNetwork, NetworkProposal
from rotalumis.nn.weighted_training import train_weighted

from .importance import sample_traces

__all__ = ["SequentialResult", "proposal_log_ratios", "sequential_ic"]


@dataclass
class SequentialResult:
    """What :func:`sequential_ic` did (pass it as ``resume=`` to run more rounds).

    Attributes:
        network: The network after the last round (use it with ``engine="ic"``).
        traces: Every simulated trace, round after round.
        log_weights: Their final training log weights ``log p(x) - log M(x)``.
        rounds: Per round: simulations, epochs, seconds, best validation loss, and the Kish
            effective sample size of the training weights.
        sizes: Simulations of each round so far (round 0: from the prior).
        proposals: The network of each proposal round as it proposed, with its observation.
        log_ratios: ``log r_k(x) - log p(x)`` on every trace, one array per proposal round.
    """

    network: InferenceNetwork
    traces: list[Trace]
    log_weights: np.ndarray
    rounds: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    proposals: list[tuple[InferenceNetwork, Mapping[str, Any]]] = field(default_factory=list)
    log_ratios: list[np.ndarray] = field(default_factory=list)


def proposal_log_ratios(
    network: InferenceNetwork, traces: Sequence[Trace], observe: Mapping[str, Any]
) -> np.ndarray:
    """``log q(x | y_o) - log p(x)`` of each trace under ``network``'s proposal for ``observe``.

    This is the log density ratio of the proposal :class:`~rotalumis.nn.NetworkProposal`
    draws from at ``y_o`` to the prior, for traces simulated with any observations.
    """
    out = []
    names = [spec.name for spec in network.config.observations]
    fixed = {
        n: np.asarray(flat_value(normalize_observation(n, observe[n]))[0], dtype=np.float64)
        for n in names
    }
    with torch.no_grad():
        for k in range(0, len(traces), 1024):
            batch = TraceBatch.from_traces(traces[k : k + 1024])
            batch.observations = {n: np.tile(v, (batch.size, 1)) for n, v in fixed.items()}
            log_q, log_p = network.trace_log_probs(batch)
            out.append((log_q.double() - log_p.double()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _simulate(
    model: Model,
    num: int,
    seed: int,
    proposal: NetworkProposal | None,
    model_args: tuple[Any, ...],
) -> list[Trace]:
    emp = sample_traces(
        model, num, seed=seed, proposal=proposal, weighted=False, keep_traces=True,
        progress=False, model_args=model_args, description="sequential round",
    )  # fmt: skip
    return list(emp.traces or ())


def sequential_ic(
    model: Model,
    observe: Mapping[str, Any],
    *,
    simulations: Sequence[int],
    network: InferenceNetwork | None = None,
    resume: SequentialResult | None = None,
    config: BudgetConfig | None = None,
    seed: int = 0,
    embeddings: Mapping[str, Any] | None = None,
    network_sizes: Mapping[str, Any] | None = None,
    model_args: tuple[Any, ...] = (),
) -> SequentialResult:
    """Train an inference network in rounds focused on the observation ``observe``.

    Args:
        model: The simulator.
        observe: The observation of interest (every observation the network embeds).
        simulations: Simulations per round; round 0 draws from the prior, each later round
            from the network's proposal for ``observe``. With ``resume``, every round is a
            proposal round.
        network: A network to start from (default: a new one from round 0's traces).
        resume: An earlier result to continue from (a copy: it is not modified), e.g. one
            prior round shared by several observations of interest.
        config: Training of each round (epochs until the held-out weighted loss stops
            improving, batch size, learning rate, seed).
        seed: Seed of the simulations (round ``k`` uses ``derive_seed(seed, "round", k)``).
        embeddings: Observation embeddings of a new network.
        network_sizes: Other :class:`~rotalumis.nn.NetworkConfig` fields of a new network.
        model_args: Arguments of ``model.forward``.

    Returns:
        A :class:`SequentialResult`.

    Raises:
        ValueError: for an empty or non-positive ``simulations``.
    """
    sizes = [int(n) for n in simulations]
    if not sizes or min(sizes) < 2:
        raise ValueError(f"simulations must be one or more round sizes >= 2, got {simulations!r}")
    config = config or BudgetConfig()
    if resume is not None:
        result = copy.copy(resume)
        result.network = copy.deepcopy(resume.network)
        result.rounds, result.sizes = list(resume.rounds), list(resume.sizes)
        result.proposals, result.log_ratios = list(resume.proposals), list(resume.log_ratios)
    else:
        traces = _simulate(model, sizes[0], derive_seed(seed, "round", 0), None, model_args)
        if network is None:
            torch.manual_seed(derive_seed(config.seed, "init"))  # as train_network does
            first = TraceBatch.from_traces(traces[: config.batch_size])
            network = InferenceNetwork.for_batch(first, embeddings, **dict(network_sizes or {}))
            network.model_name = model.name
        result = SequentialResult(network, traces, np.zeros(len(traces)), sizes=[sizes[0]])
        _train_round(result, config)
        sizes = sizes[1:]
    for size in sizes:
        k = len(result.sizes)
        snapshot = copy.deepcopy(result.network).eval()
        new = _simulate(
            model, size, derive_seed(seed, "round", k), NetworkProposal(snapshot, observe),
            model_args,
        )  # fmt: skip
        result.log_ratios = [
            np.concatenate([r, proposal_log_ratios(net, new, obs)])
            for r, (net, obs) in zip(result.log_ratios, result.proposals, strict=True)
        ]
        result.traces = result.traces + new
        result.proposals.append((snapshot, dict(observe)))
        result.log_ratios.append(proposal_log_ratios(snapshot, result.traces, observe))
        result.sizes.append(size)
        counts = np.asarray(result.sizes, dtype=np.float64)
        log_mix = np.log(counts / counts.sum())
        terms = np.stack(
            [np.full(len(result.traces), log_mix[0])]
            + [log_mix[j + 1] + r for j, r in enumerate(result.log_ratios)]
        )
        top = terms.max(0)
        result.log_weights = -(top + np.log(np.exp(terms - top).sum(0)))
        _train_round(result, config)
    return result


def _train_round(result: SequentialResult, config: BudgetConfig) -> None:
    k = len(result.rounds)
    trained = train_weighted(
        result.network,
        result.traces,
        result.log_weights,
        replace(config, seed=derive_seed(config.seed, "round", k)),
    )
    w = np.exp(result.log_weights - result.log_weights.max())
    result.rounds.append({
        "round": k, "simulations": result.sizes[k], "epochs": trained.epochs,
        "seconds": trained.seconds, "best_valid_loss": trained.best_valid_loss,
        "weight_ess": float(w.sum() ** 2 / (w**2).sum()) if len(w) else math.nan,
    })  # fmt: skip
