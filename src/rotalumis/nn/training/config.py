"""The typed settings of :func:`~.loop.train_network`, one frozen dataclass per concern.

* :class:`TrainingConfig` — what is trained and how (budget, batch, learning rate, ...);
  saved in checkpoints, part of a run's identity;
* :class:`TrainingSource` — where the traces come from (a model online, or a dataset);
* :class:`NetworkOptions` — the architecture of a network created for the run;
* :class:`RunOptions` — how this process runs it (checkpoint file, device, callbacks);
* :class:`DistributedConfig` — learning-rate scaling and address registration under
  ``torch.distributed`` (used only when the run has several processes).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from rotalumis.core import Model
from rotalumis.core.validity import InvalidPolicy
from rotalumis.data import TraceDataset
from rotalumis.distributed import check_executor

from ..early_stopping import EarlyStopping

__all__ = [
    "SCHEDULES",
    "DistributedConfig",
    "NetworkOptions",
    "RunOptions",
    "TrainingConfig",
    "TrainingSource",
]

SCHEDULES = ("constant", "cosine", "exponential")
LR_SCALINGS = ("linear", "sqrt", "none")


def _positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train (frozen, validated).

    Attributes:
        num_traces: Training traces in total (the budget; all processes together).
        batch_size: Traces per step (per process under ``torch.distributed``).
        learning_rate: Initial Adam learning rate.
        final_learning_rate: Learning rate at the end of a ``cosine``/``exponential`` schedule.
        schedule: ``"constant"``, ``"cosine"`` or ``"exponential"`` (over ``num_traces``).
        weight_decay: Adam weight decay.
        grad_clip: Maximum gradient norm (``None``: no clipping).
        valid_size: Validation traces (``0``: no validation).
        valid_every: Validate every this many training traces.
        checkpoint_every: Write the checkpoint every this many training traces.
        seed: Seed of simulations, shuffling and initial weights.
        on_invalid: Online: ``"drop"`` simulations that raise or produce NaN/inf (counted
            in :attr:`TrainingResult.simulations`) or ``"raise"`` at the first one.
        max_invalid_fraction: Online, ``"drop"``: fail when a larger share of a batch's
            runs is invalid (see :mod:`rotalumis.core.validity`).
    """

    num_traces: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0
    valid_size: int = 256
    valid_every: int = 10_000
    checkpoint_every: int = 50_000
    seed: int = 0
    on_invalid: str = "drop"
    max_invalid_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("num_traces", "batch_size", "valid_every", "checkpoint_every"):
            _positive_int("TrainingConfig", name, getattr(self, name))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainingConfig.schedule must be one of {SCHEDULES}")
        if not (self.learning_rate > 0 and self.final_learning_rate > 0):
            raise ValueError("learning rates must be positive")
        if self.valid_size < 0:
            raise ValueError("TrainingConfig.valid_size must be >= 0")
        self.invalid_policy()  # validates on_invalid and max_invalid_fraction

    def invalid_policy(self) -> InvalidPolicy:
        """The :class:`~rotalumis.core.validity.InvalidPolicy` of online simulations."""
        return InvalidPolicy(self.on_invalid, self.max_invalid_fraction)

    def learning_rate_at(self, traces: int) -> float:
        """The learning rate after ``traces`` training traces."""
        frac = min(max(traces / self.num_traces, 0.0), 1.0)
        lr0, lr1 = self.learning_rate, self.final_learning_rate
        if self.schedule == "cosine":
            return lr1 + 0.5 * (lr0 - lr1) * (1.0 + math.cos(math.pi * frac))
        if self.schedule == "exponential":
            return float(lr0 * (lr1 / lr0) ** frac)
        return lr0


@dataclass(frozen=True)
class TrainingSource:
    """Where the training traces come from: exactly one of ``model`` or ``dataset``.

    Attributes:
        model: Simulator for online training (fresh prior simulations every step).
        dataset: Trace dataset for offline training.
        valid_dataset: Validation traces for offline training (online: simulated).
        model_args: Arguments of ``model.forward``.
        workers: Online training: simulate the batches in this many worker processes, ahead
            of the training step (``0``: in this process, between steps). The batches, and
            so the trained network, are the same for any number of workers.
        in_memory: Offline training: decode ``dataset`` once and cut every step's batch out
            of it in memory, instead of reading and decoding it again each epoch (faster
            for a dataset that fits in memory; other batches than streaming, so another
            run; one process only).
        cluster: Online training: simulate the batches on a Dask cluster instead (what
            :func:`rotalumis.distributed.open_executor` takes: a ``DaskExecutor``, a
            ``Client``, a scheduler address or ``"local:N"``), ahead of the training
            step; the same batches, so the same network, as with ``workers``.

    Raises:
        ValueError: unless exactly one of ``model`` and ``dataset`` is given, or for a bad
            ``workers``.
    """

    model: Model | None = None
    dataset: TraceDataset | None = None
    valid_dataset: TraceDataset | None = None
    model_args: tuple[Any, ...] = ()
    workers: int = 0
    in_memory: bool = False
    cluster: Any = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give exactly one of model= (online) or dataset= (offline training)")
        if self.in_memory and self.dataset is None:
            raise ValueError("in_memory=True is for offline training: give dataset=")
        check_executor(self.model, self.workers, self.cluster)


@dataclass(frozen=True)
class NetworkOptions:
    """The architecture of a network the run creates (``train_network(network=None)``).

    Attributes:
        embeddings: Observation embeddings (see :meth:`InferenceNetwork.for_batch`).
        sizes: Other :class:`~rotalumis.nn.NetworkConfig` fields.
    """

    embeddings: Mapping[str, Any] | None = None
    sizes: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunOptions:
    """How this process runs the training (none of it changes what is trained).

    Attributes:
        checkpoint: Checkpoint file (resumed if it exists; under ``torch.distributed``
            written by rank 0 and read by every rank, so on a shared file system).
        fresh: Start afresh even if ``checkpoint`` exists (it is overwritten).
        device: ``"cpu"``, ``"cuda"``, ... (default: CPU; under ``torch.distributed``
            ``"cuda"`` means each process's local GPU).
        on_step: Called as ``on_step(traces, total, loss)`` after each step (on every
            rank; the loss is the step's mean over all ranks).
        early_stopping: Stop once the validation loss has not improved for this rule's
            ``patience`` validations, and return the best validation's network (needs
            validation traces; see :mod:`~rotalumis.nn.early_stopping`).
    """

    checkpoint: str | os.PathLike[str] | None = None
    fresh: bool = False
    device: str | torch.device | None = None
    on_step: Callable[[int, int, float], None] | None = field(default=None, compare=False)
    early_stopping: EarlyStopping | None = None


@dataclass(frozen=True)
class DistributedConfig:
    """Data-parallel training settings (used only when the run has several processes).

    Each process trains on ``TrainingConfig.batch_size`` traces per step, so a step of
    ``W`` processes sees ``W`` times as many traces as a step of one; the learning rate is
    scaled up accordingly (``"linear"``: ``W`` times, ``"sqrt"``: ``sqrt(W)`` times,
    ``"none"``), ramped linearly from the single-process rate over ``warmup_traces``.

    Attributes:
        lr_scaling: ``"linear"``, ``"sqrt"`` or ``"none"``.
        warmup_traces: Training traces over which the scaled rate is reached (``None``: 5%
            of ``TrainingConfig.num_traces``).
        register_traces: Online training: prior traces simulated before training to create
            the layers of every address they visit (addresses first met later are not
            trained: their visits keep the prior as proposal). Offline, the dataset's
            addresses are all registered from the dataset itself.
        backend: ``torch.distributed`` backend when this run creates the process group
            (``None``: ``"nccl"`` on CUDA, ``"gloo"`` otherwise).
    """

    lr_scaling: str = "linear"
    warmup_traces: int | None = None
    register_traces: int = 1000
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"DistributedConfig.lr_scaling must be one of {LR_SCALINGS}")
        if self.warmup_traces is not None and (
            isinstance(self.warmup_traces, bool)
            or not isinstance(self.warmup_traces, int)
            or self.warmup_traces < 0
        ):
            raise ValueError(
                f"DistributedConfig.warmup_traces must be a non-negative integer or None, "
                f"got {self.warmup_traces!r}"
            )
        _positive_int("DistributedConfig", "register_traces", self.register_traces)

    def lr_factor(self, world_size: int, traces: int, num_traces: int) -> float:
        """The factor on the learning rate after ``traces`` traces with ``world_size``
        processes (``1`` for one process)."""
        target = {"linear": float(world_size), "sqrt": math.sqrt(world_size), "none": 1.0}
        top = target[self.lr_scaling]
        warmup = self.warmup_traces if self.warmup_traces is not None else num_traces // 20
        if top == 1.0 or traces >= warmup:
            return top
        return 1.0 + (top - 1.0) * traces / warmup

    def identity(self, world_size: int) -> dict[str, Any]:
        """What of these settings shapes the trained network (saved in checkpoints)."""
        return {
            "world_size": world_size,
            "lr_scaling": self.lr_scaling,
            "warmup_traces": self.warmup_traces,
        }
