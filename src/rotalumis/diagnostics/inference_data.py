"""Export an ``Empirical`` (importance sampling or MCMC chains) to ArviZ ``InferenceData``.

Layout of the result:

* ``posterior``: one variable per numeric named latent (scalar or fixed-shape array) and
  ``result`` (the model's return value, when numeric), with dimensions ``(chain, draw, ...)``.
  MCMC chains, concatenated in order by the engines and described by ``result.chains``
  (or ``result.info.chains``), become the ``chain`` dimension; any other result is one chain.
* ``sample_stats``: ``log_weight`` (the unnormalised importance log weights, zeros for MCMC)
  and ``lp`` (the joint log density of each sample) when known: from
  ``result.info.log_prob`` if an engine recorded it, or else from kept traces.
* ``posterior.attrs``: ``engine``, ``weighted`` (whether the draws carry unequal weights: ArviZ's
  statistics ignore weights, so chain diagnostics of a weighted result are not meaningful).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .mcmc import import_arviz

__all__ = [
    "chain_lengths",
    "distinct_variables",
    "log_probs",
    "numeric_columns",
    "to_inference_data",
]

log = logging.getLogger(__name__)


def chain_lengths(result: Any) -> list[int]:
    """Lengths of the chains of ``result`` (``[len(result)]`` when it is not MCMC)."""
    chains = getattr(result, "chains", None)
    if chains is not None:
        return list(chains)
    info = getattr(result, "info", None)
    lengths = [c.length for c in info.chains] if info is not None else []
    if not lengths or sum(lengths) != len(result):
        return [len(result)]
    return lengths


def numeric_columns(result: Any) -> dict[str, np.ndarray]:
    """Named latents recorded by every entry, then ``result``, as float arrays ``(N, ...)``.

    Latents that are missing in some entries (their site was not visited), non-numeric,
    ragged or non-finite are left out (logged at debug level). ``result`` is included even
    when it equals a named latent, so the variables match what the engine returned.
    """
    n = len(result)
    out: dict[str, np.ndarray] = {}
    items: list[tuple[str, Any]] = [(name, result.get(name)) for name in result.latent_names]
    items.append(("result", result))
    for label, emp in items:
        if len(emp) != n:
            log.debug("latent %r is recorded in %d of %d entries: left out", label, len(emp), n)
            continue
        try:
            values = np.asarray(emp.to_numpy(), dtype=float)
        except (TypeError, ValueError):
            log.debug("values of %r are not numeric arrays: left out", label)
            continue
        if values.ndim == 0 or values.shape[0] != n or not np.isfinite(values).all():
            continue
        out[label] = values
    return out


def log_probs(result: Any) -> np.ndarray | None:
    """The joint log density of each entry, if known (recorded by the engine in
    ``result.info.log_prob``, or from kept traces)."""
    n = len(result)
    info = getattr(result, "info", None)
    recorded = None if info is None else info.log_prob
    if recorded is not None and len(recorded) == n:
        return np.asarray(recorded, dtype=float)
    traces = result.traces
    if not traces or any(t is None for t in traces):
        return None
    return np.array([_trace_log_prob(t) for t in traces], dtype=float)


def _trace_log_prob(trace: Any) -> float:
    if isinstance(trace, dict):  # a trace loaded back from disk (Trace.to_dict form)
        return float(trace["log_prior"]) + float(trace["log_likelihood"])
    return float(trace.log_prob)


def distinct_variables(idata: Any) -> list[str]:
    """Posterior variables of ``idata`` without repeats: ``result`` is dropped when it equals
    a named latent (e.g. a model that returns its latent ``mu``)."""
    post = idata.posterior
    names: list[str] = []
    for name in post.data_vars:
        x = post[name].values
        if not any(np.array_equal(x, post[other].values) for other in names):
            names.append(str(name))
    return names


def _by_chain(values: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """``(N, ...)`` -> ``(chains, draws, ...)``; unequal chains are cut to the shortest."""
    draws = min(lengths)
    starts = np.cumsum([0, *lengths[:-1]])
    return np.stack([values[s : s + draws] for s in starts])


def to_inference_data(result: Any, log_prob: Sequence[float] | None = None) -> Any:
    """Convert an ``Empirical`` to ``arviz.InferenceData`` (layout in the module docstring).

    Args:
        result: An ``Empirical`` from any engine (MCMC chains from
            ``result.info.chains``).
        log_prob: Per-entry joint log densities, overriding what ``result`` records.

    Returns:
        An ``InferenceData`` with ``posterior`` and ``sample_stats`` groups.

    Raises:
        ValueError: if ``result`` has no entries or no numeric variable, or ``log_prob`` has
            the wrong length.

    Example:
        >>> from rotalumis.models import UnknownMean
        >>> emp = UnknownMean().posterior(200, engine="lmh", observe={"obs0": 8, "obs1": 9},
        ...                               seed=0, num_chains=2)
        >>> idata = to_inference_data(emp)
        >>> idata.posterior["mu"].shape
        (2, 200)
    """
    n = len(result)
    if n == 0:
        raise ValueError("cannot convert an empty Empirical to InferenceData")
    columns = numeric_columns(result)
    if not columns:
        raise ValueError(
            f"the Empirical {result.name!r} has no numeric variable to export "
            f"(latents: {list(result.latent_names)})"
        )
    lengths = chain_lengths(result)
    if len(set(lengths)) > 1:
        log.warning("chains of unequal lengths %s: each is cut to %d", lengths, min(lengths))
    lw = np.asarray(result.log_weights, dtype=float)
    stats: dict[str, np.ndarray] = {"log_weight": _by_chain(lw, lengths)}
    lp = log_probs(result) if log_prob is None else np.asarray(log_prob, dtype=float)
    if lp is not None:
        if lp.shape != (n,):
            raise ValueError(f"log_prob has shape {lp.shape}, expected ({n},)")
        stats["lp"] = _by_chain(lp, lengths)
    engine = result.info.engine if getattr(result, "info", None) is not None else "unknown"
    weighted = bool(np.ptp(lw[np.isfinite(lw)]) > 0) if np.isfinite(lw).any() else False
    az = import_arviz()
    idata = az.from_dict(
        posterior={k: _by_chain(v, lengths) for k, v in columns.items()},
        sample_stats=stats,
    )
    idata.posterior.attrs.update({"engine": str(engine), "weighted": int(weighted)})
    return idata
