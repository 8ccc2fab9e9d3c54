"""The learning curve of an inference network: training and validation loss against traces."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._figure import CHAIN_COLORS, finish, pyplot

__all__ = ["plot_training"]


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = (c[idx] - c[lo]) / (idx - lo)
    return out


def plot_training(
    result: Any = None,
    path: str | os.PathLike[str] | None = None,
    *,
    loss: Sequence[tuple[int, float]] | None = None,
    valid_loss: Sequence[tuple[int, float]] | None = None,
    title: str | None = "Inference network training",
) -> Any:
    """Plot the training loss (each step, and its moving average) and the validation loss.

    Args:
        result: A :class:`~rotalumis.nn.TrainingResult` (or give ``loss`` / ``valid_loss``).
        path: Where to save the figure (PNG, SVG, ... by extension); ``None`` to only return it.
        loss: ``(traces, loss)`` per training step.
        valid_loss: ``(traces, loss)`` per validation.
        title: Figure title.

    Returns:
        The matplotlib figure (closed).

    Raises:
        ValueError: if there is no loss to plot.
    """
    if result is not None:
        loss = result.loss if loss is None else loss
        valid_loss = result.valid_loss if valid_loss is None else valid_loss
    steps = np.asarray(loss or [], dtype=float).reshape(-1, 2)
    valid = np.asarray(valid_loss or [], dtype=float).reshape(-1, 2)
    if not len(steps) and not len(valid):
        raise ValueError("nothing to plot: the training result has no loss history")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    finite = steps[np.isfinite(steps[:, 1])]
    if len(finite):
        x, y = finite[:, 0], finite[:, 1]
        ax.plot(x, y, color=CHAIN_COLORS[0], alpha=0.25, lw=0.8, label="training (each step)")
        window = max(len(y) // 50, 1)
        if window > 1:
            ax.plot(
                x,
                _moving_average(y, window),
                color=CHAIN_COLORS[0],
                lw=1.8,
                label=f"training (mean of {window} steps)",
            )
        # the early loss dwarfs the rest: show the range of the last 90% of the steps
        tail = y[len(y) // 10 :]
        lo, hi = float(np.min(tail)), float(np.max(tail))
        if len(valid):
            lo, hi = min(lo, float(np.nanmin(valid[:, 1]))), max(hi, float(np.nanmax(valid[:, 1])))
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
    if len(valid):
        ax.plot(
            valid[:, 0], valid[:, 1], "o-", color=CHAIN_COLORS[1], lw=1.8, ms=4, label="validation"
        )
    ax.set_xlabel("training traces")
    ax.set_ylabel("loss  (−log q(latents | observations), per trace)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return finish(fig, path, title)
