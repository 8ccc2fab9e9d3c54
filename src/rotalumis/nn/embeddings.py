"""Observation embeddings: feed-forward for vectors, 2D/3D convolutions for images and volumes,
permutation-invariant (DeepSets) for sets of i.i.d. trials, 1-D convolutional or recurrent for
time series (the last three in :mod:`.structured_embeddings`).

Each observation name gets its own embedding (chosen by :class:`ObservationSpec`); their
outputs are concatenated and mixed by one more layer into the observation embedding the
LSTM sees at every step. Inputs are standardised with a mean and standard deviation
measured on the first training batch (kept as buffers, so they are saved with the weights):
per element for ``ff``, one pair for ``cnn2d``/``cnn3d``, per feature (last axis) for
``set``, ``cnn1d`` and ``gru``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rotalumis.core import ObservationError

from .structured_embeddings import (
    Conv1dEmbedding,
    DeepSetEmbedding,
    RecurrentEmbedding,
    features_of,
)

__all__ = [
    "EMBEDDINGS",
    "Conv2dEmbedding",
    "Conv3dEmbedding",
    "FeedForwardEmbedding",
    "ObservationEncoder",
    "ObservationSpec",
]

EMBEDDINGS = ("ff", "cnn2d", "cnn3d", "set", "cnn1d", "gru")
_STRUCTURED = ("set", "cnn1d", "gru")  # shape (N,) or (N, F): elements/steps, then features


@dataclass(frozen=True)
class ObservationSpec:
    """How one observation is embedded.

    Attributes:
        name: The observation name.
        shape: Shape of its value (``()`` for a scalar).
        embedding: ``"ff"`` (any shape, flattened), ``"cnn2d"`` (``(H, W)`` or
            ``(C, H, W)``), ``"cnn3d"`` (``(D, H, W)`` or ``(C, D, H, W)``), ``"set"``
            (``N`` exchangeable elements, ``(N,)`` or ``(N, F)``), ``"cnn1d"`` or ``"gru"``
            (a time series, ``(T,)`` or ``(T, F)``).
        dim: Output size.
        depth: Layers of a feed-forward embedding (``ff``) or of the per-element network
            (``set``).
    """

    name: str
    shape: tuple[int, ...] = ()
    embedding: str = "ff"
    dim: int = 32
    depth: int = 2

    def __post_init__(self) -> None:
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"observation {self.name!r}: embedding must be one of {EMBEDDINGS}, "
                f"got {self.embedding!r}"
            )
        spatial = {"cnn2d": 2, "cnn3d": 3}.get(self.embedding)
        if spatial is not None and len(self.shape) not in (spatial, spatial + 1):
            raise ValueError(
                f"observation {self.name!r}: a {self.embedding} embedding needs a shape of "
                f"{spatial} or {spatial + 1} dimensions, got {self.shape}"
            )
        if self.embedding in _STRUCTURED and len(self.shape) not in (1, 2):
            layout = "(N,) or (N, F)" if self.embedding == "set" else "(T,) or (T, F)"
            raise ValueError(
                f"observation {self.name!r}: a {self.embedding} embedding needs a shape "
                f"{layout}, got {self.shape}"
            )

    @property
    def numel(self) -> int:
        """Elements in one value."""
        return math.prod(self.shape)

    @property
    def standardised_features(self) -> int:
        """Features with their own mean and standard deviation (see the module docstring)."""
        if self.embedding == "ff":
            return self.numel
        return features_of(self.shape) if self.embedding in _STRUCTURED else 1

    def build(self) -> nn.Module:
        """A new embedding module for this observation."""
        if self.embedding == "ff":
            return FeedForwardEmbedding(self.numel, self.dim, self.depth)
        if self.embedding == "cnn2d":
            return Conv2dEmbedding(self.shape, self.dim)
        if self.embedding == "cnn3d":
            return Conv3dEmbedding(self.shape, self.dim)
        if self.embedding == "set":
            return DeepSetEmbedding(self.shape, self.dim, self.depth)
        if self.embedding == "cnn1d":
            return Conv1dEmbedding(self.shape, self.dim)
        return RecurrentEmbedding(self.shape, self.dim)


class FeedForwardEmbedding(nn.Module):
    """``depth`` fully connected ReLU layers on the flattened input."""

    def __init__(self, numel: int, dim: int, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = numel
        for _ in range(max(depth, 1)):
            layers += [nn.Linear(width, dim), nn.ReLU()]
            width = dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` of shape ``(n, ...)`` into ``(n, dim)``."""
        out: torch.Tensor = self.net(x.reshape(x.shape[0], -1))
        return out


class _ConvEmbedding(nn.Module):
    def __init__(self, shape: tuple[int, ...], dim: int, spatial: int) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial == 2 else nn.Conv3d
        pool = nn.MaxPool2d if spatial == 2 else nn.MaxPool3d
        adaptive = nn.AdaptiveAvgPool2d if spatial == 2 else nn.AdaptiveAvgPool3d
        self.spatial = spatial
        channels = shape[0] if len(shape) == spatial + 1 else 1
        grid = 4 if spatial == 2 else 2
        self.net = nn.Sequential(
            conv(channels, 16, 3, padding=1),
            nn.ReLU(),
            pool(2, ceil_mode=True),
            conv(16, 32, 3, padding=1),
            nn.ReLU(),
            adaptive(grid),
            nn.Flatten(),
            nn.Linear(32 * grid**spatial, dim),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed images ``(n, [C,] *spatial)`` into ``(n, dim)``."""
        if x.dim() == self.spatial + 1:
            x = x.unsqueeze(1)
        out: torch.Tensor = self.net(x)
        return out


class Conv2dEmbedding(_ConvEmbedding):
    """Two 3x3 convolutions (16 and 32 channels), pooling, and a linear layer, for images."""

    def __init__(self, shape: tuple[int, ...], dim: int) -> None:
        super().__init__(shape, dim, 2)


class Conv3dEmbedding(_ConvEmbedding):
    """Two 3x3x3 convolutions (16 and 32 channels), pooling, and a linear layer, for volumes."""

    def __init__(self, shape: tuple[int, ...], dim: int) -> None:
        super().__init__(shape, dim, 3)


class ObservationEncoder(nn.Module):
    """Embeds all observations into one vector of size ``dim``.

    Args:
        specs: One :class:`ObservationSpec` per observation name the network conditions on.
        dim: Output size.
    """

    def __init__(self, specs: tuple[ObservationSpec, ...], dim: int) -> None:
        super().__init__()
        if not specs:
            raise ValueError("an inference network needs at least one observation to embed")
        self.specs = specs
        self.embeddings = nn.ModuleList()
        for spec in specs:
            self.embeddings.append(spec.build())
            feat = spec.standardised_features
            self.register_buffer(f"mean{len(self.embeddings) - 1}", torch.zeros(feat))
            self.register_buffer(f"std{len(self.embeddings) - 1}", torch.ones(feat))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        total = sum(s.dim for s in specs)
        self.mix = nn.Sequential(nn.Linear(total, dim), nn.ReLU())

    @property
    def device(self) -> torch.device:
        """Where the encoder's tensors live."""
        fitted = self.fitted
        assert isinstance(fitted, torch.Tensor)
        return fitted.device

    def fit(self, observations: Mapping[str, np.ndarray]) -> None:
        """Measure the standardisation of each observation on a batch (once)."""
        if bool(self.fitted):
            return
        for i, spec in enumerate(self.specs):
            x = np.asarray(observations[spec.name], dtype=np.float64)
            x = x.reshape(-1, spec.standardised_features)
            mean = np.nanmean(x, axis=0)
            std = np.nanstd(x, axis=0)
            mean = np.where(np.isfinite(mean), mean, 0.0)
            std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
            getattr(self, f"mean{i}").copy_(torch.as_tensor(mean))
            getattr(self, f"std{i}").copy_(torch.as_tensor(std))
        self.fitted.fill_(True)  # type: ignore[operator]

    def forward(self, observations: Mapping[str, Any], size: int) -> torch.Tensor:
        """Embed a batch: ``observations[name]`` has shape ``(size, *spec.shape)``."""
        parts = []
        device = self.device
        for i, (spec, layer) in enumerate(zip(self.specs, self.embeddings, strict=True)):
            try:
                raw = observations[spec.name]
            except KeyError:
                raise ObservationError(
                    f"the inference network needs observation {spec.name!r}, which is missing"
                ) from None
            x = torch.as_tensor(raw, dtype=torch.float32, device=device).reshape(size, -1)
            if x.shape[1] != spec.numel:
                raise ValueError(
                    f"observation {spec.name!r} has {x.shape[1]} elements, the network was "
                    f"built for shape {spec.shape}"
                )
            mean, std = getattr(self, f"mean{i}"), getattr(self, f"std{i}")
            x = (x.reshape(size, -1, spec.standardised_features) - mean) / std
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            parts.append(layer(x.reshape(size, *spec.shape) if spec.embedding != "ff" else x))
        out: torch.Tensor = self.mix(torch.cat(parts, dim=1))
        return out
