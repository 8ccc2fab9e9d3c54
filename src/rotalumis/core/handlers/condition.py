"""Condition a model on data, by site name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

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

    Args:
        data: Observed values by site name. Values must be finite numbers or arrays.

    Raises:
        ObservationError: for a non-finite or non-numeric value.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(data, Mapping):
            raise TypeError(f"observations must be a mapping of name to value, got {data!r}")
        self.data = {str(k): normalize_observation(str(k), v) for k, v in data.items()}

    def process(self, msg: Message) -> None:
        name = msg.name
        if name is not None and msg.kind != "tag":
            data = self.data
            if name in data:
                msg.value = data[name]
                msg.observed = True
