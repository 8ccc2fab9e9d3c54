"""Convergence and weight diagnostics, computed by ArviZ (never re-derived by hand).

* MCMC: rank-normalised split R-hat, bulk and tail ESS, MCSE of the mean and of the standard
  deviation (Vehtari et al. 2021, as implemented by ``arviz.rhat/ess/mcse``), the
  autocorrelation function, and R-hat as the chains grow.
* Importance sampling: the effective sample size of the weights and the Pareto shape ``k``
  of their upper tail (``arviz.psislw``; Vehtari et al. 2024): ``k > 0.7`` means the
  estimates are unreliable, the proposal misses where the posterior is.

Every function takes an ``Empirical`` or an ``InferenceData`` made by
:func:`~.inference_data.to_inference_data`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .inference_data import to_inference_data
from .mcmc import import_arviz

__all__ = [
    "PARETO_K_MAX",
    "RHAT_MAX",
    "autocorrelation",
    "convergence_table",
    "convergence_warnings",
    "importance_diagnostics",
    "importance_warnings",
    "rhat_evolution",
]

RHAT_MAX = 1.01
"""R-hat above this flags a variable as not converged (Vehtari et al. 2021)."""

PARETO_K_MAX = 0.7
"""Pareto ``k`` above this makes importance-sampling estimates unreliable."""

_STATS = ("mean", "sd", "rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd")


def _idata(data: Any) -> Any:
    return data if hasattr(data, "posterior") else to_inference_data(data)


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ArviZ with its numerical warnings silenced (constant chains give NaN, which the
    callers turn into an explicit warning instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _elements(name: str, arr: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Split a ``(chain, draw, *shape)`` array into scalar ``(label, (chain, draw))`` series."""
    if arr.ndim == 2:
        return [(name, arr)]
    out = []
    for idx in np.ndindex(*arr.shape[2:]):
        label = f"{name}[{','.join(map(str, idx))}]"
        out.append((label, arr[(slice(None), slice(None), *idx)]))
    return out


def convergence_table(data: Any, var_names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Mean, sd, R-hat, bulk/tail ESS and MCSEs of every scalar (element of a) variable.

    Args:
        data: An ``Empirical`` (MCMC chains) or ``InferenceData``.
        var_names: Variables to include (default: all posterior variables).

    Returns:
        ``{label: {"mean", "sd", "rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"}}``;
        array variables give one row per element (``"x[0,1]"``). A variable whose draws
        never change gets NaN R-hat and ESS 1 (one sample's worth of information).
    """
    az = import_arviz()
    post = _idata(data).posterior
    names = list(post.data_vars) if var_names is None else var_names
    table: dict[str, dict[str, float]] = {}
    for name in names:
        if name not in post:
            raise KeyError(f"no variable {name!r} in the posterior; have {list(post.data_vars)}")
        for label, x in _elements(name, np.asarray(post[name].values, dtype=float)):
            row = {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0}
            if np.ptp(x) == 0 or x.shape[1] < 4:
                row.update(rhat=math.nan, ess_bulk=1.0, ess_tail=1.0)
                row.update(mcse_mean=math.nan, mcse_sd=math.nan)
            else:
                row["rhat"] = float(_quiet(az.rhat, x, method="rank"))
                row["ess_bulk"] = float(_quiet(az.ess, x, method="bulk"))
                row["ess_tail"] = float(_quiet(az.ess, x, method="tail"))
                row["mcse_mean"] = float(_quiet(az.mcse, x, method="mean"))
                row["mcse_sd"] = float(_quiet(az.mcse, x, method="sd"))
            table[label] = row
    return table


def convergence_warnings(
    table: dict[str, dict[str, float]],
    num_chains: int,
    rhat_max: float = RHAT_MAX,
    min_ess: float | None = None,
) -> list[str]:
    """Human-readable warnings for a :func:`convergence_table`.

    Args:
        table: Output of :func:`convergence_table`.
        num_chains: Number of chains (sets the default ESS threshold).
        rhat_max: Flag R-hat above this.
        min_ess: Flag bulk or tail ESS below this (default ``100 * num_chains``, the
            recommendation of Vehtari et al. 2021).

    Returns:
        One message per problem, naming the variable; empty when all looks converged.
    """
    threshold = 100.0 * num_chains if min_ess is None else float(min_ess)
    out: list[str] = []
    for label, row in table.items():
        if math.isnan(row["rhat"]):
            out.append(f"{label}: the chains never moved (constant draws); nothing was explored")
            continue
        if row["rhat"] > rhat_max:
            out.append(
                f"{label}: R-hat {row['rhat']:.3f} > {rhat_max}: the chains have not converged "
                "(run longer, add burn-in, or change the proposal)"
            )
        low = min(row["ess_bulk"], row["ess_tail"])
        if low < threshold:
            out.append(
                f"{label}: ESS {low:.0f} (bulk {row['ess_bulk']:.0f}, tail {row['ess_tail']:.0f})"
                f" < {threshold:.0f}: too few effective samples for reliable estimates"
            )
    return out


def autocorrelation(data: Any, var_name: str, max_lag: int = 100) -> np.ndarray:
    """Autocorrelation of ``var_name`` per chain, lags ``0 .. max_lag`` (``arviz.autocorr``).

    Returns:
        Array ``(chains, lags)``; a chain that never moved has autocorrelation 1 at every lag.
    """
    az = import_arviz()
    x = np.asarray(_idata(data).posterior[var_name].values, dtype=float)
    if x.ndim != 2:
        raise ValueError(
            f"autocorrelation needs a scalar variable; {var_name!r} has shape {x.shape[2:]}"
        )
    lags = min(max_lag, x.shape[1] - 1) + 1
    rho = np.ones((x.shape[0], lags))
    for c in range(x.shape[0]):
        if np.ptp(x[c]) > 0:
            rho[c] = _quiet(az.autocorr, x[c])[:lags]
    return rho


def rhat_evolution(data: Any, var_name: str, num_points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """R-hat of ``var_name`` computed on the first ``k`` draws of every chain, for growing ``k``.

    Returns:
        ``(draws, rhat)``: the prefix lengths and the R-hat of each (NaN where undefined).
    """
    az = import_arviz()
    x = np.asarray(_idata(data).posterior[var_name].values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"R-hat evolution needs a scalar variable; {var_name!r} is {x.shape[2:]}")
    n = x.shape[1]
    ks = np.unique(np.linspace(min(n, 8), n, num_points).astype(int))
    values = [
        float(_quiet(az.rhat, x[:, :k], method="rank")) if np.ptp(x[:, :k]) > 0 else math.nan
        for k in ks
    ]
    return ks, np.asarray(values)


def importance_diagnostics(result: Any) -> dict[str, float]:
    """Effective sample size and Pareto ``k`` of the importance weights of ``result``.

    Returns:
        ``{"num_samples", "ess", "ess_fraction", "pareto_k", "nonzero"}``: Kish ESS of the
        normalised weights, its fraction of the samples, the Pareto shape of the largest
        weights from ``arviz.psislw`` (NaN when all weights are equal: there is no tail),
        and the number of non-zero weights.
    """
    az = import_arviz()
    lw = np.asarray(result.log_weights, dtype=float)
    finite = lw[np.isfinite(lw)]
    n = len(lw)
    ess = float(result.ess) if len(finite) else 0.0
    k = math.nan
    if len(finite) >= 5 and np.ptp(finite) > 0:
        # zero weights (-inf) are not part of the upper tail that k describes
        k = float(_quiet(az.psislw, finite.copy(), reff=1.0)[1])
    return {
        "num_samples": float(n),
        "ess": ess,
        "ess_fraction": ess / n if n else 0.0,
        "pareto_k": k,
        "nonzero": float(len(finite)),
    }


def importance_warnings(
    diag: dict[str, float], min_ess: float = 100.0, k_max: float = PARETO_K_MAX
) -> list[str]:
    """Warnings for :func:`importance_diagnostics` (low ESS, large Pareto ``k``)."""
    out = []
    if diag["ess"] < min_ess:
        out.append(
            f"importance-sampling ESS {diag['ess']:.1f} < {min_ess:.0f} of "
            f"{diag['num_samples']:.0f} samples: a few weights dominate"
        )
    if diag["pareto_k"] > k_max:
        out.append(
            f"Pareto k {diag['pareto_k']:.2f} > {k_max}: the weight distribution has a heavy "
            "tail, estimates are unreliable (use more samples or a better proposal)"
        )
    return out
