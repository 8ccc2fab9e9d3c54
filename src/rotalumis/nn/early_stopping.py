"""Early stopping on the validation loss, for :func:`~.training.train_network`.

Training on a fixed set of simulations overfits after enough epochs: the validation loss (on
held-out traces) stops falling and rises. :class:`EarlyStopping` ends training once it has
not improved for ``patience`` validations in a row, and gives back the network of the best
validation. The best weights travel in the training checkpoint, and the count of
validations since the best is recomputed from the saved history, so a resumed run stops
where an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["EarlyStopping"]


@dataclass(frozen=True)
class EarlyStopping:
    """When to stop: ``patience`` validations without an improvement of more than
    ``min_delta``.

    Attributes:
        patience: Validations in a row without improvement that end training (with
            validation once per epoch, as :func:`~.budget.train_on_dataset` does: epochs).
        min_delta: Smallest decrease of the validation loss that counts as improvement.
        restore_best: Hand back the network of the best validation (else the last one).
    """

    patience: int = 20
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, int):
            raise ValueError(f"EarlyStopping.patience must be an integer, got {self.patience!r}")
        if self.patience < 1:
            raise ValueError(f"EarlyStopping.patience must be >= 1, got {self.patience}")
        if not (self.min_delta >= 0.0 and math.isfinite(self.min_delta)):
            raise ValueError(f"EarlyStopping.min_delta must be >= 0, got {self.min_delta!r}")


class Stopper:
    """The running state of an :class:`EarlyStopping` rule during one training run.

    Args:
        rule: The rule.
        history: ``(traces, validation loss)`` pairs recorded so far (a resumed run's).
        saved: What :meth:`state` returned into the checkpoint being resumed, if any.
    """

    def __init__(
        self,
        rule: EarlyStopping,
        history: Sequence[tuple[int, float]] = (),
        saved: Mapping[str, Any] | None = None,
    ) -> None:
        self.rule = rule
        self.best_loss = math.inf
        self.best_traces = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.since_best = 0
        self.stopped = False
        if saved:
            self.best_loss = float(saved["best_loss"])
            self.best_traces = int(saved["best_traces"])
            self.best_state = dict(saved["state_dict"])
            self.since_best = sum(1 for t, _ in history if t > self.best_traces)
        self.stopped = self.since_best >= rule.patience

    def update(self, network: torch.nn.Module, traces: int, loss: float) -> bool:
        """Record a validation; return whether training should stop now."""
        if math.isfinite(loss) and loss < self.best_loss - self.rule.min_delta:
            self.best_loss, self.best_traces, self.since_best = loss, traces, 0
            if self.rule.restore_best:
                self.best_state = {
                    k: v.detach().cpu().clone() for k, v in network.state_dict().items()
                }
        else:
            self.since_best += 1
        self.stopped = self.since_best >= self.rule.patience
        return self.stopped

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of this run's early stopping (loadable weights-only)."""
        return {
            "best_loss": self.best_loss,
            "best_traces": self.best_traces,
            "state_dict": self.best_state or {},
        }

    def restore(self, network: torch.nn.Module) -> None:
        """Load the best validation's weights into ``network`` (if ``restore_best``).

        Address layers created after that validation keep their current weights.
        """
        if self.rule.restore_best and self.best_state:
            network.load_state_dict(self.best_state, strict=False)
