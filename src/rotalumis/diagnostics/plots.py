"""Posterior plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._figure import finish, pyplot

__all__ = ["plot_posterior", "weighted_density"]


def _panels(result: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    panels: list[tuple[str, np.ndarray, np.ndarray]] = []
    # named latents first; the result last, and only when it is not one of them
    items: list[tuple[str, Any]] = [(name, result.get(name)) for name in result.latent_names]
    items.append(("result", result))
    for label, emp in items:
        try:
            values = np.asarray(emp.to_numpy(), dtype=float)
            w = np.asarray(emp.weights, dtype=float)
        except (TypeError, ValueError):
            continue  # non-numeric or ragged values: nothing to histogram
        if values.ndim != 1 or len(values) != len(w) or not np.isfinite(values).all():
            continue
        if any(np.array_equal(values, v) for _, v, _ in panels):
            continue  # e.g. a model that returns one of its named latents
        panels.append((label, values, w))
    return panels


def _weighted_range(values: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The central 99.8% of the weighted mass (the histogram range)."""
    order = np.argsort(values)
    cdf = np.cumsum(w[order])
    cdf /= cdf[-1]
    ordered = values[order]
    lo = float(ordered[int(np.searchsorted(cdf, 0.001))])
    hi = float(ordered[min(int(np.searchsorted(cdf, 0.999)), len(values) - 1)])
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def weighted_density(
    values: np.ndarray, w: np.ndarray, lo: float, hi: float, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """A weighted Gaussian kernel density estimate on ``points`` grid points in ``[lo, hi]``.

    The samples are first binned on a fine grid (so the cost is linear in the samples) and
    the bandwidth follows Silverman's rule with the weights' effective sample size.
    """
    w = w / w.sum()
    mean = float(np.sum(w * values))
    sd = float(np.sqrt(np.sum(w * (values - mean) ** 2)))
    ess = 1.0 / float(np.sum(w**2))
    bw = max(1.06 * sd * ess ** (-0.2), (hi - lo) / points, 1e-12)
    grid = np.linspace(lo, hi, points)
    mass, edges = np.histogram(values, bins=4 * points, range=(lo, hi), weights=w)
    centres = 0.5 * (edges[1:] + edges[:-1])
    kernel = np.exp(-0.5 * ((grid[:, None] - centres[None, :]) / bw) ** 2)
    dens = kernel @ mass / (bw * np.sqrt(2 * np.pi))
    return grid, dens


def plot_posterior(
    result: Any,
    path: str | os.PathLike[str] | None,
    title: str | None = None,
    truth: Mapping[str, float] | None = None,
    max_panels: int = 12,
    density: bool = True,
) -> Any:
    """Weighted histograms of the result and each scalar named latent, saved as PNG.

    Continuous panels also show a weighted kernel density estimate (``density=True``);
    discrete ones show the probability of each value.

    Args:
        result: An ``Empirical``.
        path: Output image path (``None``: do not save).
        title: Figure title.
        truth: Optional ground-truth or exact values by panel label, drawn as lines.
        max_panels: At most this many panels.
        density: Overlay a density estimate on continuous panels.

    Returns:
        The matplotlib figure (closed after saving; inspect its axes in tests).
    """
    plt = pyplot()
    panels = _panels(result)[:max_panels] or []
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (label, values, w) in zip(axes.flat, panels, strict=False):
        discrete = np.allclose(values, np.round(values)) and len(np.unique(values)) <= 40
        if discrete:
            bins = np.arange(int(values.min()) - 0.5, int(values.max()) + 1.5)
        else:
            lo, hi = _weighted_range(values, w)
            bins = np.linspace(lo, hi, 51)
        ax.hist(values, bins=bins, weights=w, density=True, color="#4C72B0", alpha=0.8)
        if density and not discrete:
            grid, dens = weighted_density(values, w, float(bins[0]), float(bins[-1]))
            ax.plot(grid, dens, color="#1F2D4D", lw=1.5, label="density")
        ax.set_xlabel(label)
        ax.set_ylabel("posterior density" if not discrete else "posterior probability")
        if truth and label in truth:
            ax.axvline(truth[label], color="#C44E52", lw=2, label="truth")
            ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return finish(fig, path, title)
