"""Low-level FlatBuffers reading and writing for PPX, fast and bounds-checked.

The code that ``flatc`` generated from ``schema/ppx.fbs`` (in ``ppx_generated/``) defines the
wire format and is the reference the tests hold this module to. It is, however, too slow for
the hot path of inference (building one ``Sample`` with ``flatbuffers.Builder`` costs ~40 µs,
as much as a ZeroMQ round trip) and, like every FlatBuffers Python reader, it does not verify
buffers, so a truncated or hostile message reads garbage or raises deep inside ``struct``.

This module therefore reads and writes the same layout directly with :mod:`struct`:

* **Writing** lays objects out front to back (FlatBuffers offsets to tables, strings and
  vectors are unsigned and must point forward): root offset, ``Message`` table, body table,
  then its strings, nested tables and vectors, every object starting 8-byte aligned so that
  float64 vectors are aligned as the format requires.
* **Reading** follows offsets from any valid layout (those of ``flatbuffers.Builder``, which
  builds back to front, included) and checks every offset, vtable and length against the
  buffer before using it, raising :class:`~rotalumis.core.errors.ProtocolError` otherwise.
"""

from __future__ import annotations

import math
import numbers
import struct
import sys
from array import array
from typing import Any

import torch

from rotalumis.core.errors import ProtocolError

__all__ = [
    "Reader",
    "Table",
    "align8",
    "patch_offset",
    "put_offset_table",
    "put_string",
    "put_tensor",
    "tensor_parts",
]

_U32 = struct.Struct("<I")
_U16x2 = struct.Struct("<HH")
_pack_u32 = _U32.pack
_pack_into_u32 = _U32.pack_into
_LITTLE = sys.byteorder == "little"
_PAD = (b"", b"\0" * 7, b"\0" * 6, b"\0" * 5, b"\0" * 4, b"\0" * 3, b"\0" * 2, b"\0")

# ---------------------------------------------------------------------------------- writing


def align8(out: bytearray) -> None:
    """Pad ``out`` with zero bytes to a multiple of 8."""
    out += _PAD[len(out) & 7]


def put_string(out: bytearray, text: str) -> int:
    """Append a FlatBuffers string (length, UTF-8 bytes, NUL); return its position."""
    out += _PAD[len(out) & 7]
    pos = len(out)
    data = text.encode()
    out += _pack_u32(len(data))
    out += data
    out += b"\0"
    return pos


# A tensor table preceded by its vtable: vtable [8, 12, 4, 8], table (soffset 8, data offset 8,
# shape offset 8 + 8n), then data vector (n, n doubles) and shape vector (m, m int32).
_TENSOR_FORMATS: dict[tuple[int, int], struct.Struct] = {}
_TENSOR_HEAD = struct.Struct("<HHHHiIII")
_SCALAR_TENSOR = struct.Struct("<HHHHiIIIdI")
_NONE_TENSOR = _TENSOR_HEAD.pack(8, 12, 4, 8, 8, 8, 8, 0) + _pack_u32(1) + _pack_u32(0)


def tensor_parts(value: Any) -> tuple[list[float] | bytes, list[int]]:
    """Split a value into PPX tensor data (floats, or float64 bytes) and shape.

    ``None`` becomes empty data with shape ``[0]``; a Python number data ``[x]`` with shape
    ``[]``; a tensor (or array-like) its row-major float64 elements and its shape.

    Raises:
        ProtocolError: if the value is not a number, tensor or array of numbers.
    """
    if value is None:
        return [], [0]
    if isinstance(value, numbers.Real):
        return [float(value)], []
    if type(value) is tuple or type(value) is list:  # e.g. a scalar-path Categorical's probs
        try:
            return [float(x) for x in value], [len(value)]
        except (TypeError, ValueError):
            pass  # nested or non-numeric: let torch sort it out
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ProtocolError(
                f"cannot send a value of type {type(value).__name__} as a PPX tensor: "
                f"it must be None, a number, a tensor or an array of numbers"
            ) from exc
    t = value.detach().to(device="cpu", dtype=torch.float64).contiguous()
    shape = list(t.shape)
    if t.numel() <= 16:
        return t.reshape(-1).tolist(), shape
    return t.numpy().tobytes() if _LITTLE else t.numpy().astype("<f8").tobytes(), shape


def put_tensor(out: bytearray, value: Any) -> int:
    """Append a ``Tensor`` table holding ``value`` (see :func:`tensor_parts`); return it."""
    out += _PAD[len(out) & 7]
    base = len(out)
    if value is None:
        out += _NONE_TENSOR
        return base + 8
    if isinstance(value, float | int) and not isinstance(value, bool):
        out += _SCALAR_TENSOR.pack(8, 12, 4, 8, 8, 8, 16, 1, value, 0)
        return base + 8
    data, shape = tensor_parts(value)
    m = len(shape)
    if isinstance(data, bytes):
        n = len(data) // 8
        out += _TENSOR_HEAD.pack(8, 12, 4, 8, 8, 8, 8 + 8 * n, n)
        out += data
        out += _pack_u32(m)
        out += struct.pack(f"<{m}i", *shape)
        return base + 8
    n = len(data)
    fmt = _TENSOR_FORMATS.get((n, m))
    if fmt is None:
        fmt = struct.Struct(f"<HHHHiIII{n}dI{m}i")
        if len(_TENSOR_FORMATS) < 512:
            _TENSOR_FORMATS[(n, m)] = fmt
    out += fmt.pack(8, 12, 4, 8, 8, 8, 8 + 8 * n, n, *data, m, *shape)
    return base + 8


_OFFSET_TABLES: dict[int, tuple[bytes, int]] = {}


def put_offset_table(out: bytearray, num_fields: int) -> int:
    """Append a table of ``num_fields`` offset fields (all zero, to be patched); return it.

    Field ``i`` lives at ``table + 4 + 4 * i``; patch it with :func:`patch_offset`.
    """
    cached = _OFFSET_TABLES.get(num_fields)
    if cached is None:
        vt_size = 4 + 2 * num_fields
        vt = struct.pack(
            f"<HH{num_fields}H",
            vt_size,
            4 + 4 * num_fields,
            *(4 + 4 * i for i in range(num_fields)),
        )
        vt += b"\0" * (-len(vt) % 4)
        head = vt + struct.pack(f"<i{num_fields}I", len(vt), *([0] * num_fields))
        cached = _OFFSET_TABLES[num_fields] = (head, len(vt))
    out += _PAD[len(out) & 7]
    table = len(out) + cached[1]
    out += cached[0]
    return table


def patch_offset(out: bytearray, field_pos: int, target: int) -> None:
    """Point the offset field at ``field_pos`` to the object at ``target`` (forward)."""
    _pack_into_u32(out, field_pos, target - field_pos)


# ---------------------------------------------------------------------------------- reading


class Table:
    """A bounds-checked view of one FlatBuffers table (its position and vtable)."""

    __slots__ = ("pos", "size", "vt", "vt_size")

    def __init__(self, pos: int, vt: int, vt_size: int, size: int) -> None:
        self.pos = pos
        self.vt = vt
        self.vt_size = vt_size
        self.size = size


class Reader:
    """Reads PPX objects out of one buffer, checking every offset and length.

    Args:
        buf: The message bytes.

    Raises:
        ProtocolError: from every method, when the buffer is truncated or inconsistent;
            ``where`` names the field being read.
    """

    __slots__ = ("buf", "n")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)

    def fail(self, where: str, what: str) -> ProtocolError:
        """The error for a bad ``where``: ``what`` happened."""
        return ProtocolError(f"malformed PPX message ({self.n} bytes), {where}: {what}")

    def u32(self, pos: int, where: str) -> int:
        """The little-endian uint32 at ``pos``."""
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(where, f"offset {pos} lies past the end (truncated message?)")
        return int(_U32.unpack_from(self.buf, pos)[0])

    def table(self, pos: int, where: str) -> Table:
        """The table at ``pos``, with its vtable checked."""
        buf = self.buf
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(where, f"table at {pos} lies past the end (truncated message?)")
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        if vt < 0 or vt + 4 > self.n:
            raise self.fail(where, f"vtable at {vt} lies outside the message")
        vt_size, size = _U16x2.unpack_from(buf, vt)
        if vt_size < 4 or vt_size & 1 or vt + vt_size > self.n:
            raise self.fail(where, f"vtable at {vt} has an invalid size {vt_size}")
        if size < 4 or pos + size > self.n:
            raise self.fail(where, f"table at {pos} of size {size} lies past the end")
        return Table(pos, vt, vt_size, size)

    def field(self, t: Table, slot: int, width: int, where: str) -> int:
        """Absolute position of field ``slot`` of ``t`` (0 when absent)."""
        o = 4 + 2 * slot
        if o >= t.vt_size:
            return 0
        off = struct.unpack_from("<H", self.buf, t.vt + o)[0]
        if off == 0:
            return 0
        if off + width > t.size:
            raise self.fail(where, f"field lies outside its table (offset {off}, size {t.size})")
        return int(t.pos + off)

    def ref(self, field_pos: int, where: str) -> int:
        """Follow the offset field at ``field_pos`` to the object it points to."""
        target = field_pos + self.u32(field_pos, where)
        if target + 4 > self.n:
            raise self.fail(where, f"offset points to {target}, past the end (truncated?)")
        return target

    def ubyte(self, t: Table, slot: int, default: int, where: str) -> int:
        """A uint8/bool field of ``t`` (``default`` when absent)."""
        pos = self.field(t, slot, 1, where)
        return default if pos == 0 else int(self.buf[pos])

    def string(self, t: Table, slot: int, where: str) -> str | None:
        """A string field of ``t`` (``None`` when absent)."""
        pos = self.field(t, slot, 4, where)
        if pos == 0:
            return None
        p = self.ref(pos, where)
        length = self.u32(p, where)
        if p + 4 + length > self.n:
            raise self.fail(where, f"string of {length} bytes runs past the end")
        try:
            return self.buf[p + 4 : p + 4 + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(where, f"string is not valid UTF-8 ({exc.reason})") from None

    def subtable(self, t: Table, slot: int, where: str) -> Table | None:
        """A table-valued (or union-valued) field of ``t`` (``None`` when absent)."""
        pos = self.field(t, slot, 4, where)
        if pos == 0:
            return None
        return self.table(self.ref(pos, where), where)

    def vector(self, t: Table, slot: int, elem: int, where: str) -> tuple[int, int]:
        """``(start, length)`` of a vector field of ``t``; ``(0, 0)`` when absent."""
        pos = self.field(t, slot, 4, where)
        if pos == 0:
            return 0, 0
        p = self.ref(pos, where)
        length = self.u32(p, where)
        if p + 4 + length * elem > self.n:
            raise self.fail(where, f"vector of {length} elements runs past the end")
        return p + 4, length

    def tensor(self, t: Table, slot: int, where: str) -> Any:
        """A ``Tensor`` field as a rotalumis value: ``None``, a float or a tensor.

        Empty (or absent) data is ``None``; one element with shape ``[]`` or ``[1]`` is a
        Python float; anything else a float tensor (default dtype) of the given shape.
        """
        tt = self.subtable(t, slot, where)
        if tt is None:
            return None
        start, n = self.vector(tt, 0, 8, where + ".data")
        if n == 0:
            return None
        sstart, m = self.vector(tt, 1, 4, where + ".shape")
        buf = self.buf
        if n == 1 and m <= 1:
            if m == 1 and _U32.unpack_from(buf, sstart)[0] != 1:
                raise self.fail(where, "shape does not match its 1 data element")
            return struct.unpack_from("<d", buf, start)[0]
        shape = list(struct.unpack_from(f"<{m}i", buf, sstart)) if m else [n]
        if min(shape) < 0 or math.prod(shape) != n:
            raise self.fail(where, f"shape {shape} does not match its {n} data elements")
        if n <= 16:
            data = torch.tensor(struct.unpack_from(f"<{n}d", buf, start), dtype=torch.float64)
        else:
            arr = array("d", buf[start : start + 8 * n])
            if not _LITTLE:
                arr.byteswap()
            data = torch.frombuffer(arr, dtype=torch.float64).clone()
        return data.to(torch.get_default_dtype()).reshape(shape)
