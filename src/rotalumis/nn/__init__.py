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
    Conv2dEmbedding,
    Conv3dEmbedding,
    FeedForwardEmbedding,
    ObservationEncoder,
    ObservationSpec,
)
from .heads import HEAD_KINDS, ProposalHead, SiteSpec
from .network import InferenceNetwork, NetworkConfig, SiteLayers
from .proposal import NetworkMismatchWarning, NetworkProposal, UnseenAddressWarning
from .training import TrainingConfig, TrainingResult, simulate_batch, train_network

__all__ = [
    "HEAD_KINDS",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "FeedForwardEmbedding",
    "InferenceNetwork",
    "NetworkConfig",
    "NetworkMismatchWarning",
    "NetworkProposal",
    "ObservationEncoder",
    "ObservationSpec",
    "ProposalHead",
    "SiteLayers",
    "SiteSpec",
    "TrainingConfig",
    "TrainingResult",
    "UnseenAddressWarning",
    "simulate_batch",
    "train_network",
]
