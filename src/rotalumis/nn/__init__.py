"""Layer L2 — neural networks for amortized inference (inference compilation).

* :class:`InferenceNetwork` — observation embeddings, an LSTM core and one proposal head per
  address (created when the address is first seen);
* :func:`train_network` with :class:`TrainingConfig` — online or offline training,
  checkpoints and resume;
* :class:`NetworkProposal` — the trained network as a proposal for importance sampling
  (used by the ``"ic"`` engine of :mod:`rotalumis.infer`).

Imports :mod:`rotalumis.core` and :mod:`rotalumis.data` only.
"""

from .embeddings import (
    EMBEDDINGS,
    Conv2dEmbedding,
    Conv3dEmbedding,
    FeedForwardEmbedding,
    ObservationEncoder,
    ObservationSpec,
)
from .heads import HEAD_KINDS, ProposalHead, SiteSpec
from .interest import ProposedSite, SiteSequence, restrict_batch, sample_proposal
from .network import InferenceNetwork, NetworkConfig, SiteLayers
from .proposal import NetworkMismatchWarning, NetworkProposal, UnseenAddressWarning
from .structured_embeddings import Conv1dEmbedding, DeepSetEmbedding, RecurrentEmbedding
from .training import TrainingConfig, TrainingResult, simulate_batch, train_network

__all__ = [
    "EMBEDDINGS",
    "HEAD_KINDS",
    "Conv1dEmbedding",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "DeepSetEmbedding",
    "FeedForwardEmbedding",
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
    "restrict_batch",
    "sample_proposal",
    "simulate_batch",
    "train_network",
]
