"""Layer L2 — neural networks for amortized inference (inference compilation).

* :class:`InferenceNetwork` — observation embeddings, an LSTM core and one proposal head per
  address (created when the address is first seen);
* :func:`train_network` with :class:`TrainingConfig` (and :class:`TrainingSource`,
  :class:`RunOptions`, :class:`NetworkOptions`) — online or offline training, checkpoints
  and resume, optional :class:`EarlyStopping`; data-parallel under ``torchrun``/``srun``
  with DDP (:class:`DistributedConfig`);
* :func:`train_on_dataset` / :func:`train_on_simulations` with :class:`BudgetConfig` —
  training on a fixed simulation budget: epochs until a held-out validation loss stops
  improving;
* :class:`FlowHead` — normalizing-flow proposals (``NetworkConfig(heads={"vector": "flow"})``)
  beside the mixture heads;
* :func:`train_weighted` — training on importance-weighted traces (the rounds of
  :func:`rotalumis.infer.sequential_ic`);
* :class:`NetworkProposal` — the trained network as a proposal for importance sampling
  (used by the ``"ic"`` engine of :mod:`rotalumis.infer`).

Imports :mod:`rotalumis.core` and :mod:`rotalumis.data` only.
"""

from ._checkpoint import training_device
from .budget import BudgetConfig, simulate_dataset, train_on_dataset, train_on_simulations
from .early_stopping import EarlyStopping
from .embeddings import (
    Conv2dEmbedding,
    Conv3dEmbedding,
    FeedForwardEmbedding,
    ObservationEncoder,
    ObservationSpec,
)
from .flow_head import FlowHead, FlowProposal
from .heads import HEAD_KINDS, ProposalHead, SiteSpec
from .network import InferenceNetwork, NetworkConfig, SiteLayers
from .proposal import NetworkMismatchWarning, NetworkProposal, UnseenAddressWarning
from .training import (
    DistributedConfig,
    NetworkOptions,
    RunOptions,
    TrainingConfig,
    TrainingResult,
    TrainingSource,
    launched_rank,
    simulate_batch,
    train_network,
)
from .weighted_training import WeightedTrainingResult, train_weighted

__all__ = [
    "HEAD_KINDS",
    "BudgetConfig",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "DistributedConfig",
    "EarlyStopping",
    "FeedForwardEmbedding",
    "FlowHead",
    "FlowProposal",
    "InferenceNetwork",
    "NetworkConfig",
    "NetworkMismatchWarning",
    "NetworkOptions",
    "NetworkProposal",
    "ObservationEncoder",
    "ObservationSpec",
    "ProposalHead",
    "RunOptions",
    "SiteLayers",
    "SiteSpec",
    "TrainingConfig",
    "TrainingResult",
    "TrainingSource",
    "UnseenAddressWarning",
    "WeightedTrainingResult",
    "launched_rank",
    "simulate_batch",
    "simulate_dataset",
    "train_network",
    "train_on_dataset",
    "train_on_simulations",
    "train_weighted",
    "training_device",
]
