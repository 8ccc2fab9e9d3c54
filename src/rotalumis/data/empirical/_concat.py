"""Concatenation of columns, for :meth:`Empirical.combine`.

Columns of one storage kind are concatenated as arrays (dtypes promote as in NumPy); a part
that lacks the quantity altogether (``None``: a latent one run never saw) becomes missing
rows. Parts of different kinds or shapes are merged entry by entry through a builder buffer,
which picks the most general storage, as :class:`~rotalumis.data.EmpiricalBuilder` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._buffers import Buffer, new_buffer
from ._columns import (
    ArrayColumn,
    Column,
    ObjectColumn,
    RecordColumn,
    ScalarColumn,
    freeze,
    torch_dtype_name,
)

__all__ = ["concat_columns", "concat_parts"]


def _mask(parts: Sequence[Column | None], lengths: Sequence[int]) -> np.ndarray | None:
    if all(c is not None and c.present is None for c in parts):
        return None
    masks = [
        np.zeros(n, np.bool_)
        if c is None
        else (np.ones(n, np.bool_) if c.present is None else c.present)
        for c, n in zip(parts, lengths, strict=True)
    ]
    return freeze(np.concatenate(masks))


def _fast(parts: Sequence[Column | None], lengths: Sequence[int]) -> Column | None:
    """Concatenate as arrays when every present part has the same kind (and shape)."""
    given = [c for c in parts if c is not None]
    kinds = {type(c) for c in given}
    if len(kinds) != 1:
        return None
    first = given[0]
    mask = _mask(parts, lengths)
    if isinstance(first, ScalarColumn | ArrayColumn):
        datas = [c.data for c in given if isinstance(c, ScalarColumn | ArrayColumn)]
        if len({d.shape[1:] for d in datas}) != 1:
            return None
        torch_dtypes = {c.torch_dtype for c in given if isinstance(c, ArrayColumn)}
        if len(torch_dtypes) > 1 and None in torch_dtypes:
            return None  # tensors and NumPy arrays: keep each row's own type
        dtype = np.result_type(*datas)
        filler = np.nan if dtype.kind in "fc" else 0
        shape = datas[0].shape[1:]
        blocks = [
            c.data if isinstance(c, ScalarColumn | ArrayColumn) else np.full((n, *shape), filler)
            for c, n in zip(parts, lengths, strict=True)
        ]
        data = freeze(np.concatenate(blocks).astype(dtype, copy=False))
        if isinstance(first, ScalarColumn):
            return ScalarColumn(data, mask)
        names = [t for t in torch_dtypes if t is not None]
        tdt = None
        if names:
            promoted = getattr(torch, names[0])
            for t in names[1:]:
                promoted = torch.promote_types(promoted, getattr(torch, t))
            tdt = torch_dtype_name(promoted)
        return ArrayColumn(data, tdt, mask)
    if isinstance(first, ObjectColumn):
        items: list[Any] = []
        for c, n in zip(parts, lengths, strict=True):
            items.extend([None] * n if not isinstance(c, ObjectColumn) else c.items)
        return ObjectColumn(items, mask)
    assert isinstance(first, RecordColumn)
    keys: dict[str, None] = {}
    for c in given:
        assert isinstance(c, RecordColumn)
        keys.update(dict.fromkeys(c.fields))
    fields = {
        k: concat_columns(
            [c.fields.get(k) if isinstance(c, RecordColumn) else None for c in parts], lengths
        )
        for k in keys
    }
    return RecordColumn(fields, int(sum(lengths)), mask)


def concat_columns(parts: Sequence[Column | None], lengths: Sequence[int]) -> Column:
    """One column of ``sum(lengths)`` entries from ``parts`` (``None``: all rows missing)."""
    fast = _fast(parts, lengths)
    if fast is not None:
        return fast
    buf: Buffer | None = None
    pending = 0
    for c, n in zip(parts, lengths, strict=True):
        for i in range(n):
            if c is None or (c.present is not None and not c.present[i]):
                if buf is None:
                    pending += 1
                else:
                    buf.push_missing()
                continue
            v = c.row(i)
            if buf is None:
                buf = new_buffer(v)
                buf.pad_missing(pending)
            buf = buf.push(v)
    if buf is None:
        return ScalarColumn(freeze(np.full(pending, np.nan)), _mask(parts, lengths))
    return buf.finish()


Parts = tuple[Column, np.ndarray, dict[str, Column], list[Any] | None]


def concat_parts(parts: Sequence[Parts]) -> Parts:
    """Concatenate (values, log weights, latents, traces) of several Empiricals.

    Latents present in only some parts are missing in the others' entries; traces are kept
    if any part kept them (``None`` for the entries of the others).
    """
    lengths = [int(logw.shape[0]) for _, logw, _, _ in parts]
    values = concat_columns([p[0] for p in parts], lengths)
    names: dict[str, None] = {}
    for p in parts:
        names.update(dict.fromkeys(p[2]))
    latents = {k: concat_columns([p[2].get(k) for p in parts], lengths) for k in names}
    traces: list[Any] | None = None
    if any(p[3] is not None for p in parts):
        traces = []
        for p, n in zip(parts, lengths, strict=True):
            traces.extend([None] * n if p[3] is None else p[3])
    logw = freeze(np.concatenate([p[1] for p in parts]))
    return values, logw, latents, traces
