"""Embeddings of structured observations: sets of i.i.d. trials and time series.

* :class:`DeepSetEmbedding` (``"set"``): a set of ``N`` exchangeable elements (repeated
  trials, particles, measurements in any order), shape ``(N,)`` or ``(N, F)``. Every element
  goes through the same network, the results are pooled by their mean and their maximum,
  and one more layer maps the pooled vector to the embedding (Zaheer et al., "Deep Sets",
  2017): the embedding does not change when the elements are reordered.
* :class:`Conv1dEmbedding` (``"cnn1d"``): a time series of ``T`` steps, shape ``(T,)`` or
  ``(T, F)`` (``F`` channels): two 1-D convolutions along time, pooling, a linear layer.
* :class:`RecurrentEmbedding` (``"gru"``): the same layouts read step by step by a GRU; the
  last hidden state is the embedding (series whose order and long-range dependence matter).

All three standardise each feature (the last axis) with one mean and standard deviation
shared by all elements or time steps.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Conv1dEmbedding", "DeepSetEmbedding", "RecurrentEmbedding", "features_of"]


def features_of(shape: tuple[int, ...]) -> int:
    """Features per element (or per time step) of an ``(N,)`` or ``(N, F)`` observation."""
    return shape[1] if len(shape) == 2 else 1


class DeepSetEmbedding(nn.Module):
    """Permutation-invariant embedding of a set of ``N`` elements with ``F`` features each.

    Args:
        shape: ``(N,)`` or ``(N, F)``.
        dim: Output size.
        depth: Layers of the per-element network.
    """

    def __init__(self, shape: tuple[int, ...], dim: int, depth: int = 2) -> None:
        super().__init__()
        self.features = features_of(shape)
        layers: list[nn.Module] = []
        width = self.features
        for _ in range(max(depth, 1)):
            layers += [nn.Linear(width, dim), nn.ReLU()]
            width = dim
        self.element = nn.Sequential(*layers)
        self.pooled = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed sets ``(n, N[, F])`` into ``(n, dim)``."""
        h = self.element(x.reshape(x.shape[0], -1, self.features))
        out: torch.Tensor = self.pooled(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1))
        return out


class Conv1dEmbedding(nn.Module):
    """Two 1-D convolutions along time (16 and 32 channels, width 5), pooling, a linear layer.

    Args:
        shape: ``(T,)`` or ``(T, F)``: time first, ``F`` channels last.
        dim: Output size.
    """

    _GRID = 8  # time bins kept by the adaptive pooling

    def __init__(self, shape: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.features = features_of(shape)
        self.net = nn.Sequential(
            nn.Conv1d(self.features, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(self._GRID),
            nn.Flatten(),
            nn.Linear(32 * self._GRID, dim),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed series ``(n, T[, F])`` into ``(n, dim)``."""
        x = x.reshape(x.shape[0], -1, self.features).transpose(1, 2)  # (n, F, T)
        out: torch.Tensor = self.net(x)
        return out


class RecurrentEmbedding(nn.Module):
    """A GRU over the time steps; its last hidden state, through one layer, is the embedding.

    Args:
        shape: ``(T,)`` or ``(T, F)``: time first, ``F`` features per step.
        dim: Output size (also the GRU's hidden size).
        depth: GRU layers.
    """

    def __init__(self, shape: tuple[int, ...], dim: int, depth: int = 1) -> None:
        super().__init__()
        self.features = features_of(shape)
        self.gru = nn.GRU(self.features, dim, max(depth, 1), batch_first=True)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed series ``(n, T[, F])`` into ``(n, dim)``."""
        _, h = self.gru(x.reshape(x.shape[0], -1, self.features))
        out: torch.Tensor = self.out(h[-1])
        return out
