"""The outcome of an optimization: final parameters, loss and parameter histories, a plot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from rotalumis.core.files import atomic_write

from .config import OptimizeConfig

__all__ = ["OptimizationResult"]


@dataclass(frozen=True)
class OptimizationResult:
    """What :func:`~rotalumis.optimize.optimize` returns.

    Attributes:
        params: Final parameter values by name (detached tensors).
        loss_history: Mean batch loss at each step (before that step's update).
        param_history: Each parameter's value before every step and after the last, stacked
            (shape ``(steps + 1, *param_shape)``).
        config: The configuration used.
        seed: The seed of the run (reproduces it exactly).
    """

    params: dict[str, torch.Tensor]
    loss_history: tuple[float, ...]
    param_history: dict[str, torch.Tensor]
    config: OptimizeConfig
    seed: int

    @property
    def steps(self) -> int:
        """Number of optimizer steps taken."""
        return len(self.loss_history)

    def smoothed_loss(self, window: int | None = None) -> list[float]:
        """The loss history as a trailing running mean over ``window`` steps.

        Args:
            window: Width of the running mean; default about 5% of the steps.
        """
        losses = self.loss_history
        if window is None:
            window = max(1, len(losses) // 20)
        out: list[float] = []
        total = 0.0
        for i, v in enumerate(losses):
            total += v
            if i >= window:
                total -= losses[i - window]
            out.append(total / min(i + 1, window))
        return out

    def final_loss(self, window: int | None = None) -> float:
        """Mean batch loss over the last ``window`` steps (default about 5% of the run)."""
        return self.smoothed_loss(window)[-1]

    def plot(
        self,
        path: str | Path,
        title: str | None = None,
        reference: Mapping[str, float] | None = None,
        reference_loss: float | None = None,
    ) -> Path:
        """Write a PNG of the loss curve and, for scalar parameters, their trajectories.

        Args:
            path: Where to write the PNG (parent folders are created).
            title: Figure title.
            reference: Known optimal values of scalar parameters, drawn as dashed lines.
            reference_loss: The known optimal expected loss, drawn as a dashed line.

        Returns:
            The path written.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        scalars = {n: h for n, h in self.param_history.items() if h[0].numel() == 1}
        ncols = 2 if scalars else 1
        fig = Figure(figsize=(5.0 * ncols, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, ncols, 1)
        steps = range(1, self.steps + 1)
        ax.plot(steps, self.loss_history, color="tab:blue", alpha=0.3, lw=0.8, label="batch loss")
        ax.plot(steps, self.smoothed_loss(), color="tab:blue", lw=1.8, label="running mean")
        if reference_loss is not None:
            ax.axhline(reference_loss, color="k", ls="--", lw=1, label="exact optimum")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
        if scalars:
            ax2 = fig.add_subplot(1, ncols, 2)
            for i, (name, hist) in enumerate(scalars.items()):
                color = f"C{(i + 1) % 10}"
                ax2.plot(range(len(hist)), hist.reshape(-1).tolist(), color=color, label=name)
                if reference is not None and name in reference:
                    ax2.axhline(
                        float(reference[name]),
                        color=color,
                        ls="--",
                        lw=1,
                        label=f"{name}: exact optimum",
                    )
            ax2.set_xlabel("step")
            ax2.set_ylabel("parameter value")
            ax2.legend(frameon=False)
        if title:
            fig.suptitle(title)
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=110)
        return path

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{n}={v.tolist() if v.numel() <= 4 else tuple(v.shape)}"
            for n, v in self.params.items()
        )
        return (
            f"OptimizationResult({self.steps} steps, final_loss={self.final_loss():.4g}, {shown})"
        )
