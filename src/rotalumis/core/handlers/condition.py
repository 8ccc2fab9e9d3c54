"""Condition a model on data, by site name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ..distributions.base import Distribution
from ..errors import ObservationError
from ..runtime import Handler, Message

__all__ = ["ConditionHandler", "normalize_observation"]


def normalize_observation(name: str, value: Any) -> Any:
    """Validate one observed value: numbers stay numbers, sequences become float tensors.

    Raises:
        ObservationError: if the value is not numeric or not finite (naming ``name``).
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ObservationError(f"observation {name!r}: value must be finite, got {value}")
        return value
    try:
        t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ObservationError(
            f"observation {name!r}: value must be a number or an array of numbers, got {value!r}"
        ) from None
    if not t.is_floating_point() and not t.is_complex():
        t = t.to(torch.get_default_dtype()) if t.dtype == torch.bool else t
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ObservationError(f"observation {name!r}: value must be finite, got {t}")
    return t


class ConditionHandler(Handler):
    """Fix the values of named sites to data.

    ``observe`` sites named in ``data`` take the data as their value; ``sample`` sites named
    in ``data`` are clamped (their log-probability then counts as evidence, not prior).

    A value must have the shape of one value of the site (its distribution's ``shape``; a
    number for a scalar site; a one-element array and a number stand for each other).
    There are no implicit i.i.d. semantics: a vector given for a scalar site is an error,
    not several draws. To observe ``n`` i.i.d. values, give the site that shape in the
    model, e.g. ``observe(Normal(mu, 1.0).expand((n,)), name="y")``.

    Args:
        data: Observed values by site name. Values must be finite numbers or arrays.

    Raises:
        ObservationError: for a non-finite or non-numeric value; during an execution, for a
            value whose shape is not the site's (naming the site and both shapes).
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(data, Mapping):
            raise TypeError(f"observations must be a mapping of name to value, got {data!r}")
        self.data = {str(k): normalize_observation(str(k), v) for k, v in data.items()}

    def process(self, msg: Message) -> None:
        name = msg.name
        if name is not None and msg.kind != "tag":
            value = self.data.get(name, _ABSENT)
            if value is _ABSENT:
                return
            dist = msg.distribution
            if dist is not None:
                t = type(value)
                if t is float or t is int:
                    # the hot path: a number fits a site whose log-density is a float (the
                    # scalar path); computing it here saves the default behaviour the work
                    if msg.log_prob is None:
                        lp = dist.log_prob_sum(value)
                        if type(lp) is not float:
                            _check_shape(msg, dist, value)
                        msg.log_prob = lp
                elif not dist.has_value_shape(value):
                    _check_shape(msg, dist, value)
            msg.value = value
            msg.observed = True


_ABSENT = object()


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else ()


def _check_shape(msg: Message, dist: Distribution, value: Any) -> None:
    """Raise unless ``value`` fits a site of ``dist`` (one element standing for another)."""
    got, want = _shape_of(value), tuple(dist.shape)
    if math.prod(got) == 1 and math.prod(want) == 1:
        return
    what = "are a number" if not got else f"have shape {got}"
    site = "a number" if not want else f"values of shape {want}"
    hint = (
        "; to observe several i.i.d. values, give the site that shape in the model "
        "(e.g. dist.expand((n,))), or observe them at sites of their own"
        if not want and got
        else ""
    )
    raise ObservationError(
        f"observation {msg.name!r}: the data {what}, but the site {msg.address} "
        f"({dist.name}) draws {site}{hint}"
    )
