"""Training on a fixed simulation budget: N simulations, as many epochs as help.

Simulation-based-inference users usually have a budget of simulator runs, not of training
steps. Online training uses each simulation once; on a budget it pays to go over the same
simulations for many epochs, and to stop when a held-out validation loss stops improving
(then keep the network of the best epoch). :func:`train_on_dataset` does that on a
:class:`~rotalumis.data.TraceDataset` (the last shard held out unless a validation dataset is
given); :func:`simulate_dataset` writes the N simulations with the held-out share as its
last shard; :func:`train_on_simulations` does both.

Example:
    >>> from rotalumis.nn import BudgetConfig, train_on_simulations
    >>> config = BudgetConfig(patience=20)
    >>> result = train_on_simulations(model, 10_000, "sims/", config=config)  # doctest: +SKIP
    >>> result.network.save("net.pt"); result.stopped_early  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rotalumis.core import DatasetError, Model
from rotalumis.data import TraceDataset

from .early_stopping import EarlyStopping
from .network import InferenceNetwork
from .training import (
    DistributedConfig,
    NetworkOptions,
    RunOptions,
    TrainingConfig,
    TrainingResult,
    TrainingSource,
    train_network,
)

__all__ = ["BudgetConfig", "simulate_dataset", "train_on_dataset", "train_on_simulations"]


@dataclass(frozen=True)
class BudgetConfig:
    """How to train on a fixed set of simulations (frozen, validated).

    Attributes:
        max_epochs: Upper bound on epochs (early stopping usually ends training first).
        patience: Epochs without a better validation loss that end training.
        batch_size: Traces per step.
        learning_rate: Adam learning rate (constant).
        valid_fraction: Share of the simulations held out for validation
            (:func:`simulate_dataset`).
        grad_clip: Maximum gradient norm (``None``: no clipping).
        seed: Seed of the shuffling and the initial weights (and of the simulations in
            :func:`train_on_simulations`).
        in_memory: Decode the dataset once and train from memory (faster for a dataset
            that fits in memory: no reading and decoding every epoch; other batches than
            streaming, so another run). One process only.
    """

    max_epochs: int = 500
    patience: int = 20
    batch_size: int = 200
    learning_rate: float = 5e-4
    valid_fraction: float = 0.1
    grad_clip: float | None = 5.0
    seed: int = 0
    in_memory: bool = False

    def __post_init__(self) -> None:
        for name in ("max_epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BudgetConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(
                f"BudgetConfig.valid_fraction must be in (0, 1), got {self.valid_fraction!r}"
            )
        if not self.learning_rate > 0:
            raise ValueError("BudgetConfig.learning_rate must be positive")


def simulate_dataset(
    model: Model,
    directory: str | os.PathLike[str],
    num_simulations: int,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    workers: int = 0,
    model_args: tuple[Any, ...] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> TraceDataset:
    """Simulate ``num_simulations`` prior traces into ``directory`` (resumable).

    Shards hold ``ceil(num_simulations * valid_fraction)`` traces each, so the last shard
    (what :func:`train_on_dataset` holds out) is about ``valid_fraction`` of them.
    """
    if isinstance(num_simulations, bool) or not isinstance(num_simulations, int):
        raise ValueError(f"num_simulations must be an integer, got {num_simulations!r}")
    if num_simulations < 2:
        raise ValueError(
            f"num_simulations must be >= 2 (training and validation), got {num_simulations}"
        )
    per_shard = max(1, math.ceil(num_simulations * valid_fraction))
    return TraceDataset.generate(
        model,
        directory,
        num_simulations,
        seed=seed,
        traces_per_shard=min(per_shard, num_simulations - 1),
        model_args=model_args,
        on_progress=on_progress,
        workers=workers,
    )


def train_on_dataset(
    dataset: TraceDataset,
    *,
    valid_dataset: TraceDataset | None = None,
    config: BudgetConfig | None = None,
    network: InferenceNetwork | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    embeddings: Mapping[str, Any] | None = None,
    network_sizes: Mapping[str, Any] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    fresh: bool = False,
    distributed: DistributedConfig | None = None,
) -> TrainingResult:
    """Train for epochs over ``dataset`` until the validation loss stops improving.

    Validates once per epoch on ``valid_dataset`` (default: ``dataset``'s last shard, which
    is then not trained on), stops after ``config.patience`` epochs without improvement or
    ``config.max_epochs``, and returns the network of the best epoch. ``checkpoint`` makes
    the run resumable (it is rewritten every epoch; a checkpoint written with other settings
    is an error unless ``fresh``, which starts afresh). Under ``torchrun``/``srun`` with
    several processes it trains data-parallel (``distributed``; default: the learning rate
    scaled linearly with the number of processes, warmed up over the first 5 epochs).

    Raises:
        DatasetError: if there is nothing to validate on (one shard and no
            ``valid_dataset``) or no readable trace.
    """
    config = config or BudgetConfig()
    train = dataset
    if valid_dataset is None:
        if len(dataset.shard_indices) < 2:
            raise DatasetError(
                f"trace dataset {dataset.directory} has one shard: nothing to hold out for "
                "validation; give valid_dataset= or write it in several shards"
            )
        train, valid_dataset = dataset.split(1)
    n_train = len(train)
    if n_train == 0 or len(valid_dataset) == 0:
        raise DatasetError(f"trace dataset {dataset.directory} has no readable traces to train on")
    training = TrainingConfig(
        num_traces=config.max_epochs * n_train,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        schedule="constant",
        grad_clip=config.grad_clip,
        valid_size=len(valid_dataset),
        valid_every=n_train,
        checkpoint_every=n_train,
        seed=config.seed,
    )
    return train_network(
        network,
        config=training,
        source=TrainingSource(
            dataset=train, valid_dataset=valid_dataset, in_memory=config.in_memory
        ),
        run=RunOptions(
            checkpoint=checkpoint,
            fresh=fresh,
            device=device,
            on_step=on_step,
            early_stopping=EarlyStopping(patience=config.patience),
        ),
        network_options=NetworkOptions(embeddings, network_sizes),
        distributed=distributed or DistributedConfig(warmup_traces=5 * n_train),
    )


def train_on_simulations(
    model: Model,
    num_simulations: int,
    directory: str | os.PathLike[str],
    *,
    config: BudgetConfig | None = None,
    workers: int = 0,
    **options: Any,
) -> TrainingResult:
    """:func:`simulate_dataset` then :func:`train_on_dataset` (``options`` go to the latter)."""
    config = config or BudgetConfig()
    ds = simulate_dataset(
        model,
        directory,
        num_simulations,
        valid_fraction=config.valid_fraction,
        seed=config.seed,
        workers=workers,
    )
    return train_on_dataset(ds, config=config, **options)
