"""Creating every address's layers before distributed training starts.

DDP fixes the set of parameters when it wraps the network, so the layers a single process
would create on meeting a new address must exist before the first step. Offline, the
dataset's statistics list its addresses; batches are read in training order (from where
the run stands) until each has layers, so the layers are made from the same batches, in the
same order, as a single process training on the whole step would make them. Online, the
ranks simulate ``DistributedConfig.register_traces`` prior traces between them and every
rank creates the layers of the addresses they visit, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rotalumis.core import Model
from rotalumis.core.rng import derive_seed
from rotalumis.data import TraceBatch, TraceDataset

from ..network import InferenceNetwork
from ._batches import simulate_batch
from ._ddp import Ranks
from ._progress import Progress
from .config import DistributedConfig, NetworkOptions, TrainingConfig

__all__ = ["register_addresses"]


def _dataset_batches(
    dataset: TraceDataset, config: TrainingConfig, progress: Progress, world_size: int
) -> Iterator[TraceBatch]:
    """Whole steps (all ranks' traces) in training order: the rest of this epoch, then the
    next one."""
    size = config.batch_size * world_size
    for epoch, skip in ((progress.epoch, progress.epoch_batches), (progress.epoch + 1, 0)):
        tables = dataset.iter_tables(size, seed=derive_seed(config.seed, "epoch", epoch))
        for n, table in enumerate(tables):
            if n >= skip:
                yield TraceBatch.from_arrow(table)


def _simulated_batches(
    model: Model,
    config: TrainingConfig,
    distributed: DistributedConfig,
    model_args: tuple[Any, ...],
    ranks: Ranks,
) -> Iterator[TraceBatch]:
    """``register_traces`` prior traces in batches, simulated by the ranks in turn."""
    total, size = distributed.register_traces, config.batch_size
    chunks = list(range(0, total, size))
    mine = {}
    for k, start in enumerate(chunks):
        if k % ranks.world_size == ranks.rank:
            label = f"address-registration traces {start}.. of the run with seed {config.seed}"
            seed = derive_seed(config.seed, "register", start)
            mine[k] = simulate_batch(
                model, min(size, total - start), seed, model_args, config.invalid_policy(), label
            )
    pooled: dict[int, TraceBatch] = {}
    for part in ranks.gather(mine):
        pooled.update(part)
    for k in range(len(chunks)):
        yield pooled[k]


def register_addresses(
    network: InferenceNetwork | None,
    model: Model | None,
    dataset: TraceDataset | None,
    config: TrainingConfig,
    distributed: DistributedConfig,
    progress: Progress,
    model_args: tuple[Any, ...],
    ranks: Ranks,
    new: NetworkOptions,
) -> InferenceNetwork:
    """The network (created from the first batch if ``None``) with layers for every address
    known before training: the dataset's (offline) or the registration traces' (online)."""
    if dataset is not None:
        wanted = set(dataset.stats().addresses)
        batches = _dataset_batches(dataset, config, progress, ranks.world_size)
    else:
        assert model is not None
        wanted = None
        batches = _simulated_batches(model, config, distributed, model_args, ranks)
    for batch in batches:
        if network is None:
            network = InferenceNetwork.for_batch(batch, new.embeddings, **dict(new.sizes or {}))
        elif wanted is not None and wanted.issubset(network.addresses):
            break
        network.add_sites(batch)
        network.observation_encoder.fit(batch.observations)  # (once: a no-op once fitted)
    if network is None:
        raise ValueError("no traces to build the inference network from")
    return network
