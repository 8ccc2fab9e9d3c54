"""Which random choices make importance weights heavy: the log weight split by term.

An importance-sampled trace's log weight is a sum, ``log w = log p(y | x) + sum over the
proposed sites of (log p(x_s) - log q(x_s | ...))`` (for a mixture proposal, ``log q`` of a
site is its step of the mixture's density by the chain rule, so the sum still holds). When the
ESS is low, the question is which terms lift the heavy traces above the typical one.
:func:`weight_sources` gives each term's mean under the proposal (over all traces) and under
the posterior (the normalised weights), and their difference, its *divergence*: the
divergences sum to ``E_p[log w] - E_q[log w]``, the estimated symmetrised (Jeffreys)
divergence ``KL(p || q) + KL(q || p)`` between the posterior and the proposal, which is zero
only when every trace weighs the same. A likelihood with a large divergence means that most
proposed traces miss the data (the proposal is too wide where the data constrain); a site with
a large one means that the proposal scores that site's values in the posterior's bulk far
below their prior (too narrow or misplaced there). Shares of the log weights' variance would
be dominated by traces that miss badly and weigh nothing, so they are not used. The posterior
means are self-normalised estimates: with a tiny ESS, they rest on a few traces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rotalumis.data.empirical import normalized_weights

__all__ = ["WeightSource", "weight_sources"]

LIKELIHOOD = "likelihood"
REST = "rest"


@dataclass(frozen=True)
class WeightSource:
    """One term of the log weights (see :func:`weight_sources`).

    Attributes:
        label: ``"likelihood"`` (every observation together), a site's group label, or
            ``"rest"`` (what the sites and the likelihood do not account for: an engine's own
            terms, or log weights shifted by the engine; shown only when non-zero).
        divergence: ``weighted_mean - mean``: the term's part of the estimated Jeffreys
            divergence between the posterior and the proposal (nats).
        mean: Mean of the term over the traces with finite weights (under the proposal).
        weighted_mean: Its mean under the normalised importance weights (the posterior).
        traces: How many of those traces hold the term (a site absent from a trace adds 0).
    """

    label: str
    divergence: float
    mean: float
    weighted_mean: float
    traces: int


def _site_label(msg: Any) -> str:
    return str(msg.name) if msg.name is not None else str(msg.base_address)


def weight_sources(result: Any, group: Callable[[Any], str] | None = None) -> list[WeightSource]:
    """The terms of the importance log weights of ``result``, largest divergence first.

    Args:
        result: An importance-sampling posterior (``engine="is"`` or ``"ic"``) run with
            ``keep_traces=True``.
        group: Maps a sample site (a :class:`~rotalumis.core.runtime.Message`: ``name``,
            ``address``, ``base_address``, ``value``) to the label it is summed under. Default:
            its name, else its base address (every instance of a loop's site together).
            Sites drawn from their prior add nothing (``log p - log q = 0``) and get no row.

    Returns:
        One :class:`WeightSource` per label, ``"likelihood"`` among them, largest divergence
        first; the divergences sum to ``E_p[log w] - E_q[log w]``.

    Raises:
        ValueError: if the traces were not kept, or fewer than two have a finite weight.
    """
    traces = result.traces
    if traces is None or any(t is None for t in traces):
        raise ValueError(
            "weight_sources needs every trace: run the inference with keep_traces=True"
        )
    log_w = np.asarray(result.log_weights, dtype=float)
    keep = np.flatnonzero(np.isfinite(log_w))
    if len(keep) < 2:
        raise ValueError(
            f"weight_sources needs at least two traces with a finite weight, got {len(keep)}"
        )
    label = group or _site_label
    terms: dict[str, np.ndarray] = {LIKELIHOOD: np.zeros(len(keep))}
    held: dict[str, np.ndarray] = {LIKELIHOOD: np.ones(len(keep), dtype=bool)}
    for row, i in enumerate(keep):
        trace = traces[i]
        terms[LIKELIHOOD][row] = float(trace.log_likelihood)
        for msg in trace.variables:
            if msg.kind != "sample" or msg.observed or msg.proposal_log_prob is None:
                continue
            key = label(msg)
            if key not in terms:
                terms[key] = np.zeros(len(keep))
                held[key] = np.zeros(len(keep), dtype=bool)
            terms[key][row] += float(msg.log_prob) - float(msg.proposal_log_prob)
            held[key][row] = True
    lw = log_w[keep]
    rest = lw - sum(terms.values())
    if np.abs(rest).max() > 1e-6 * (1.0 + np.abs(lw).max()):  # beyond rounding
        terms[REST], held[REST] = rest, np.ones(len(keep), dtype=bool)
    weights = normalized_weights(lw)
    rows = []
    for key, c in terms.items():
        mean, weighted = float(c.mean()), float(weights @ c)
        rows.append(WeightSource(key, weighted - mean, mean, weighted, int(held[key].sum())))
    return sorted(rows, key=lambda r: -r.divergence)
