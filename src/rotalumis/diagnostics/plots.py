"""Posterior plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["plot_posterior"]


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
    lo = values[order][np.searchsorted(cdf, 0.001)]
    hi = values[order][min(np.searchsorted(cdf, 0.999), len(values) - 1)]
    return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(hi) + 0.5)


def plot_posterior(
    result: Any,
    path: str | os.PathLike[str],
    title: str | None = None,
    truth: Mapping[str, float] | None = None,
    max_panels: int = 12,
) -> Any:
    """Weighted histograms of the result and each scalar named latent, saved as PNG.

    Args:
        result: An ``Empirical``.
        path: Output image path.
        title: Figure title.
        truth: Optional ground-truth or exact values by panel label, drawn as lines.
        max_panels: At most this many panels.

    Returns:
        The matplotlib figure (closed after saving; inspect its axes in tests).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(result)[:max_panels] or []
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (label, values, w) in zip(axes.flat, panels, strict=False):
        discrete = np.allclose(values, np.round(values)) and len(np.unique(values)) <= 40
        if discrete:
            lo, hi = int(values.min()), int(values.max())
            bins = np.arange(lo - 0.5, hi + 1.5)
        else:
            lo, hi = _weighted_range(values, w)
            bins = np.linspace(lo, hi, 51)
        ax.hist(values, bins=bins, weights=w, density=True, color="#4C72B0", alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("posterior density" if not discrete else "posterior probability")
        if truth and label in truth:
            ax.axvline(truth[label], color="#C44E52", lw=2, label="truth")
            ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig
