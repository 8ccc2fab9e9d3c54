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
    EMBEDDINGS,
    Conv2dEmbedding,
    Conv3dEmbedding,
    FeedForwardEmbedding,
    ObservationEncoder,
    ObservationSpec,
)
from .flow_head import FlowHead, FlowProposal
from .heads import HEAD_KINDS, ProposalHead, SiteSpec
from .interest import ProposedSite, SiteSequence, restrict_batch
from .network import InferenceNetwork, NetworkConfig, SiteLayers
from .proposal import (
    NetworkMismatchWarning,
    NetworkProposal,
    UnseenAddressWarning,
    defensive_weights,
    sample_proposal,
)
from .structured_embeddings import Conv1dEmbedding, DeepSetEmbedding, RecurrentEmbedding
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
    "EMBEDDINGS",
    "HEAD_KINDS",
    "BudgetConfig",
    "Conv1dEmbedding",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "DeepSetEmbedding",
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
    "ProposedSite",
    "RecurrentEmbedding",
    "RunOptions",
    "SiteLayers",
    "SiteSequence",
    "SiteSpec",
    "TrainingConfig",
    "TrainingResult",
    "TrainingSource",
    "UnseenAddressWarning",
    "WeightedTrainingResult",
    "defensive_weights",
    "launched_rank",
    "restrict_batch",
    "sample_proposal",
    "simulate_batch",
    "simulate_dataset",
    "train_network",
    "train_on_dataset",
    "train_on_simulations",
    "train_weighted",
    "training_device",
]
