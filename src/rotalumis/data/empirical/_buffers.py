"""Growable per-quantity buffers behind :class:`~rotalumis.data.EmpiricalBuilder`.

A buffer takes one value per entry with :meth:`push`, which returns the buffer to use from
then on: itself, or a more general buffer when a value does not fit (an ``int`` column that
meets a ``float`` becomes a ``float`` column; a shape or type change falls back to a Python
list). Scalars go into :class:`array.array` (an append costs tens of nanoseconds and no
Python object is kept per entry); fixed-shape tensors and arrays into one ``(capacity,
*shape)`` NumPy array that doubles when full. :meth:`finish` copies the contents into an
immutable column, so a builder can keep growing after a snapshot.
"""

from __future__ import annotations

import numbers
from array import array
from typing import Any

import numpy as np
import torch

from ._columns import (
    ArrayColumn,
    Column,
    ObjectColumn,
    RecordColumn,
    ScalarColumn,
    freeze,
    torch_dtype_name,
)

__all__ = ["Buffer", "RecordBuffer", "new_buffer"]


def _mask(n: int, missing: list[int] | None) -> np.ndarray | None:
    if not missing:
        return None
    present = np.ones(n, dtype=np.bool_)
    present[missing] = False
    return freeze(present)


class Buffer:
    """Interface of all buffers (see the module docstring)."""

    __slots__ = ("missing",)

    def __init__(self) -> None:
        self.missing: list[int] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def push(self, v: Any) -> Buffer:
        raise NotImplementedError

    def _fill(self) -> None:
        """Append the filler value of a missing row (without recording it)."""
        raise NotImplementedError

    def push_missing(self) -> None:
        """Record that the current entry has no value for this quantity."""
        if self.missing is None:
            self.missing = []
        self.missing.append(len(self))
        self._fill()

    def pop(self) -> None:
        """Remove the last entry (to undo a half-added entry)."""
        self._pop_row()
        if self.missing and self.missing[-1] == len(self):
            self.missing.pop()

    def _pop_row(self) -> None:
        raise NotImplementedError

    def pad_missing(self, k: int) -> None:
        """Record ``k`` missing entries (a quantity first seen after ``k`` entries)."""
        for _ in range(k):
            self.push_missing()

    def to_list(self) -> list[Any]:
        """The entries as Python values (missing ones as ``None``)."""
        raise NotImplementedError

    def finish(self) -> Column:
        raise NotImplementedError

    def _to_objects(self, v: Any) -> Buffer:
        out = ObjectBuffer(self.to_list(), self.missing)
        return out.push(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real | np.bool_) and not isinstance(v, np.ndarray)


def _is_0d(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.ndim == 0 and not v.is_complex()
    return isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf"


class _ArrayBacked(Buffer):
    """A scalar buffer backed by :class:`array.array`."""

    __slots__ = ("_append", "data")
    typecode = "d"
    dtype: Any = np.float64

    def __init__(self, values: Any = (), missing: list[int] | None = None) -> None:
        self.missing = missing
        self.data = array(self.typecode, values)
        self._append = self.data.append

    def __len__(self) -> int:
        return len(self.data)

    def _fill(self) -> None:
        self._append(0)

    def _pop_row(self) -> None:
        self.data.pop()

    def pad_missing(self, k: int) -> None:
        if k > 0:
            start = len(self.data)
            self.missing = [*(self.missing or ()), *range(start, start + k)]
            self._fill()
            self.data.extend(array(self.typecode, self.data[-1:]) * (k - 1))

    def to_list(self) -> list[Any]:
        out: list[Any] = self.data.tolist()
        for i in self.missing or ():
            out[i] = None
        return out

    def finish(self) -> Column:
        data = np.frombuffer(self.data, dtype=self.dtype).astype(self.dtype, copy=True)
        return ScalarColumn(freeze(data), _mask(len(data), self.missing))


class FloatBuffer(_ArrayBacked):
    """Real numbers as ``float64``; ``int`` and ``bool`` values are converted."""

    __slots__ = ()

    def push(self, v: Any) -> Buffer:
        if type(v) is float:
            self._append(v)
            return self
        if _is_number(v) or _is_0d(v):
            self._append(float(v))
            return self
        return self._to_objects(v)

    def _fill(self) -> None:
        self._append(float("nan"))


class IntBuffer(_ArrayBacked):
    """Integers as ``int64``; becomes a float buffer at the first float value."""

    __slots__ = ()
    typecode = "q"
    dtype = np.int64

    def push(self, v: Any) -> Buffer:
        if type(v) is int or isinstance(v, int | np.integer | np.bool_):
            try:
                self._append(int(v))
            except OverflowError:  # beyond int64: keep exact Python ints
                return self._to_objects(v)
            return self
        if _is_number(v) or _is_0d(v):
            return FloatBuffer(self.data.tolist(), self.missing).push(v)
        return self._to_objects(v)


class BoolBuffer(_ArrayBacked):
    """Booleans; becomes an int or float buffer at the first other number."""

    __slots__ = ()
    typecode = "b"
    dtype = np.bool_

    def push(self, v: Any) -> Buffer:
        if type(v) is bool or isinstance(v, np.bool_):
            self._append(bool(v))
            return self
        if isinstance(v, int | np.integer):
            return IntBuffer(self.data.tolist(), self.missing).push(v)
        if _is_number(v) or _is_0d(v):
            return FloatBuffer(self.data.tolist(), self.missing).push(v)
        return self._to_objects(v)

    def to_list(self) -> list[Any]:
        return [None if v is None else bool(v) for v in super().to_list()]

    def finish(self) -> Column:
        data = np.frombuffer(self.data, dtype=np.int8).astype(np.bool_)
        return ScalarColumn(freeze(data), _mask(len(data), self.missing))


class ArrayBuffer(Buffer):
    """Tensors (``torch_dtype`` set) or NumPy arrays of one fixed shape, in ``(cap, *shape)``."""

    __slots__ = ("buf", "n", "shape", "torch_dtype")

    def __init__(self, shape: tuple[int, ...], dtype: Any, torch_dtype: str | None) -> None:
        super().__init__()
        self.shape = shape
        self.torch_dtype = torch_dtype
        self.buf = np.empty((16, *shape), dtype=dtype)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def _grow(self) -> None:
        new = np.empty((2 * self.buf.shape[0], *self.shape), dtype=self.buf.dtype)
        new[: self.n] = self.buf[: self.n]
        self.buf = new

    def _store(self, a: np.ndarray) -> None:
        if a.dtype != self.buf.dtype:
            dtype = np.result_type(self.buf.dtype, a.dtype)
            if dtype != self.buf.dtype:
                self.buf = self.buf.astype(dtype)
        if self.n == self.buf.shape[0]:
            self._grow()
        self.buf[self.n] = a
        self.n += 1

    def push(self, v: Any) -> Buffer:
        if isinstance(v, torch.Tensor):
            if self.torch_dtype is None or tuple(v.shape) != self.shape:
                return self._to_objects(v)
            if torch_dtype_name(v.dtype) != self.torch_dtype:
                promoted = torch.promote_types(getattr(torch, self.torch_dtype), v.dtype)
                self.torch_dtype = torch_dtype_name(promoted)
            t = v.detach().cpu()
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.float()
            self._store(t.numpy())
            return self
        if isinstance(v, np.ndarray):
            if self.torch_dtype is not None or v.shape != self.shape or v.dtype.kind not in "biufc":
                return self._to_objects(v)
            self._store(v)
            return self
        if self.shape == () and _is_number(v):
            self._store(np.asarray(v))
            return self
        return self._to_objects(v)

    def _fill(self) -> None:
        self._store(np.zeros(self.shape, dtype=self.buf.dtype))

    def _pop_row(self) -> None:
        self.n -= 1

    def _column(self) -> ArrayColumn:
        return ArrayColumn(freeze(self.buf[: self.n].copy()), self.torch_dtype)

    def to_list(self) -> list[Any]:
        col = self._column()
        out = [col.convert(col.data[i]) for i in range(self.n)]
        for i in self.missing or ():
            out[i] = None
        return out

    def finish(self) -> Column:
        col = self._column()
        return ArrayColumn(col.data, col.torch_dtype, _mask(self.n, self.missing))


class ObjectBuffer(Buffer):
    """Any Python objects, one per entry (the fallback)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any] | None = None, missing: list[int] | None = None) -> None:
        self.missing = missing
        self.items: list[Any] = [] if items is None else items
        for i in missing or ():
            self.items[i] = None

    def __len__(self) -> int:
        return len(self.items)

    def push(self, v: Any) -> Buffer:
        self.items.append(v)
        return self

    def _fill(self) -> None:
        self.items.append(None)

    def _pop_row(self) -> None:
        self.items.pop()

    def to_list(self) -> list[Any]:
        return list(self.items)

    def finish(self) -> Column:
        return ObjectColumn(list(self.items), _mask(len(self.items), self.missing))


class RecordBuffer(Buffer):
    """A dict-valued quantity: one buffer per key; keys absent from an entry are missing.

    Args:
        strict: Raise :class:`TypeError` for a non-dict or a non-``str`` key instead of
            falling back to a list of objects (used for the named latents).
    """

    __slots__ = ("_fast", "fields", "n", "strict")

    def __init__(self, strict: bool = False) -> None:
        super().__init__()
        self.fields: dict[str, Buffer] = {}
        # array.append of the float fields: the hot path skips a Python-level push() call
        self._fast: dict[str, Any] = {}
        self.n = 0
        self.strict = strict

    def __len__(self) -> int:
        return self.n

    def _set(self, k: str, b: Buffer) -> None:
        self.fields[k] = b
        if type(b) is FloatBuffer:
            self._fast[k] = b._append
        else:
            self._fast.pop(k, None)

    def push(self, v: Any) -> Buffer:
        if type(v) is not dict:
            return self._reject(v)
        fields = self.fields
        fast = self._fast
        n = self.n
        for k, x in v.items():
            if type(x) is float:
                ap = fast.get(k)
                if ap is not None:
                    ap(x)
                    continue
            b = fields.get(k)
            if b is None:
                if not all(type(key) is str for key in v):
                    for b in fields.values():  # undo this entry's values pushed so far
                        if len(b) > n:
                            b.pop()
                    return self._reject(v)
                b = new_buffer(x)
                b.pad_missing(n)
            nb = b.push(x)
            if nb is not b or k not in fields:
                self._set(k, nb)
        if len(v) != len(fields):
            for b in fields.values():
                if len(b) == n:
                    b.push_missing()
        self.n = n + 1
        return self

    def pop(self) -> None:
        for b in self.fields.values():
            if len(b) == self.n:
                b.pop()
        super().pop()

    def _pop_row(self) -> None:
        self.n -= 1

    def _reject(self, v: Any) -> Buffer:
        if self.strict:
            if not isinstance(v, dict):
                raise TypeError(f"latents must be a dict of name -> value, not {type(v).__name__}")
            bad = next(k for k in v if not isinstance(k, str))
            raise TypeError(f"latent names must be str, got {bad!r}")
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return self.push({str(k): x for k, x in v.items()})  # a dict subclass
        return self._to_objects(v)

    def _fill(self) -> None:
        for b in self.fields.values():
            b.push_missing()
        self.n += 1

    def to_list(self) -> list[Any]:
        cols = {k: b.to_list() for k, b in self.fields.items()}
        missing = {k: set(b.missing or ()) for k, b in self.fields.items()}
        out: list[Any] = [
            {k: c[i] for k, c in cols.items() if i not in missing[k]} for i in range(self.n)
        ]
        for i in self.missing or ():
            out[i] = None
        return out

    def finish(self) -> Column:
        fields = {k: b.finish() for k, b in self.fields.items()}
        return RecordColumn(fields, self.n, _mask(self.n, self.missing))


def new_buffer(v: Any) -> Buffer:
    """An empty buffer suited to values like ``v``."""
    if isinstance(v, bool | np.bool_):
        return BoolBuffer()
    if isinstance(v, int | np.integer):
        return IntBuffer()
    if _is_number(v):
        return FloatBuffer()
    if isinstance(v, torch.Tensor):
        dtype = torch.float32 if v.dtype in (torch.bfloat16, torch.float16) else v.dtype
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        return ArrayBuffer(tuple(v.shape), np_dtype, torch_dtype_name(v.dtype))
    if isinstance(v, np.ndarray) and v.dtype.kind in "biufc":
        return ArrayBuffer(v.shape, v.dtype, None)
    if isinstance(v, dict):
        return RecordBuffer()
    return ObjectBuffer()
