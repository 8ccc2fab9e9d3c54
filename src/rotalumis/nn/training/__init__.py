"""Training an :class:`~rotalumis.nn.InferenceNetwork`: online (fresh simulations) or offline.

Online, batch ``i`` is simulated from the stream ``derive_seed(seed, "train", i)``; offline,
epoch ``e`` streams a :class:`~rotalumis.data.TraceDataset` shuffled with
``derive_seed(seed, "epoch", e)`` in batches grouped by trace type. A batch may still mix
trace types: the network evaluates each address's layers once over all its visits in the
batch, which is what per-trace-type sub-batches are for, without their small-batch cost.
Both sources are exactly reproducible, and a run resumed from a checkpoint continues with
the very batches it would have seen. Adam with a learning rate set from the number of
traces seen (constant, cosine or exponential decay), gradient clipping, a validation loss
on a fixed set of traces, and atomic checkpoints (network, optimizer and progress, loadable
with ``weights_only=True``). Launched by ``torchrun``/``srun`` with several processes, the
same loop trains data-parallel with DDP (``docs/ddp.md``).

Modules: :mod:`.config` (the typed settings), :mod:`.loop` (:func:`train_network`),
``_batches`` (where batches come from), ``_checkpoints`` (optimizer and checkpoint files),
``_progress`` (counters and the result), ``_ddp`` and ``_register`` (data-parallel runs).
"""

from ._batches import simulate_batch
from ._ddp import launched_rank
from ._progress import TrainingResult
from .config import DistributedConfig, NetworkOptions, RunOptions, TrainingConfig, TrainingSource
from .loop import train_network

__all__ = [
    "DistributedConfig",
    "NetworkOptions",
    "RunOptions",
    "TrainingConfig",
    "TrainingResult",
    "TrainingSource",
    "launched_rank",
    "simulate_batch",
    "train_network",
]
