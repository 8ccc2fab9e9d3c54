"""Training an :class:`~.network.InferenceNetwork`: online (fresh simulations) or offline.

Online, batch ``i`` is simulated from the stream ``derive_seed(seed, "train", i)``; offline,
epoch ``e`` streams a :class:`~rotalumis.data.TraceDataset` shuffled with
``derive_seed(seed, "epoch", e)`` in batches grouped by trace type. A batch may still mix
trace types: the network evaluates each address's layers once over all its visits in the
batch, which is what per-trace-type sub-batches are for, without their small-batch cost.
Both sources are exactly reproducible, and a run resumed from a checkpoint continues with
the very batches it would have seen. Adam with a
learning rate set from the number of traces seen (constant, cosine or exponential decay),
gradient clipping, a validation loss on a fixed set of traces, and atomic checkpoints
(network, optimizer and progress, loadable with ``weights_only=True``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rotalumis.core import RNG, DatasetError, Model, TraceHandler
from rotalumis.core.errors import CheckpointError
from rotalumis.core.files import atomic_write
from rotalumis.core.parallel import check_parallel
from rotalumis.core.rng import derive_seed
from rotalumis.core.validity import InvalidPolicy, SimulationCounter, simulate_valid
from rotalumis.data import TraceBatch, TraceDataset

from ._checkpoint import check_resume, run_identity, training_device
from .early_stopping import EarlyStopping, Stopper
from .network import InferenceNetwork

__all__ = ["TrainingConfig", "TrainingResult", "simulate_batch", "train_network"]

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine", "exponential")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train (frozen, validated).

    Attributes:
        num_traces: Training traces in total (the budget).
        batch_size: Traces per step.
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainingConfig.{name} must be a positive integer, got {value!r}")
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


MAX_HISTORY = 20_000  # loss-history points kept (an even number; saved in checkpoints)


@dataclass
class TrainingResult:
    """What a training run did.

    Attributes:
        network: The trained network.
        traces: Training traces seen in total (including before a resume).
        steps: Optimizer steps in total.
        seconds: Wall time of this run (not counting earlier runs).
        traces_per_second: Training throughput of this run.
        loss: ``(traces, training loss)`` per step (all runs: a resumed run continues the
            history saved in its checkpoint); runs of more than ``MAX_HISTORY`` steps keep
            means of consecutive steps instead (at most ``MAX_HISTORY`` points).
        valid_loss: ``(traces, validation loss)`` pairs (all runs).
        simulations: Online: simulator runs made and invalid ones dropped (all runs).
        skipped_steps: Steps whose loss was NaN/inf (not applied to the network).
        resumed_traces: Training traces the resumed checkpoint already held (0: a new run).
        stopped_early: Whether ``early_stopping`` ended training before the budget.
        best_valid_loss: ``(traces, loss)`` of the best validation, with ``early_stopping``
            (the network returned is that one's when the rule restores the best).
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


def simulate_batch(
    model: Model,
    size: int,
    seed: int,
    model_args: tuple[Any, ...] = (),
    policy: InvalidPolicy | None = None,
    label: str | None = None,
) -> TraceBatch:
    """Simulate ``size`` valid prior traces of ``model`` (reproducibly from ``seed``) as a batch.

    Runs that raise or produce NaN/inf are dropped and counted in ``batch.simulations``
    (``policy``, default :class:`~rotalumis.core.validity.InvalidPolicy`: drop). ``label``
    says which batch it is when a simulation fails (default: the batch simulated with
    ``seed``).
    """
    rng = RNG(seed)
    tracer = TraceHandler()
    counter = SimulationCounter()
    label = label or f"the batch simulated with seed {seed}"

    def where(k: int) -> str:
        return f"trace {k} of {label}"

    with tracer, model.executions(rng, where) as execute:
        traces = simulate_valid(
            execute, tracer, size, policy or InvalidPolicy(), counter, model_args
        )
    batch = TraceBatch.from_traces(traces)
    batch.simulations = counter
    return batch


class _Progress:
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


class _SimulatedBatches(torch.utils.data.Dataset[TraceBatch]):
    """Online batch ``i`` (a map-style dataset, so worker processes can simulate it)."""

    def __init__(
        self,
        model: Model,
        batch_size: int,
        seed: int,
        model_args: tuple[Any, ...],
        policy: InvalidPolicy | None = None,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.seed = seed
        self.model_args = model_args
        self.policy = policy

    def __getitem__(self, i: int) -> TraceBatch:
        seed = derive_seed(self.seed, "train", i)
        try:
            label = f"training batch {i} of the run with seed {self.seed}"
            return simulate_batch(
                self.model, self.batch_size, seed, self.model_args, self.policy, label
            )
        except Exception as exc:
            if torch.utils.data.get_worker_info() is None:
                raise
            # in a worker: hand the error itself back (the DataLoader would raise a copy
            # whose message holds the worker's traceback)
            return exc  # type: ignore[return-value]


def _simulation_worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers simulate; the training process keeps the cores


def _online_batches(
    model: Model, config: TrainingConfig, start: int, model_args: tuple[Any, ...], workers: int
) -> Generator[TraceBatch, None, None]:
    source = _SimulatedBatches(
        model, config.batch_size, config.seed, model_args, config.invalid_policy()
    )
    if workers == 0:
        for i in itertools.count(start):
            yield source[i]
        return
    methods = multiprocessing.get_all_start_methods()
    # fork: the model reaches the workers without pickling (as DataLoader does on Linux)
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    loader = torch.utils.data.DataLoader(
        source,
        batch_size=None,  # each item already is a batch
        sampler=itertools.count(start),  # in order: the same batches as without workers
        num_workers=workers,
        multiprocessing_context=context,
        worker_init_fn=_simulation_worker_init,
        prefetch_factor=2,
        # its worker seeds come from this generator, not torch's global one (which seeds the
        # network's initial weights); simulations use their own seeded streams anyway
        generator=torch.Generator().manual_seed(derive_seed(config.seed, "workers")),
    )
    for batch in loader:
        if isinstance(batch, Exception):  # a simulation failed in a worker
            raise batch
        yield batch


def _batches(
    model: Model | None,
    dataset: TraceDataset | None,
    config: TrainingConfig,
    progress: _Progress,
    model_args: tuple[Any, ...],
    workers: int = 0,
) -> Generator[TraceBatch, None, None]:
    if model is not None:
        yield from _online_batches(model, config, progress.steps, model_args, workers)
        return
    assert dataset is not None
    if len(dataset) == 0:
        raise DatasetError(f"trace dataset {dataset.directory} has no readable traces")
    skip = progress.epoch_batches
    while True:
        seed = derive_seed(config.seed, "epoch", progress.epoch)
        for n, batch in enumerate(dataset.iter_batches(config.batch_size, seed=seed)):
            if n < skip:
                continue
            progress.epoch_batches = n + 1
            yield batch
        skip = 0
        progress.epoch += 1
        progress.epoch_batches = 0


def _validation_set(
    model: Model | None,
    valid_dataset: TraceDataset | None,
    config: TrainingConfig,
    model_args: tuple[Any, ...],
) -> list[TraceBatch]:
    if config.valid_size == 0:
        return []
    if valid_dataset is not None:
        out: list[TraceBatch] = []
        seen = 0
        for batch in valid_dataset.iter_batches(config.batch_size, shuffle=False):
            out.append(batch)
            seen += batch.size
            if seen >= config.valid_size:
                break
        return out
    if model is None:
        return []
    out = []
    for i in range(0, config.valid_size, config.batch_size):
        size = min(config.batch_size, config.valid_size - i)
        label = f"validation traces {i}.. of the run with seed {config.seed}"
        seed = derive_seed(config.seed, "valid", i)
        out.append(simulate_batch(model, size, seed, model_args, config.invalid_policy(), label))
    return out


def _validate(network: InferenceNetwork, batches: list[TraceBatch]) -> float:
    network.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            total += float(network.loss(batch)) * batch.size
            n += batch.size
    network.train()
    return total / max(n, 1)


def _optimizer(network: InferenceNetwork, config: TrainingConfig) -> torch.optim.Adam:
    """Adam over one parameter group: the core, then each address's layers in creation order
    (new addresses append to it, so a checkpoint's optimizer state lines up on resume)."""
    params = [p for n, p in network.named_parameters() if not n.startswith("sites.")]
    for i in range(len(network.specs)):
        params += list(network.sites[f"site{i}"].parameters())
    fused = params[0].device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


def _add_to_optimizer(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> None:
    optimizer.param_groups[0]["params"].extend(params)


def _save_checkpoint(
    path: Path,
    network: InferenceNetwork,
    optimizer: torch.optim.Optimizer,
    config: TrainingConfig,
    progress: _Progress,
    identity: dict[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> None:
    payload = {
        "format": "rotalumis-ic-checkpoint",
        "network": network.payload(),
        "optimizer": optimizer.state_dict(),
        "training_config": json.dumps(asdict(config)),
        "progress": json.dumps(progress.to_dict()),
        "identity": json.dumps(identity, sort_keys=True),
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:  # unpredictable temporary name, never through a symlink
        torch.save(payload, fh)


def train_network(
    network: InferenceNetwork | None = None,
    *,
    model: Model | None = None,
    dataset: TraceDataset | None = None,
    valid_dataset: TraceDataset | None = None,
    config: TrainingConfig,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    embeddings: Mapping[str, Any] | None = None,
    network_sizes: Mapping[str, Any] | None = None,
    model_args: tuple[Any, ...] = (),
    on_step: Callable[[int, int, float], None] | None = None,
    workers: int = 0,
    fresh: bool = False,
    early_stopping: EarlyStopping | None = None,
) -> TrainingResult:
    """Train (or continue training) an inference network.

    Give exactly one source: ``model`` (online: fresh prior simulations every step) or
    ``dataset`` (offline). With ``checkpoint``, an existing checkpoint file is resumed
    (network, optimizer, progress) and the checkpoint is rewritten every
    ``config.checkpoint_every`` traces and at the end. A checkpoint records what its run
    trains (hyper-parameters, seed, model or dataset; see :mod:`._checkpoint`) and its
    network: resuming it with other settings or another architecture is an error (the
    architecture options left unset take the checkpoint's), and a larger
    ``config.num_traces`` continues the same run (the learning-rate schedule then spans the
    new budget).

    Args:
        network: The network to train; ``None`` creates one from the first batch.
        model: Simulator for online training.
        dataset: Trace dataset for offline training.
        valid_dataset: Validation traces for offline training (online: simulated).
        config: The training settings.
        checkpoint: Checkpoint file (resumed if it exists).
        device: ``"cpu"``, ``"cuda"``, ... (default: CPU).
        embeddings: Observation embeddings of a new network (see
            :meth:`InferenceNetwork.for_batch`).
        network_sizes: Other :class:`NetworkConfig` fields of a new network.
        model_args: Arguments of ``model.forward``.
        on_step: Called as ``on_step(traces, total, loss)`` after each step.
        workers: Online training: simulate the batches in this many worker processes, ahead
            of the training step (``0``: in this process, between steps). The batches, and
            so the trained network, are the same for any number of workers.
        fresh: Start afresh even if ``checkpoint`` exists (it is overwritten).
        early_stopping: Stop once the validation loss has not improved for this rule's
            ``patience`` validations, and return the best validation's network (needs
            validation traces; see :mod:`.early_stopping` and :mod:`.budget`).

    Returns:
        A :class:`TrainingResult` (``.network`` is the trained network).

    Raises:
        CheckpointError: if ``checkpoint`` was written by a run with other settings.
        DatasetError: if ``checkpoint`` is unreadable.
        ValueError: for an unknown or unavailable ``device``.
    """
    if (model is None) == (dataset is None):
        raise ValueError("give exactly one of model= (online) or dataset= (offline training)")
    check_parallel(model, workers)
    dev = training_device(device)
    torch.manual_seed(derive_seed(config.seed, "init"))
    progress = _Progress()
    ckpt = Path(checkpoint) if checkpoint is not None else None
    identity = run_identity(config, model, dataset, model_args)
    opt_state = None
    saved_stop = None
    if early_stopping is not None and config.valid_size == 0:
        raise ValueError("early_stopping needs validation traces (TrainingConfig.valid_size > 0)")
    if ckpt is not None and ckpt.exists() and not fresh:
        try:
            saved = torch.load(ckpt, map_location="cpu", weights_only=True)
            resumed = InferenceNetwork.from_payload(saved["network"], str(ckpt))
            check_resume(ckpt, saved, resumed, identity, network, embeddings, network_sizes)
            network = resumed
            progress = _Progress(json.loads(saved["progress"]))
            opt_state = saved["optimizer"]
            saved_stop = saved.get("early_stopping")
        except (
            OSError,
            RuntimeError,
            KeyError,
            ValueError,
            EOFError,
            pickle.UnpicklingError,
        ) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise DatasetError(f"cannot resume from checkpoint {ckpt}: {exc}") from exc
        log.info("resuming from %s after %d traces", ckpt, progress.traces)
    batches = _batches(model, dataset, config, progress, model_args, workers)
    try:
        first: TraceBatch | None = None
        if network is None:
            first = next(batches)
            network = InferenceNetwork.for_batch(first, embeddings, **dict(network_sizes or {}))
        if network.model_name is None and model is not None:
            network.model_name = model.name
        elif network.model_name is None and dataset is not None:
            network.model_name = dataset.manifest.get("model")
        network.to(dev).train()
        optimizer = _optimizer(network, config)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        valid = _validation_set(model, valid_dataset, config, model_args)
        if early_stopping is not None and not valid:
            raise ValueError("early_stopping needs validation traces: give valid_dataset=")
        stopper = (
            Stopper(early_stopping, progress.valid_loss, saved_stop)
            if early_stopping is not None
            else None
        )
        result = TrainingResult(network, progress.traces, progress.steps, 0.0, 0.0)
        result.resumed_traces = progress.traces
        start = time.perf_counter()
        traces_start = progress.traces
        next_valid = (progress.traces // config.valid_every + 1) * config.valid_every
        next_ckpt = (progress.traces // config.checkpoint_every + 1) * config.checkpoint_every
        while progress.traces < config.num_traces and not (stopper and stopper.stopped):
            batch = first if first is not None else next(batches)
            first = None
            for site in network.add_sites(batch):
                _add_to_optimizer(optimizer, list(site.parameters()))
            network.observation_encoder.fit(batch.observations)
            if batch.simulations is not None:
                progress.simulations.add(batch.simulations)
            lr = config.learning_rate_at(progress.traces)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = network.loss(batch)
            value = float(loss.detach())
            if math.isfinite(value):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                if config.grad_clip is not None:
                    # the optimizer's list holds every parameter (walking modules costs ~2%)
                    torch.nn.utils.clip_grad_norm_(
                        optimizer.param_groups[0]["params"], config.grad_clip
                    )
                optimizer.step()
                progress.add_loss(progress.traces + batch.size, value)
            else:  # never step on NaN: it would poison every weight
                progress.skipped_steps += 1
                log.warning(
                    "training loss is %s at %d traces: step skipped (%d so far)",
                    value, progress.traces, progress.skipped_steps,
                )  # fmt: skip
            progress.traces += batch.size
            progress.steps += 1
            if on_step is not None:
                on_step(progress.traces, config.num_traces, value)
            done = progress.traces >= config.num_traces
            if valid and (progress.traces >= next_valid or done):
                next_valid += config.valid_every
                vl = _validate(network, valid)
                progress.valid_loss.append((progress.traces, vl))
                log.info("traces %d: loss %.4f, validation loss %.4f", progress.traces, value, vl)
                if stopper is not None and stopper.update(network, progress.traces, vl):
                    done = True
                    log.info("validation loss has not improved for %d validations: stopping",
                             stopper.since_best)  # fmt: skip
            if ckpt is not None and (progress.traces >= next_ckpt or done):
                next_ckpt += config.checkpoint_every
                extra = {"early_stopping": stopper.state()} if stopper is not None else None
                _save_checkpoint(ckpt, network, optimizer, config, progress, identity, extra)
        seconds = time.perf_counter() - start
        result.traces, result.steps, result.seconds = progress.traces, progress.steps, seconds
        result.traces_per_second = (progress.traces - traces_start) / max(seconds, 1e-9)
        result.valid_loss = [(int(a), float(b)) for a, b in progress.valid_loss]
        result.loss = progress.loss_history()
        result.simulations, result.skipped_steps = progress.simulations, progress.skipped_steps
        if progress.simulations.invalid:
            log.warning("training: %s", progress.simulations.summary())
        if stopper is not None:
            stopper.restore(network)
            result.stopped_early = stopper.stopped
            result.best_valid_loss = (stopper.best_traces, stopper.best_loss)
        network.eval()
        return result
    finally:
        batches.close()  # stops simulation workers
