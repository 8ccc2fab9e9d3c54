"""Weighted statistics of one column, returned in the type of the stored values.

Moments (mean, variance) are computed in ``float64``; a tensor column returns a tensor (of
its own floating dtype, ``float64`` for integer tensors), an array column a ``float64``
array, a scalar column a ``float``. Order statistics (quantiles, min, max, mode) are actual
stored values and keep the column's dtype. A dict-valued column returns a dict of the
statistics of its keys, each over the entries that have that key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._columns import ArrayColumn, Column, ObjectColumn, RecordColumn, ScalarColumn
from ._weights import ess as _ess
from ._weights import normalized_weights, weighted_quantiles

__all__ = [
    "apply",
    "ess",
    "mean",
    "mode",
    "order_stat",
    "present_subset",
    "quantiles",
    "stddev",
    "variance",
]

Stat = Callable[[Column, np.ndarray], Any]


def present_subset(col: Column, logw: np.ndarray) -> tuple[Column, np.ndarray]:
    """The entries that recorded this column, and their log weights."""
    if col.present is None:
        return col, logw
    idx = np.flatnonzero(col.present)
    return col.take(idx), logw[idx]


def apply(col: Column, logw: np.ndarray, stat: Stat) -> Any:
    """Apply ``stat(column, normalised_weights)``, recursing into dict-valued columns."""
    col, logw = present_subset(col, logw)
    if isinstance(col, RecordColumn):
        return {k: apply(c, logw, stat) for k, c in col.fields.items()}
    return stat(col, normalized_weights(logw))


def ess(col: Column, logw: np.ndarray) -> Any:
    """Kish ESS over the entries that recorded ``col`` (dict columns: per key)."""
    col, logw = present_subset(col, logw)
    if isinstance(col, RecordColumn):
        return {k: ess(c, logw) for k, c in col.fields.items()}
    return _ess(logw)


def _numeric(col: Column, what: str) -> np.ndarray:
    if isinstance(col, ScalarColumn | ArrayColumn):
        return col.data
    raise TypeError(
        f"{what} is undefined for these values: their type or shape varies between entries, "
        "so they are stored as Python objects (use map() to turn them into numbers first)"
    )


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.result_type(x.dtype, np.float64), copy=False)


def _moment(col: Column, m: np.ndarray) -> Any:
    if isinstance(col, ScalarColumn):
        return float(m)
    assert isinstance(col, ArrayColumn)
    if col.torch_dtype is None:
        return m
    t = torch.from_numpy(np.array(m))
    want = getattr(torch, col.torch_dtype)
    return t.to(want) if want.is_floating_point or want.is_complex else t


def _element(col: Column, x: np.ndarray) -> Any:
    if isinstance(col, ScalarColumn):
        return x.item()
    assert isinstance(col, ArrayColumn)
    return col.convert(np.array(x))


def _mean_array(col: Column, w: np.ndarray, what: str = "mean") -> np.ndarray:
    return np.tensordot(w, _as_float(_numeric(col, what)), axes=1)


def mean(col: Column, w: np.ndarray) -> Any:
    return _moment(col, _mean_array(col, w))


def _variance_array(col: Column, w: np.ndarray) -> np.ndarray:
    x = _as_float(_numeric(col, "variance"))
    d = x - np.tensordot(w, x, axes=1)
    return np.tensordot(w, (d * np.conj(d)).real, axes=1)


def variance(col: Column, w: np.ndarray) -> Any:
    return _moment(col, _variance_array(col, w))


def stddev(col: Column, w: np.ndarray) -> Any:
    return _moment(col, np.sqrt(_variance_array(col, w)))


def quantiles(qs: np.ndarray, scalar_q: bool) -> Stat:
    """A stat giving the weighted quantiles ``qs`` (one value if ``scalar_q``)."""
    if not bool(np.all((qs >= 0) & (qs <= 1))):
        raise ValueError(f"quantile probabilities must lie in [0, 1], got {qs.tolist()}")

    def stat(col: Column, w: np.ndarray) -> Any:
        x = _numeric(col, "a quantile")
        if x.dtype.kind == "c":
            raise TypeError("quantiles are undefined for complex values")
        out = weighted_quantiles(x, w, qs)
        if scalar_q:
            return _element(col, out[0])
        return out if isinstance(col, ScalarColumn) else _element(col, out)

    return stat


def order_stat(kind: str) -> Stat:
    """``"min"`` or ``"max"`` over the entries of positive weight."""

    def stat(col: Column, w: np.ndarray) -> Any:
        x = _numeric(col, kind)[w > 0]
        return _element(col, x.min(axis=0) if kind == "min" else x.max(axis=0))

    return stat


def mode(col: Column, w: np.ndarray) -> Any:
    """The value of largest total weight (meant for discrete values)."""
    if isinstance(col, ObjectColumn):
        totals: dict[Any, float] = {}
        first: dict[Any, Any] = {}
        for v, wi in zip(col.items, w.tolist(), strict=True):
            try:
                totals[v] = totals.get(v, 0.0) + wi
            except TypeError:
                raise TypeError(f"mode needs hashable values, got {type(v).__name__}") from None
            first.setdefault(v, v)
        return first[max(totals, key=totals.__getitem__)]
    x = _numeric(col, "mode")
    flat = x.reshape(x.shape[0], -1)
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    totals_arr = np.bincount(inverse.reshape(-1), weights=w, minlength=uniq.shape[0])
    best = uniq[int(np.argmax(totals_arr))].reshape(x.shape[1:])
    return _element(col, best)
