"""MCMC plots: traces, log density, autocorrelation, R-hat as chains grow, pair plots.

Each function takes an ``Empirical`` (or an ``InferenceData`` where noted), saves a PNG when
``path`` is given, and returns the (closed) matplotlib figure so its content can be checked.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._figure import CHAIN_COLORS, finish, pyplot
from .convergence import RHAT_MAX, autocorrelation, rhat_evolution
from .inference_data import (
    chain_lengths,
    distinct_variables,
    log_probs,
    numeric_columns,
    to_inference_data,
)

__all__ = [
    "plot_autocorrelation",
    "plot_log_prob",
    "plot_pair",
    "plot_rhat_evolution",
    "plot_traces",
    "scalar_variables",
]

PathLike = str | os.PathLike[str] | None


def _idata(data: Any) -> Any:
    return data if hasattr(data, "posterior") else to_inference_data(data)


def scalar_variables(data: Any, max_vars: int = 6) -> list[str]:
    """Scalar posterior variables worth plotting: ``result`` is dropped when it repeats a
    named latent (e.g. a model returning its latent ``mu``)."""
    idata = _idata(data)
    names = [v for v in distinct_variables(idata) if idata.posterior[v].ndim == 2]
    return names[:max_vars]


def _color(c: int) -> str:
    return CHAIN_COLORS[c % len(CHAIN_COLORS)]


def plot_traces(
    data: Any, path: PathLike = None, var_names: list[str] | None = None, title: str | None = None
) -> Any:
    """Trace plot: each variable's draws against the iteration (one line per chain, left)
    and each chain's histogram (right)."""
    plt = pyplot()
    idata = _idata(data)
    names = var_names or scalar_variables(idata)
    fig, axes = plt.subplots(
        max(1, len(names)), 2, figsize=(11, 2.4 * max(1, len(names))), squeeze=False,
        gridspec_kw={"width_ratios": [3, 1]},
    )  # fmt: skip
    for row, name in zip(axes, names, strict=False):
        x = np.asarray(idata.posterior[name].values, dtype=float)
        for c in range(x.shape[0]):
            row[0].plot(x[c], color=_color(c), lw=0.7, alpha=0.85, label=f"chain {c}")
            row[1].hist(x[c], bins=30, color=_color(c), alpha=0.5, orientation="horizontal")
        row[0].set_xlabel("iteration")
        row[0].set_ylabel(name)
        row[1].set_xlabel("count")
        row[1].set_ylabel(name)
        if x.shape[0] > 1:
            row[0].legend(loc="upper right", fontsize="small", ncol=min(4, x.shape[0]))
    return finish(fig, path, title or "MCMC traces")


def plot_log_prob(result: Any, path: PathLike = None, title: str | None = None) -> Any:
    """The joint log density ``log p(x, y)`` of each sample against the iteration, per chain.

    Raises:
        ValueError: if ``result`` records no log density (neither ``result.info.log_prob``
            nor kept traces).
    """
    lp = log_probs(result)
    if lp is None:
        raise ValueError(
            f"the Empirical {result.name!r} records no log density: run an MCMC engine, or "
            "keep_traces=True"
        )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    start = 0
    lengths = chain_lengths(result)
    for c, n in enumerate(lengths):
        ax.plot(lp[start : start + n], color=_color(c), lw=0.7, label=f"chain {c}")
        start += n
    ax.set_xlabel("iteration")
    ax.set_ylabel("log p(x, y)")
    if len(lengths) > 1:
        ax.legend(loc="lower right", fontsize="small", ncol=min(4, len(lengths)))
    return finish(fig, path, title or "Log joint density over iterations")


def plot_autocorrelation(
    data: Any,
    path: PathLike = None,
    var_names: list[str] | None = None,
    max_lag: int = 50,
    title: str | None = None,
) -> Any:
    """Autocorrelation against the lag, one panel per variable, one line per chain."""
    plt = pyplot()
    idata = _idata(data)
    names = var_names or scalar_variables(idata)
    cols = min(3, max(1, len(names)))
    rows = (max(1, len(names)) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        rho = autocorrelation(idata, name, max_lag)
        for c in range(rho.shape[0]):
            ax.plot(np.arange(rho.shape[1]), rho[c], color=_color(c), lw=1, label=f"chain {c}")
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xlabel("lag")
        ax.set_ylabel(f"autocorrelation of {name}")
        ax.set_ylim(-1.05, 1.05)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    return finish(fig, path, title or "Autocorrelation")


def plot_rhat_evolution(
    data: Any, path: PathLike = None, var_names: list[str] | None = None, title: str | None = None
) -> Any:
    """Rank-normalised split R-hat of each variable on the first ``k`` draws of every chain,
    for growing ``k``, with the 1.01 threshold."""
    plt = pyplot()
    idata = _idata(data)
    names = var_names or scalar_variables(idata)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, name in enumerate(names):
        ks, rhat = rhat_evolution(idata, name)
        ax.plot(ks, rhat, marker="o", ms=3, color=_color(i), label=name)
    ax.axhline(RHAT_MAX, color="#C44E52", ls="--", lw=1, label=f"R-hat = {RHAT_MAX}")
    ax.set_xlabel("draws per chain")
    ax.set_ylabel("R-hat")
    ax.legend(fontsize="small")
    chains = idata.posterior.sizes["chain"]
    return finish(fig, path, title or f"R-hat as the {chains} chain(s) grow")


def plot_pair(
    result: Any, path: PathLike = None, max_vars: int = 5, title: str | None = None
) -> Any:
    """Pair plot of the scalar named latents: weighted histograms on the diagonal, weighted
    2-D histograms off it (so importance weights are respected).

    Raises:
        ValueError: with fewer than two scalar variables.
    """
    cols = {k: v for k, v in numeric_columns(result).items() if v.ndim == 1}
    names: list[str] = []
    for name, v in cols.items():
        if not any(np.array_equal(v, cols[o]) for o in names):
            names.append(name)
    names = names[:max_vars]
    if len(names) < 2:
        raise ValueError(f"a pair plot needs two scalar variables; {result.name!r} has {names}")
    w = np.asarray(result.weights, dtype=float)
    plt = pyplot()
    k = len(names)
    fig, axes = plt.subplots(k, k, figsize=(2.6 * k, 2.6 * k), squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
            elif i == j:
                ax.hist(cols[xj], bins=30, weights=w, color=CHAIN_COLORS[0], alpha=0.85)
            else:
                ax.hist2d(cols[xj], cols[yi], bins=30, weights=w, cmap="Blues")
            if i == k - 1:
                ax.set_xlabel(xj)
            if j == 0 and i > 0:
                ax.set_ylabel(yi)
    return finish(fig, path, title or "Pair plot of the named latents")
