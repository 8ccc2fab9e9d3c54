"""Columns from whole data (arrays, tensors, dicts of those, lists of per-entry values).

Per-entry values get the storage a builder would infer (``_buffers.py``), so this module sits
above both ``_columns.py`` and ``_buffers.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ._buffers import new_buffer
from ._columns import (
    ArrayColumn,
    Column,
    ObjectColumn,
    RecordColumn,
    ScalarColumn,
    freeze,
    torch_dtype_name,
)

__all__ = ["column_from_data"]


def _numpy_of_tensor(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()  # NumPy has no bfloat16; the original dtype is kept in torch_dtype
    return np.array(t.numpy())


def _scalar_array(a: np.ndarray) -> np.ndarray:
    kind = a.dtype.kind
    if kind == "b":
        return a.astype(np.bool_)
    if kind in "iu":
        return a.astype(np.int64)
    return a.astype(np.float64)


def column_from_data(data: Any, name: str) -> Column:
    """A column from whole data: an array or tensor whose first axis indexes the entries,
    a dict of such (one column per key), or a list of per-entry values.

    Args:
        data: The values of all entries.
        name: What ``data`` is (for error messages), e.g. ``"values"`` or ``"latent 'mu'"``.

    Raises:
        ValueError: if an array has no entry axis or dict columns differ in length.
    """
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise ValueError(f"{name}: a 0-d tensor has no entry axis; pass shape (N, ...)")
        arr = _numpy_of_tensor(data)
        if data.ndim == 1 and not data.is_complex():
            return ScalarColumn(freeze(_scalar_array(arr)))
        return ArrayColumn(freeze(arr), torch_dtype_name(data.dtype))
    if isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise ValueError(f"{name}: a 0-d array has no entry axis; pass shape (N, ...)")
        if data.dtype.kind in "biuf" and data.ndim == 1:
            return ScalarColumn(freeze(_scalar_array(data)))
        if data.dtype.kind in "biufc":
            return ArrayColumn(freeze(np.array(data)))
        return ObjectColumn(list(data))
    if isinstance(data, Mapping):
        fields = {str(k): column_from_data(v, f"{name}[{k!r}]") for k, v in data.items()}
        lengths = {len(c) for c in fields.values()}
        if len(lengths) > 1:
            raise ValueError(f"{name}: dict columns differ in length: {sorted(lengths)}")
        return RecordColumn(fields, lengths.pop() if lengths else 0)
    buf = None  # per-entry values: infer the storage like a builder
    for v in data:
        buf = new_buffer(v) if buf is None else buf
        buf = buf.push(v)
    return ObjectColumn([]) if buf is None else buf.finish()
