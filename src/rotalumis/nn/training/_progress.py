"""A training run's counters (saved in checkpoints) and its result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotalumis.core.validity import SimulationCounter

from ..network import InferenceNetwork

__all__ = ["MAX_HISTORY", "Progress", "TrainingResult"]

MAX_HISTORY = 20_000  # loss-history points kept (an even number; saved in checkpoints)


@dataclass
class TrainingResult:
    """What a training run did.

    Attributes:
        network: The trained network.
        traces: Training traces seen in total (including before a resume).
        steps: Optimizer steps in total.
        seconds: Wall time of this run (not counting earlier runs).
        traces_per_second: Training throughput of this run (all processes together).
        loss: ``(traces, training loss)`` per step (all runs: a resumed run continues the
            history saved in its checkpoint); runs of more than ``MAX_HISTORY`` steps keep
            means of consecutive steps instead (at most ``MAX_HISTORY`` points).
        valid_loss: ``(traces, validation loss)`` pairs (all runs).
        simulations: Online: simulator runs made and invalid ones dropped (all runs; under
            ``torch.distributed``, this process's).
        skipped_steps: Steps whose loss was NaN/inf (not applied to the network).
        resumed_traces: Training traces the resumed checkpoint already held (0: a new run).
        stopped_early: Whether ``early_stopping`` ended training before the budget.
        best_valid_loss: ``(traces, loss)`` of the best validation, with ``early_stopping``
            (the network returned is that one's when the rule restores the best).
        world_size: Processes that trained together (``torch.distributed``; 1: alone).
        unseen_addresses: Under ``torch.distributed``: addresses met in training batches
            that had no layers (not registered up front) -> visits left untrained.
    """

    network: InferenceNetwork
    traces: int
    steps: int
    seconds: float
    traces_per_second: float
    loss: list[tuple[int, float]] = field(default_factory=list)
    valid_loss: list[tuple[int, float]] = field(default_factory=list)
    simulations: SimulationCounter = field(default_factory=SimulationCounter)
    skipped_steps: int = 0
    resumed_traces: int = 0
    stopped_early: bool = False
    best_valid_loss: tuple[int, float] | None = None
    world_size: int = 1
    unseen_addresses: dict[str, int] = field(default_factory=dict)


class Progress:
    """Counters saved in checkpoints."""

    def __init__(self, d: Mapping[str, Any] | None = None) -> None:
        d = d or {}
        self.traces = int(d.get("traces", 0))
        self.steps = int(d.get("steps", 0))
        self.epoch = int(d.get("epoch", 0))
        self.epoch_batches = int(d.get("epoch_batches", 0))
        self.valid_loss = [tuple(x) for x in d.get("valid_loss", [])]
        self.loss = [tuple(x) for x in d.get("loss", [])]
        self.loss_stride = int(d.get("loss_stride", 1))
        self.loss_pending = [float(x) for x in d.get("loss_pending", [0.0, 0.0])]
        self.simulations = SimulationCounter.from_dict(d.get("simulations", {}))
        self.skipped_steps = int(d.get("skipped_steps", 0))

    def add_loss(self, traces: int, value: float) -> None:
        """Record a step's loss. Each point is the mean of ``loss_stride`` steps (at the
        last of them); when ``MAX_HISTORY`` points are reached, neighbours merge and the
        stride doubles, so a long run's history stays small and evenly spaced."""
        pending = self.loss_pending
        pending[0] += value
        pending[1] += 1
        if pending[1] < self.loss_stride:
            return
        self.loss.append((traces, pending[0] / pending[1]))
        self.loss_pending = [0.0, 0.0]
        if len(self.loss) >= MAX_HISTORY:
            pairs = zip(self.loss[0::2], self.loss[1::2], strict=True)
            self.loss = [(b[0], 0.5 * (a[1] + b[1])) for a, b in pairs]
            self.loss_stride *= 2

    def loss_history(self) -> list[tuple[int, float]]:
        """The points, and the mean of the steps not yet making a full point."""
        out = [(int(a), float(b)) for a, b in self.loss]
        total, n = self.loss_pending
        if n:
            out.append((self.traces, total / n))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what checkpoints hold)."""
        return {
            "traces": self.traces,
            "steps": self.steps,
            "epoch": self.epoch,
            "epoch_batches": self.epoch_batches,
            "valid_loss": [list(x) for x in self.valid_loss],
            "loss": [list(x) for x in self.loss],
            "loss_stride": self.loss_stride,
            "loss_pending": list(self.loss_pending),
            "simulations": self.simulations.to_dict(),
            "skipped_steps": self.skipped_steps,
        }
