"""Immutable columns: how an :class:`~rotalumis.data.Empirical` stores one quantity.

One column holds one quantity (the result, a dict field of the result, a named latent) for
all ``N`` entries:

=================  ===========================================================================
column             storage
=================  ===========================================================================
``ScalarColumn``   1-D ``float64``, ``int64`` or ``bool`` array; rows are Python numbers
``ArrayColumn``    ``(N, *shape)`` array; rows are tensors (``torch_dtype`` set) or arrays
``RecordColumn``   one column per key of a dict-valued quantity; rows are dicts
``ObjectColumn``   a Python list: values whose type or shape varies between entries
=================  ===========================================================================

Every column may carry ``present``, a boolean mask of the entries that recorded it (a latent
that only some traces visit, a dict key only some results have); ``None`` means all did.
Missing rows hold a filler (NaN, 0, ``None``) that statistics never see.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import torch

__all__ = [
    "ArrayColumn",
    "Column",
    "ObjectColumn",
    "RecordColumn",
    "ScalarColumn",
    "column_to_numpy",
    "column_to_torch",
    "freeze",
    "torch_dtype_name",
]


def freeze(a: np.ndarray) -> np.ndarray:
    """Mark ``a`` read-only (columns are shared between Empiricals) and return it."""
    a.flags.writeable = False
    return a


def _take_mask(present: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    if present is None:
        return None
    sub = present[idx]
    return None if bool(sub.all()) else freeze(sub)


@dataclass(frozen=True, eq=False)
class ScalarColumn:
    """Python numbers in a 1-D ``float64``/``int64``/``bool`` array."""

    data: np.ndarray
    present: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def row(self, i: int) -> Any:
        return None if self.present is not None and not self.present[i] else self.data[i].item()

    def take(self, idx: np.ndarray) -> ScalarColumn:
        return ScalarColumn(freeze(self.data[idx]), _take_mask(self.present, idx))

    def rows(self) -> Iterator[Any]:
        if self.present is None:
            return iter(self.data.tolist())
        return (v if p else None for v, p in zip(self.data.tolist(), self.present, strict=True))


@dataclass(frozen=True, eq=False)
class ArrayColumn:
    """Fixed-shape tensors or arrays in one ``(N, *shape)`` array.

    ``torch_dtype`` is the name of the original tensor dtype (e.g. ``"float32"``) when the
    values were tensors, ``None`` when they were NumPy arrays.
    """

    data: np.ndarray
    torch_dtype: str | None = None
    present: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def convert(self, a: np.ndarray) -> Any:
        """Return ``a`` as the caller's type: a tensor (of the original dtype) or an array."""
        if self.torch_dtype is None:
            return a
        t = torch.from_numpy(np.array(a))  # copy: tensors must not alias read-only storage
        want = getattr(torch, self.torch_dtype)
        return t if t.dtype == want else t.to(want)

    def row(self, i: int) -> Any:
        if self.present is not None and not self.present[i]:
            return None
        return self.convert(self.data[i])

    def take(self, idx: np.ndarray) -> ArrayColumn:
        return ArrayColumn(freeze(self.data[idx]), self.torch_dtype, _take_mask(self.present, idx))

    def rows(self) -> Iterator[Any]:
        return (self.row(i) for i in range(len(self)))


@dataclass(frozen=True, eq=False)
class ObjectColumn:
    """Values of varying type or shape, one Python object per entry."""

    items: list[Any]
    present: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def row(self, i: int) -> Any:
        return self.items[i]

    def take(self, idx: np.ndarray) -> ObjectColumn:
        items = self.items
        return ObjectColumn([items[i] for i in idx.tolist()], _take_mask(self.present, idx))

    def rows(self) -> Iterator[Any]:
        return iter(self.items)


@dataclass(frozen=True, eq=False)
class RecordColumn:
    """A dict-valued quantity: one column per key, all of the same length."""

    fields: Mapping[str, Column]
    length: int
    present: np.ndarray | None = None

    def __len__(self) -> int:
        return self.length

    def row(self, i: int) -> Any:
        if self.present is not None and not self.present[i]:
            return None
        out = {}
        for k, c in self.fields.items():
            if c.present is None or c.present[i]:
                out[k] = c.row(i)
        return out

    def take(self, idx: np.ndarray) -> RecordColumn:
        fields = {k: c.take(idx) for k, c in self.fields.items()}
        return RecordColumn(fields, int(idx.shape[0]), _take_mask(self.present, idx))

    def rows(self) -> Iterator[Any]:
        return (self.row(i) for i in range(self.length))


Column: TypeAlias = ScalarColumn | ArrayColumn | ObjectColumn | RecordColumn


def torch_dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def column_to_numpy(col: Column) -> Any:
    """A column as an array of shape ``(N, ...)`` (dict of those; object array)."""
    if isinstance(col, ScalarColumn | ArrayColumn):
        return col.data
    if isinstance(col, RecordColumn):
        return {k: column_to_numpy(c) for k, c in col.fields.items()}
    out = np.empty(len(col.items), dtype=object)
    for i, v in enumerate(col.items):
        out[i] = v
    return freeze(out)


def column_to_torch(col: Column) -> Any:
    """A column as a tensor of shape ``(N, ...)`` (dict of those)."""
    if isinstance(col, ScalarColumn):
        return torch.from_numpy(col.data.copy())
    if isinstance(col, ArrayColumn):
        return col.convert(col.data) if col.torch_dtype else torch.from_numpy(col.data.copy())
    if isinstance(col, RecordColumn):
        return {k: column_to_torch(c) for k, c in col.fields.items()}
    raise TypeError("to_torch() needs numbers or fixed-shape tensors, not values of varying type")
