"""Where training batches come from: prior simulations (online) or a dataset (offline).

Online, batch ``i`` is simulated from the stream ``derive_seed(seed, "train", i)``; with
``W`` processes, rank ``r``'s part of step ``s`` is batch ``s * W + r`` (so the processes
together see the very traces one process would, in the same order). Offline, epoch ``e``
streams the dataset shuffled with ``derive_seed(seed, "epoch", e)`` in steps grouped by
trace type, and each rank trains on its contiguous share of the step (so the ranks of a
step train on the same trace types: trace-type bucketing).
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Generator
from typing import Any

import torch

from rotalumis.core import RNG, DatasetError, Model
from rotalumis.core.rng import derive_seed
from rotalumis.core.validity import InvalidPolicy, SimulationCounter, simulate_valid
from rotalumis.data import TraceBatch, TraceDataset

from ..network import InferenceNetwork
from ._ddp import Ranks
from ._memory import memory_steps
from ._progress import Progress
from .config import TrainingConfig

__all__ = ["simulate_batch"]


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
    counter = SimulationCounter()
    label = label or f"the batch simulated with seed {seed}"

    def where(k: int) -> str:
        return f"trace {k} of {label}"

    traces = simulate_valid(
        model, RNG(seed), size, policy or InvalidPolicy(), counter, model_args=model_args,
        where=where,
    )  # fmt: skip
    batch = TraceBatch.from_traces(traces)
    batch.simulations = counter
    return batch


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


def _cluster_batches(
    source: _SimulatedBatches, start: int, stride: int, cluster: Any
) -> Generator[TraceBatch, None, None]:
    """The batches simulated on a Dask cluster, two per worker ahead, in order."""
    from rotalumis.distributed import open_executor

    with open_executor(source.model, 0, cluster) as executor:
        assert executor is not None
        yield from executor.ordered(
            source.__getitem__,
            itertools.count(start, stride),
            ahead=2 * executor.parallelism,
            describe=lambda i: f"training batch {i} of the run with seed {source.seed}",
        )


def _online_batches(
    source: _SimulatedBatches, start: int, stride: int, workers: int, seed: int, cluster: Any
) -> Generator[TraceBatch, None, None]:
    if cluster is not None:
        yield from _cluster_batches(source, start, stride, cluster)
        return
    if workers == 0:
        for i in itertools.count(start, stride):
            yield source[i]
        return
    methods = multiprocessing.get_all_start_methods()
    # fork: the model reaches the workers without pickling (as DataLoader does on Linux)
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    loader = torch.utils.data.DataLoader(
        source,
        batch_size=None,  # each item already is a batch
        sampler=itertools.count(start, stride),  # in order: the same batches as without workers
        num_workers=workers,
        multiprocessing_context=context,
        worker_init_fn=_simulation_worker_init,
        prefetch_factor=2,
        # its worker seeds come from this generator, not torch's global one (which seeds the
        # network's initial weights); simulations use their own seeded streams anyway
        generator=torch.Generator().manual_seed(derive_seed(seed, "workers")),
    )
    for batch in loader:
        if isinstance(batch, Exception):  # a simulation failed in a worker
            raise batch
        yield batch


def _dataset_steps(
    dataset: TraceDataset, config: TrainingConfig, progress: Progress, ranks: Ranks
) -> Generator[tuple[TraceBatch, int], None, None]:
    if len(dataset) == 0:
        raise DatasetError(f"trace dataset {dataset.directory} has no readable traces")
    step_size = config.batch_size * ranks.world_size
    skip = progress.epoch_batches
    while True:
        seed = derive_seed(config.seed, "epoch", progress.epoch)
        for n, table in enumerate(dataset.iter_tables(step_size, seed=seed)):
            if n < skip:
                continue
            progress.epoch_batches = n + 1
            yield TraceBatch.from_arrow(ranks.part(table)), table.num_rows
        skip = 0
        progress.epoch += 1
        progress.epoch_batches = 0


def training_steps(
    model: Model | None,
    dataset: TraceDataset | None,
    config: TrainingConfig,
    progress: Progress,
    model_args: tuple[Any, ...],
    workers: int,
    ranks: Ranks,
    in_memory: bool = False,
    cluster: Any = None,
) -> Generator[tuple[TraceBatch, int], None, None]:
    """Each step's batch for this rank, with the step's number of traces (all ranks);
    online, simulated in ``workers`` processes or on ``cluster``."""
    if model is None:
        assert dataset is not None
        if in_memory:
            if ranks.distributed:
                raise ValueError("in_memory=True trains in one process, not under DDP")
            yield from memory_steps(dataset, config.batch_size, config.seed, progress)
        else:
            yield from _dataset_steps(dataset, config, progress, ranks)
        return
    source = _SimulatedBatches(
        model, config.batch_size, config.seed, model_args, config.invalid_policy()
    )
    start = progress.steps * ranks.world_size + ranks.rank
    batches = _online_batches(source, start, ranks.world_size, workers, config.seed, cluster)
    try:
        for batch in batches:
            yield batch, batch.size * ranks.world_size
    finally:
        batches.close()  # stops simulation workers


def validation_set(
    model: Model | None,
    valid_dataset: TraceDataset | None,
    config: TrainingConfig,
    model_args: tuple[Any, ...],
) -> list[TraceBatch]:
    """The fixed validation batches (the same on every rank)."""
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


def validate(
    network: InferenceNetwork, batches: list[TraceBatch], ranks: Ranks | None = None
) -> float:
    """The mean loss over ``batches`` (each rank evaluates its share, the sums are pooled)."""
    ranks = ranks or Ranks()
    network.eval()
    total, n = 0.0, 0.0
    with torch.no_grad():
        for batch in batches[ranks.rank :: ranks.world_size]:
            total += float(network.loss(batch)) * batch.size
            n += batch.size
    network.train()
    total, n = ranks.sum([total, n], network.observation_encoder.device, agree=True)
    return total / max(n, 1)
