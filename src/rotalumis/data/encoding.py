"""How values and prior parameters become flat lists of floats: what trace datasets store
(``value``, ``params`` columns, :mod:`rotalumis.data.dataset.schema`) and what the inference
network reads for live choices, so that training on a dataset and proposing during inference
see the same features.

* :func:`flat_value` — any value (number, bool, tensor, array) as a flat ``float64`` list and
  its shape.
* :func:`flat_params` — a prior's numeric parameters in PPX order, broadcast to the value's
  shape and flattened.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from rotalumis.core import Distribution

__all__ = ["flat_params", "flat_value"]


def flat_value(value: Any) -> tuple[list[float], list[int]]:
    """A value as a flat list of floats and its shape."""
    if isinstance(value, (int, float)):  # bool is an int
        return [float(value)], []
    if isinstance(value, torch.Tensor):
        t = value.detach()
        return t.reshape(-1).double().tolist(), list(t.shape)
    t = torch.as_tensor(value, dtype=torch.float64)
    return t.reshape(-1).tolist(), list(t.shape)


def flat_params(dist: Distribution, shape: Sequence[int] = ()) -> list[float]:
    """The numeric parameters of ``dist`` in PPX order, broadcast to ``shape``, flattened.

    ``Categorical`` gives its probabilities; a distribution with non-numeric parameters
    (``Mixture``) gives its mean and standard deviation.
    """
    out: list[float] = []
    for p in dist.params.values():
        if isinstance(p, (int, float)):
            if shape:
                out.extend([float(p)] * math.prod(shape))
            else:
                out.append(float(p))
        elif isinstance(p, torch.Tensor):
            t = p.detach().double()
            if shape and t.dim() <= len(shape) and t.shape != tuple(shape):
                with contextlib.suppress(RuntimeError):  # not broadcastable: keep as is
                    t = t.expand(*shape)
            out.extend(t.reshape(-1).tolist())
        elif isinstance(p, (tuple, list)) and all(isinstance(x, (int, float)) for x in p):
            out.extend(float(x) for x in p)
        else:
            return _moments(dist)
    return out


def _moments(dist: Distribution) -> list[float]:
    try:
        mean, std = dist.mean, dist.stddev
    except (NotImplementedError, ValueError, RuntimeError):
        return []
    return flat_value(mean)[0] + flat_value(std)[0]
