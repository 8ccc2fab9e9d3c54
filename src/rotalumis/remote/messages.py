"""The eleven PPX 1.0 messages as small immutable Python objects.

These are what :func:`~rotalumis.remote.encode` takes and
:func:`~rotalumis.remote.decode` returns. Values and parameters use rotalumis'
conventions: a scalar is a Python ``float`` (``int`` for discrete sample results once the
simulator converts them), a vector is a :class:`torch.Tensor`, and ``None`` is "no value"
(on the wire: a tensor with empty data). Names are ``None`` when the peer sent an empty
string. Distributions are rotalumis :class:`~rotalumis.core.distributions.Distribution`
objects of the eleven PPX kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rotalumis.core.distributions import Distribution

from .ppx_generated.Distribution import Distribution as _DistributionUnion
from .ppx_generated.MessageBody import MessageBody as _MessageBody

__all__ = [
    "BODY_TYPES",
    "DISTRIBUTION_FIELDS",
    "DISTRIBUTION_TYPES",
    "Handshake",
    "HandshakeResult",
    "Observe",
    "ObserveResult",
    "PPXMessage",
    "Reset",
    "Run",
    "RunResult",
    "Sample",
    "SampleResult",
    "Tag",
    "TagResult",
]


@dataclass(frozen=True, slots=True)
class Handshake:
    """Engine → simulator: the first request of a session."""

    system_name: str


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """Simulator → engine: who is serving which model."""

    system_name: str
    model_name: str


@dataclass(frozen=True, slots=True)
class Run:
    """Engine → simulator: start one execution."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """Simulator → engine: the execution finished with ``result`` (``None`` if nothing)."""

    result: Any = None


@dataclass(frozen=True, slots=True)
class Sample:
    """Simulator → engine: a random choice at raw call-site ``address``."""

    address: str
    name: str | None
    distribution: Distribution
    control: bool = True


@dataclass(frozen=True, slots=True)
class SampleResult:
    """Engine → simulator: the value chosen for the last :class:`Sample`."""

    result: Any


@dataclass(frozen=True, slots=True)
class Observe:
    """Simulator → engine: data drawn from ``distribution``; ``value`` is usually ``None``."""

    address: str
    name: str | None
    distribution: Distribution
    value: Any = None


@dataclass(frozen=True, slots=True)
class ObserveResult:
    """Engine → simulator: the observation was recorded."""


@dataclass(frozen=True, slots=True)
class Tag:
    """Simulator → engine: record ``value`` under ``name`` without a random choice."""

    address: str
    name: str | None
    value: Any


@dataclass(frozen=True, slots=True)
class TagResult:
    """Engine → simulator: the tag was recorded."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Simulator → engine: the request was out of sequence; the execution is abandoned."""


PPXMessage = (
    Handshake
    | HandshakeResult
    | Run
    | RunResult
    | Sample
    | SampleResult
    | Observe
    | ObserveResult
    | Tag
    | TagResult
    | Reset
)

#: Union values of ``MessageBody``, taken from the code flatc generated from the schema.
BODY_TYPES: dict[type, int] = {
    cls: getattr(_MessageBody, cls.__name__)
    for cls in (
        Handshake,
        HandshakeResult,
        Run,
        RunResult,
        Sample,
        SampleResult,
        Observe,
        ObserveResult,
        Tag,
        TagResult,
        Reset,
    )
}

#: Field names of each PPX distribution table, in declaration order (= ``dist.params`` order).
DISTRIBUTION_FIELDS: dict[str, tuple[str, ...]] = {
    "Normal": ("mean", "stddev"),
    "Uniform": ("low", "high"),
    "Categorical": ("probs",),
    "Poisson": ("rate",),
    "Bernoulli": ("probs",),
    "Beta": ("concentration1", "concentration0"),
    "Exponential": ("rate",),
    "Gamma": ("concentration", "rate"),
    "LogNormal": ("loc", "scale"),
    "Binomial": ("total_count", "probs"),
    "Weibull": ("scale", "concentration"),
}

#: Union values of ``Distribution`` by PPX (and rotalumis class) name, from the generated code.
DISTRIBUTION_TYPES: dict[str, int] = {
    name: getattr(_DistributionUnion, name) for name in DISTRIBUTION_FIELDS
}
