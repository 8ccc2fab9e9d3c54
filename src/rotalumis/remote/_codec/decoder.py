"""Decode PPX messages: a fast path for the hot loop, a thorough one for diagnostics.

:func:`decode` first reads the message with compact, inlined code that still checks every
vtable, field, offset and length against the buffer (so malformed input never reads out of
range or returns silently garbled data). Anything it rejects is read again by the
field-by-field :class:`~rotalumis.remote._codec.wire.Reader`, whose only purpose is to say exactly
what is wrong (``Sample.distribution.Normal.mean: vector of 3 elements runs past the end``)
in the :class:`~rotalumis.core.errors.ProtocolError`.

Messages without fields (``Run``, ``ObserveResult``, ``TagResult``, ``Reset``) are cached by
their bytes, so that the requests a server sees most cost a dictionary look-up.
"""

from __future__ import annotations

import math
import struct
import sys
from typing import Any

import torch

from rotalumis.core import distributions as _distributions
from rotalumis.core.distributions import Distribution
from rotalumis.core.errors import DistributionError, ProtocolError

from ..messages import (
    DISTRIBUTION_FIELDS,
    DISTRIBUTION_TYPES,
    Handshake,
    HandshakeResult,
    Observe,
    ObserveResult,
    PPXMessage,
    Reset,
    Run,
    RunResult,
    Sample,
    SampleResult,
    Tag,
    TagResult,
)
from .layouts import LayoutCache
from .wire import Reader, Table

__all__ = ["decode"]

_i32 = struct.Struct("<i").unpack_from
_u32 = struct.Struct("<I").unpack_from
_hh = struct.Struct("<HH").unpack_from
_f64 = struct.Struct("<d").unpack_from

_BIG_ENDIAN = sys.byteorder == "big"
_NAMES = {v: k for k, v in DISTRIBUTION_TYPES.items()}
_FIELDS = {v: DISTRIBUTION_FIELDS[k] for k, v in DISTRIBUTION_TYPES.items()}
_CLASSES: dict[int, type[Distribution]] = {}
_EMPTY_TYPES: dict[int, PPXMessage] = {
    3: Run(),
    8: ObserveResult(),
    10: TagResult(),
    11: Reset(),
}
_EMPTY_CACHE: dict[bytes, PPXMessage] = {}
_LAYOUTS = LayoutCache()


class _Bad(Exception):
    """The fast path refuses the buffer; the thorough reader will say why."""


_SLOTS = [struct.Struct(f"<{k}H").unpack_from for k in range(8)]


def _table(buf: bytes, n: int, pos: int, slots: int) -> tuple[tuple[int, ...], int]:
    """Field offsets (0: absent; padded to ``slots``) and inline size of the table at ``pos``.

    Checks that the table and its vtable lie inside the buffer; callers check each offset
    they use against the size.
    """
    if pos + 4 > n:
        raise _Bad
    vt = pos - _i32(buf, pos)[0]
    if vt < 0:
        raise _Bad
    vts, size = _hh(buf, vt)
    if vts < 4 or vts & 1 or vt + vts > n or pos + size > n:
        raise _Bad
    k = (vts - 4) >> 1
    if k >= slots:
        return _SLOTS[slots](buf, vt + 4), size
    return _SLOTS[k](buf, vt + 4) + (0,) * (slots - k), size


def _target(buf: bytes, n: int, pos: int, off: int, size: int) -> int:
    """Position of the object the offset field at ``pos + off`` points to."""
    if off + 4 > size:
        raise _Bad
    p = pos + off
    p += _u32(buf, p)[0]
    if p + 4 > n:
        raise _Bad
    return int(p)


def _string(buf: bytes, n: int, pos: int, off: int, size: int) -> str:
    if not off:
        return ""
    p = _target(buf, n, pos, off, size)
    length = _u32(buf, p)[0]
    if p + 4 + length > n:
        raise _Bad
    return buf[p + 4 : p + 4 + length].decode("utf-8")


def _tensor(buf: bytes, n: int, pos: int, off: int, size: int, rec: list[int] | None = None) -> Any:
    """The Tensor an offset field points to: ``None`` (absent or empty data), a float (one
    element with shape [] or [1]) or a tensor of the default dtype."""
    if not off:
        return None
    p = _target(buf, n, pos, off, size)
    (doff, soff), tsize = _table(buf, n, p, 2)
    if not doff:
        return None
    d = _target(buf, n, p, doff, tsize)
    count = _u32(buf, d)[0]
    if count == 0:
        return None
    if d + 4 + 8 * count > n:
        raise _Bad
    m = 0
    if soff:
        s = _target(buf, n, p, soff, tsize)
        m = _u32(buf, s)[0]
        if s + 4 + 4 * m > n:
            raise _Bad
    if count == 1 and (m == 0 or (m == 1 and _i32(buf, s + 4)[0] == 1)):
        if rec is not None:
            rec.append(d + 4)
        return _f64(buf, d + 4)[0]
    shape = list(struct.unpack_from(f"<{m}i", buf, s + 4)) if m else [count]
    if min(shape) < 0 or math.prod(shape) != count:
        raise _Bad
    if count <= 64 or _BIG_ENDIAN:
        data = torch.tensor(struct.unpack_from(f"<{count}d", buf, d + 4), dtype=torch.float64)
    else:
        data = torch.frombuffer(bytearray(buf[d + 4 : d + 4 + 8 * count]), dtype=torch.float64)
    return data.to(torch.get_default_dtype()).reshape(shape)


def _distribution(
    buf: bytes,
    n: int,
    pos: int,
    offs: tuple[int, ...],
    size: int,
    kind: str,
    address: str,
    rec: list[int],
) -> Distribution:
    """The distribution of a Sample/Observe whose type and table are fields 2 and 3."""
    toff, doff = offs[2], offs[3]
    if not toff or not doff or toff >= size:
        raise _Bad
    dtype = buf[pos + toff]
    fields = _FIELDS.get(dtype)
    if fields is None:
        raise _Bad
    dp = _target(buf, n, pos, doff, size)
    k = len(fields)
    poffs, dsize = _table(buf, n, dp, k)
    params = []
    for i in range(k):
        value = _tensor(buf, n, dp, poffs[i], dsize, rec)
        if value is None:
            raise _Bad
        params.append(value)
    if len(rec) == k:  # scalar parameters only: a learnable layout
        rec.append(-dtype)
    return _construct(dtype, params, kind, address)


def _learn_site(
    buf: bytes, rec: list[int], kind: str, address: str, name: str | None, flag: bool
) -> None:
    """Remember a Sample/Observe whose numbers are all scalars (see :mod:`.layouts`).

    ``rec`` holds the parameters' positions, ``-dtype``, then the value's position if any;
    ``flag`` is the Sample's control, or whether the Observe carries a value.
    """
    cut = next(i for i, p in enumerate(rec) if p < 0)
    dtype = -rec[cut]
    positions = rec[:cut] + rec[cut + 1 :]
    if kind == "Sample":

        def make(v: list[float]) -> PPXMessage:
            return Sample(address, name, _construct(dtype, v, kind, address), flag)

    else:

        def make(v: list[float]) -> PPXMessage:
            value = v.pop() if flag else None
            return Observe(address, name, _construct(dtype, v, kind, address), value)

    _LAYOUTS.learn(buf, positions, make)


def _fast(buf: bytes) -> PPXMessage:
    n = len(buf)
    if n < 12:
        raise _Bad
    root = _u32(buf, 0)[0]
    (toff, boff), size = _table(buf, n, root, 2)
    if not toff or not boff or toff >= size:
        raise _Bad
    body_type = buf[root + toff]
    bp = _target(buf, n, root, boff, size)
    if body_type == 6 or body_type == 4:
        (off,), size = _table(buf, n, bp, 1)
        rec: list[int] = []
        value = _tensor(buf, n, bp, off, size, rec)
        cls = SampleResult if body_type == 6 else RunResult
        if value is None or rec:
            _LAYOUTS.learn(buf, rec, lambda v: cls(v[0] if v else None))
        return cls(value)
    if body_type == 5 or body_type == 7:
        offs, size = _table(buf, n, bp, 5)
        address = _string(buf, n, bp, offs[0], size)
        name = _string(buf, n, bp, offs[1], size) or None
        rec = []
        kind = "Sample" if body_type == 5 else "Observe"
        dist = _distribution(buf, n, bp, offs, size, kind, address, rec)
        if body_type == 5:
            coff = offs[4]
            if coff >= size:
                raise _Bad
            control = bool(buf[bp + coff]) if coff else True
            if rec and rec[-1] < 0:
                _learn_site(buf, rec, kind, address, name, control)
            return Sample(address, name, dist, control)
        value = _tensor(buf, n, bp, offs[4], size, rec)
        if (value is None and rec and rec[-1] < 0) or (
            type(value) is float and len(rec) > 1 and rec[-2] < 0
        ):  # scalar parameters, and a scalar value or none
            _learn_site(buf, rec, kind, address, name, value is not None)
        return Observe(address, name, dist, value)
    empty = _EMPTY_TYPES.get(body_type)
    if empty is not None:
        _table(buf, n, bp, 0)
        if len(_EMPTY_CACHE) < 64:
            _EMPTY_CACHE[bytes(buf)] = empty
        return empty
    if body_type == 9:
        offs, size = _table(buf, n, bp, 3)
        address = _string(buf, n, bp, offs[0], size)
        name = _string(buf, n, bp, offs[1], size) or None
        return Tag(address, name, _tensor(buf, n, bp, offs[2], size))
    if body_type == 1:
        (off,), size = _table(buf, n, bp, 1)
        return Handshake(_string(buf, n, bp, off, size))
    if body_type == 2:
        offs, size = _table(buf, n, bp, 2)
        return HandshakeResult(
            _string(buf, n, bp, offs[0], size), _string(buf, n, bp, offs[1], size)
        )
    raise _Bad


def decode(buf: bytes) -> PPXMessage:
    """Parse one PPX message, checking it thoroughly.

    Args:
        buf: The bytes received (with or without the ``"PPXF"`` identifier).

    Returns:
        The message object (see :mod:`rotalumis.remote.messages`).

    Raises:
        ProtocolError: if the bytes are truncated, inconsistent, of an unknown message or
            distribution type, or lack a required field; the message says which.
        DistributionError: if a distribution's parameters are invalid (names the address).
    """
    cached = _EMPTY_CACHE.get(buf)  # type: ignore[call-overload,unused-ignore]
    if cached is not None:
        return cached
    cached = _LAYOUTS.lookup(buf)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if type(buf) is not bytes:
        if not isinstance(buf, bytearray | memoryview):
            raise TypeError(f"decode() needs bytes, got {type(buf).__name__}")
        buf = bytes(buf)
    try:
        return _fast(buf)
    except (_Bad, struct.error, UnicodeDecodeError, IndexError):
        pass  # unusual layout or malformed: the thorough reader decides and explains
    try:
        return _thorough(buf)
    except struct.error as exc:  # pragma: no cover - every read is range-checked first
        raise ProtocolError(f"malformed PPX message of {len(buf)} bytes: {exc}") from None


def _thorough(buf: bytes) -> PPXMessage:
    """Read ``buf`` field by field; raise a :class:`ProtocolError` saying what is wrong."""
    r = Reader(buf)
    if r.n < 12:
        raise ProtocolError(f"PPX message too short: {r.n} bytes (truncated or not PPX)")
    t = r.table(r.u32(0, "root offset"), "Message")
    body_type = r.ubyte(t, 0, 0, "Message.body_type")
    if not 1 <= body_type <= 11:
        what = "has no body" if body_type == 0 else f"has unknown type {body_type}"
        raise ProtocolError(f"PPX message {what} (PPX 1.0 knows types 1..11)")
    kind = _KINDS[body_type]
    body = r.subtable(t, 1, "Message.body")
    if body is None:
        raise ProtocolError(f"PPX {kind} message has no body table")
    empty = _EMPTY_TYPES.get(body_type)
    if empty is not None:
        return empty
    if kind in ("RunResult", "SampleResult"):
        value = r.tensor(body, 0, f"{kind}.result")
        return RunResult(value) if kind == "RunResult" else SampleResult(value)
    if kind == "Handshake":
        return Handshake(r.string(body, 0, "Handshake.system_name") or "")
    if kind == "HandshakeResult":
        return HandshakeResult(
            r.string(body, 0, "HandshakeResult.system_name") or "",
            r.string(body, 1, "HandshakeResult.model_name") or "",
        )
    address = r.string(body, 0, f"{kind}.address") or ""
    name = r.string(body, 1, f"{kind}.name") or None
    if kind == "Tag":
        return Tag(address, name, r.tensor(body, 2, "Tag.value"))
    dist = _thorough_distribution(r, body, kind, address)
    if kind == "Sample":
        return Sample(address, name, dist, bool(r.ubyte(body, 4, 1, "Sample.control")))
    return Observe(address, name, dist, r.tensor(body, 4, "Observe.value"))


def _thorough_distribution(r: Reader, t: Table, kind: str, address: str) -> Distribution:
    dtype = r.ubyte(t, 2, 0, f"{kind}.distribution_type")
    if dtype == 0:
        raise ProtocolError(f"PPX {kind} at address {address!r} has no distribution")
    name = _NAMES.get(dtype)
    if name is None:
        raise ProtocolError(
            f"PPX {kind} at address {address!r}: unknown distribution type {dtype} "
            f"(PPX 1.0 knows 1..{len(_NAMES)})"
        )
    dt = r.subtable(t, 3, f"{kind}.distribution")
    if dt is None:
        raise ProtocolError(f"PPX {kind} at address {address!r}: the {name} table is missing")
    params = []
    for i, field in enumerate(DISTRIBUTION_FIELDS[name]):
        value = r.tensor(dt, i, f"{kind}.{name}.{field}")
        if value is None:
            raise ProtocolError(f"PPX {kind} at address {address!r}: {name}.{field} is missing")
        params.append(value)
    return _construct(dtype, params, kind, address)


def _construct(dtype: int, params: list[Any], kind: str, address: str) -> Distribution:
    """Build the rotalumis distribution; invalid parameters name the site."""
    if dtype == 3 and type(params[0]) is float:  # one category: [p] reads as the scalar p
        params[0] = [params[0]]
    cls = _CLASSES.get(dtype)
    if cls is None:
        cls = _CLASSES[dtype] = getattr(_distributions, _NAMES[dtype])
    try:
        return cls(*params)
    except DistributionError as exc:
        raise DistributionError(f"PPX {kind} at address {address!r}: {exc}") from exc


_KINDS = {
    1: "Handshake",
    2: "HandshakeResult",
    3: "Run",
    4: "RunResult",
    5: "Sample",
    6: "SampleResult",
    7: "Observe",
    8: "ObserveResult",
    9: "Tag",
    10: "TagResult",
    11: "Reset",
}
