"""Layer L2 — neural networks for amortized inference (inference compilation).

* :class:`InferenceNetwork` — observation embeddings, an LSTM core and one proposal head per
  address (created when the address is first seen);
* :func:`train_network` with :class:`TrainingConfig` — online or offline training,
  checkpoints and resume, optional :class:`EarlyStopping`;
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
from .interest import ProposedSite, SiteSequence, restrict_batch, sample_proposal
from .network import InferenceNetwork, NetworkConfig, SiteLayers
from .proposal import NetworkMismatchWarning, NetworkProposal, UnseenAddressWarning
from .structured_embeddings import Conv1dEmbedding, DeepSetEmbedding, RecurrentEmbedding
from .training import TrainingConfig, TrainingResult, simulate_batch, train_network
from .weighted_training import WeightedTrainingResult, train_weighted

__all__ = [
    "EMBEDDINGS",
    "HEAD_KINDS",
    "BudgetConfig",
    "Conv1dEmbedding",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "DeepSetEmbedding",
    "EarlyStopping",
    "FeedForwardEmbedding",
    "FlowHead",
    "FlowProposal",
    "InferenceNetwork",
    "NetworkConfig",
    "NetworkMismatchWarning",
    "NetworkProposal",
    "ObservationEncoder",
    "ObservationSpec",
    "ProposalHead",
    "ProposedSite",
    "RecurrentEmbedding",
    "SiteLayers",
    "SiteSequence",
    "SiteSpec",
    "TrainingConfig",
    "TrainingResult",
    "UnseenAddressWarning",
    "WeightedTrainingResult",
    "restrict_batch",
    "sample_proposal",
    "simulate_batch",
    "simulate_dataset",
    "train_network",
    "train_on_dataset",
    "train_on_simulations",
    "train_weighted",
]
