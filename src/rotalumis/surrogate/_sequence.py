"""Traces as sequences of visited sites: what a surrogate learns from.

A surrogate models a trace as the ordered sequence of its sites — random choices
(``sample``), observations (``observe``) and numeric tags — each with its address, name,
distribution kind, value and prior parameters, followed by "end of trace". The sequences
come from executed :class:`~rotalumis.core.Trace` objects (online training, remote
simulators included) or from the rows of a :class:`~rotalumis.data.TraceDataset`; the
dataset schema keeps the controlled choices in order but the observations only by name, so
from a dataset the observations are learned as the last sites of the trace.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rotalumis.core import Trace
from rotalumis.data import flat_params, flat_value

__all__ = ["DATASET_OBSERVATION", "SiteFilter", "Step", "base_address", "steps_of_trace"]

#: Distribution kind of observations learned from a dataset (which stores no likelihood).
DATASET_OBSERVATION = "Learned"


@dataclass(frozen=True)
class Step:
    """One visited site of a trace.

    Attributes:
        address: Full address (``<base>__<kind>__<instance>``).
        kind: ``"sample"``, ``"observe"`` or ``"tag"``.
        name: The user's name of the site, or ``None``.
        distribution: Distribution kind (``"Tag"`` for tags).
        value: The value, flattened.
        shape: Shape of the value.
        params: Flattened prior parameters (empty for tags and dataset observations).
        control: Whether engines control the choice (``False``: uncontrolled draw).
    """

    address: str
    kind: str
    name: str | None
    distribution: str
    value: tuple[float, ...]
    shape: tuple[int, ...]
    params: tuple[float, ...]
    control: bool = True


def base_address(address: str) -> str:
    """The call-site part of a full address (what ``sample(..., address=)`` takes)."""
    parts = address.rsplit("__", 2)
    return parts[0] if len(parts) == 3 else address


class SiteFilter:
    """Which random choices a surrogate models: names or address patterns (fnmatch).

    Observations are always modelled. With no patterns every choice and numeric tag is.
    Choices left out are nuisance: the surrogate marginalises them.
    """

    def __init__(self, patterns: Sequence[str] | None = None) -> None:
        self.patterns = tuple(patterns or ())
        for p in self.patterns:
            if not isinstance(p, str) or not p:
                raise ValueError(f"site patterns must be non-empty strings, got {p!r}")

    def keeps(self, address: str, name: str | None, kind: str) -> bool:
        """Whether the surrogate models this site."""
        if kind == "observe" or not self.patterns:
            return True
        return any(p == name or fnmatch.fnmatchcase(address, p) for p in self.patterns)


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(float(value))
    if isinstance(value, torch.Tensor):
        return bool(value.numel() > 0 and torch.isfinite(value.double()).all())
    return False


def steps_of_trace(trace: Trace, sites: SiteFilter) -> list[Step]:
    """The modelled sites of an executed trace, in execution order."""
    out = []
    for v in trace.variables:
        kind = v.kind
        if kind not in ("sample", "observe", "tag") or not sites.keeps(v.address, v.name, kind):
            continue
        if kind == "tag":
            if not _numeric(v.value):
                continue
            value, shape = flat_value(v.value)
            out.append(Step(v.address, "tag", v.name, "Tag", tuple(value), tuple(shape), ()))
            continue
        dist = v.distribution
        assert dist is not None
        value, shape = flat_value(v.value)
        params = flat_params(dist, shape)
        out.append(
            Step(
                v.address,
                kind,
                v.name,
                dist.name,
                tuple(value),
                tuple(shape),
                tuple(params),
                bool(v.control),
            )
        )
    return out


def steps_of_row(row: Mapping[str, Any], sites: SiteFilter) -> list[Step]:
    """The modelled sites of one dataset row (a dict of the dataset columns)."""
    out = []
    columns = zip(
        row["address"],
        row["name"],
        row["distribution"],
        row["value"],
        row["value_shape"],
        row["params"],
        strict=True,
    )
    for address, name, dist, value, shape, params in columns:
        if sites.keeps(address, name, "sample"):
            out.append(
                Step(address, "sample", name, dist, tuple(value), tuple(shape), tuple(params))
            )
    observations = zip(
        row["observation_name"], row["observation_value"], row["observation_shape"], strict=True
    )
    for name, value, shape in observations:
        address = f"{name}__{DATASET_OBSERVATION}__1"
        out.append(
            Step(address, "observe", name, DATASET_OBSERVATION, tuple(value), tuple(shape), ())
        )
    return out


def trace_type(steps: Iterable[Step]) -> str:
    """The structure of a sequence: its controlled sample addresses, in order."""
    return "\n".join(s.address for s in steps if s.kind == "sample" and s.control)


def stack_values(steps: Sequence[Step]) -> np.ndarray:
    """Values of visits of one address as an ``(n, numel)`` array."""
    return np.asarray([s.value for s in steps], dtype=np.float64).reshape(len(steps), -1)
