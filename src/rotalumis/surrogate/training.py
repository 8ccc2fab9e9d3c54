"""Training a surrogate on prior traces: simulated from the model, or read from a dataset."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rotalumis.core import RNG, Model, TraceHandler
from rotalumis.data import TraceDataset
from rotalumis.nn import EarlyStopping
from rotalumis.nn.early_stopping import Stopper

from ._sequence import SiteFilter, Step, steps_of_row, steps_of_trace
from .model import SurrogateModel
from .network import SurrogateConfig, SurrogateNetwork

__all__ = ["SurrogateTraining", "TrainedSurrogate", "simulate_steps", "train_surrogate"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class SurrogateTraining:
    """How a surrogate is trained (frozen, self-validating).

    Attributes:
        num_traces: Prior traces simulated from the model (ignored for a dataset: all of
            its traces are used).
        epochs: Passes over the traces.
        batch_size: Traces per gradient step.
        learning_rate: Adam's initial learning rate (decays linearly to 2% of it). Use
            ``3e-3`` for long trainings where observations depend on values drawn several
            sites earlier: at ``1e-2`` the SIR surrogate's LSTM state saturated within a
            few hundred steps and its weekly cases ignored ``beta``.
        seed: Seed of the simulations and of the batch order.
        validation_traces: Prior traces held out (simulated with another seed, or the
            last ones of a dataset): after every epoch their mean ``-log q(trace)`` is
            recorded (``TrainedSurrogate.validation``) and the weights of the epoch with
            the lowest are kept. ``0``: none (the last epoch's weights).
    """

    num_traces: int = 10_000
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-2
    seed: int = 0
    validation_traces: int = 0

    def __post_init__(self) -> None:
        for name in ("num_traces", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SurrogateTraining.{name} must be a positive integer")
        v = self.validation_traces
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError("SurrogateTraining.validation_traces must be an integer >= 0")
        if not (isinstance(self.learning_rate, float) and 0 < self.learning_rate < 1):
            raise ValueError("SurrogateTraining.learning_rate must be a float in (0, 1)")


@dataclass
class TrainedSurrogate:
    """What :func:`train_surrogate` returns.

    Attributes:
        model: The :class:`SurrogateModel` (with the simulator for fallbacks, if trained
            from one).
        traces: Simulator traces spent: trained on, plus the held-out ones.
        simulation_seconds: Wall time spent simulating them.
        training_seconds: Wall time spent on gradient steps.
        losses: ``(step, loss)`` per gradient step.
        validation: ``(epoch, mean -log q)`` of the held-out traces after each epoch
            (empty without ``validation_traces``).
        best_epoch: The epoch whose weights were kept (the last without validation).
    """

    model: SurrogateModel
    traces: int
    simulation_seconds: float
    training_seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def network(self) -> SurrogateNetwork:
        """The trained network."""
        return self.model.network


def simulate_steps(
    model: Model,
    num_traces: int,
    seed: int,
    sites: SiteFilter | None = None,
    model_args: tuple[Any, ...] = (),
) -> list[list[Step]]:
    """``num_traces`` prior traces of ``model`` (reproducible from ``seed``) as sequences."""
    sites = sites or SiteFilter()
    tracer = TraceHandler()
    out = []
    with tracer, model.executions(RNG(seed)) as execute:
        for _ in range(num_traces):
            trace = tracer.reset()
            trace.result = execute(*model_args)
            out.append(steps_of_trace(trace, sites))
    return out


def _dataset_steps(dataset: TraceDataset, sites: SiteFilter) -> list[list[Step]]:
    return [steps_of_row(row, sites) for row in dataset.iter_traces()]


def _batches(
    sequences: Sequence[list[Step]], size: int, epochs: int, seed: int
) -> Iterator[list[list[Step]]]:
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(sequences), generator=g).tolist()
        for i in range(0, len(order), size):
            yield [sequences[j] for j in order[i : i + size]]


def train_surrogate(
    source: Model | TraceDataset | str | os.PathLike[str],
    config: SurrogateConfig | None = None,
    training: SurrogateTraining | None = None,
    *,
    network: SurrogateNetwork | None = None,
    model_args: tuple[Any, ...] = (),
    progress: Progress | None = None,
) -> TrainedSurrogate:
    """Train a surrogate of a model on its prior traces.

    Args:
        source: The model (its traces are simulated, a remote PPX model included), or a
            :class:`~rotalumis.data.TraceDataset` (or its directory) of its prior traces.
        config: Network sizes and choices (default :class:`SurrogateConfig`); ignored when
            ``network`` continues training an existing surrogate.
        training: Budget and optimiser (default :class:`SurrogateTraining`).
        network: A surrogate network to train further (its addresses grow as needed).
        model_args: Arguments of the model's ``forward``.
        progress: ``progress(step, steps, loss)`` after each gradient step.

    Returns:
        A :class:`TrainedSurrogate`; its ``model`` runs without the simulator and falls
        back to it (when trained from a model) on an "unknown" prediction.

    Example:
        >>> from rotalumis.models import Branching
        >>> trained = train_surrogate(Branching(), training=SurrogateTraining(num_traces=500))
        >>> trained.model.prior(10, seed=0)  # doctest: +SKIP
    """
    training = training or SurrogateTraining()
    # the initial weights come from the training seed, not from torch's global stream
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training.seed)
        return _train(source, config, training, network, model_args, progress)


def _train(
    source: Model | TraceDataset | str | os.PathLike[str],
    config: SurrogateConfig | None,
    training: SurrogateTraining,
    network: SurrogateNetwork | None,
    model_args: tuple[Any, ...],
    progress: Progress | None,
) -> TrainedSurrogate:
    net = network or SurrogateNetwork(config or SurrogateConfig())
    sites = SiteFilter(net.config.sites)
    start = time.perf_counter()
    simulator: Model | None = None
    held = training.validation_traces
    if isinstance(source, Model):
        simulator = source
        sequences = simulate_steps(source, training.num_traces, training.seed, sites, model_args)
        # another seed: the held-out traces are independent of the training traces
        valid = simulate_steps(source, held, training.seed + 7919, sites, model_args)
        net.model_name = net.model_name or source.name
    else:
        dataset = source if isinstance(source, TraceDataset) else TraceDataset(Path(source))
        sequences = _dataset_steps(dataset, sites)
        if held and held >= len(sequences):
            raise ValueError(
                f"train_surrogate: validation_traces={held} leaves no training traces "
                f"(the dataset has {len(sequences)})"
            )
        sequences, valid = sequences[: len(sequences) - held], sequences[len(sequences) - held :]
        net.model_name = net.model_name or dataset.manifest.get("model")
    if not sequences:
        raise ValueError("train_surrogate: no traces to train on")
    simulated = time.perf_counter()
    net.traces_seen += len(sequences)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=training.learning_rate)
    per_epoch = math.ceil(len(sequences) / training.batch_size)
    steps = training.epochs * per_epoch
    losses: list[tuple[int, float]] = []
    validation: list[tuple[int, float]] = []
    # keeps the best epoch's weights (validations are keyed by epoch); never stops early
    best = Stopper(EarlyStopping(patience=training.epochs))
    seed = training.seed + 1
    for step, batch in enumerate(_batches(sequences, training.batch_size, training.epochs, seed)):
        new = net.add_sites(batch) if step < steps else []
        if new:
            optimizer.add_param_group({"params": [p for s in new for p in s.parameters()]})
        lr = training.learning_rate * (1.0 - 0.98 * step / max(steps - 1, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = net.loss(batch)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        optimizer.step()
        value = float(loss.detach())
        losses.append((step, value))
        if progress is not None:
            progress(step + 1, steps, value)
        if valid and (step + 1) % per_epoch == 0:
            epoch = (step + 1) // per_epoch
            validation.append((epoch, _held_out_loss(net, valid)))
            best.update(net, epoch, validation[-1][1])
    best.restore(net)
    net.eval()
    done = time.perf_counter()
    log.info("surrogate trained on %d traces (%d steps)", len(sequences), steps)
    return TrainedSurrogate(
        SurrogateModel(net, simulator),
        len(sequences) + len(valid),
        simulated - start,
        done - simulated,
        losses,
        validation,
        best.best_traces if best.best_traces >= 1 else training.epochs,  # -1: none finite
    )


def _held_out_loss(net: SurrogateNetwork, sequences: Sequence[list[Step]]) -> float:
    """Mean ``-log q(trace)`` of ``sequences`` (evaluation mode, no gradients)."""
    net.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(sequences), 1024):
            chunk = sequences[i : i + 1024]
            total += float(net.loss(chunk)) * len(chunk)
    net.train()
    return total / len(sequences)
