"""Encode PPX 1.0 messages: :mod:`rotalumis.remote.messages` objects -> bytes on the wire.

The layout is the one ``flatc`` defines for ``schema/ppx.fbs`` (byte-compatible with pyprob
and pyprob_cpp); :mod:`.wire` explains why it is written and read by hand here. Readers of
PPX do not require the ``"PPXF"`` file identifier (no peer writes it), so neither do we, and
we do not write it either.

Conventions (see ``PPX.md``): ``None`` travels as empty data with shape ``[0]``, scalars with
shape ``[]`` (shape ``[1]`` is read as a scalar too); an absent ``Sample.control`` means
``True``; an empty name means "no name"; address and name strings are always written, since
pyprob crashes on absent ones.

Example:
    >>> from rotalumis.core.distributions import Normal
    >>> buf = encode(Sample("forward:3", "mu", Normal(1.0, 2.0)))
    >>> decode(buf)
    Sample(address='forward:3', name='mu', distribution=Normal(mean=1.0, stddev=2.0), control=True)
"""

from __future__ import annotations

import struct
from typing import Any

from rotalumis.core.distributions import Distribution
from rotalumis.core.errors import ProtocolError

from ..messages import (
    BODY_TYPES,
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
from .decoder import decode
from .wire import patch_offset, put_offset_table, put_string, put_tensor

__all__ = [
    "OBSERVE_RESULT",
    "RESET",
    "RUN",
    "TAG_RESULT",
    "decode",
    "encode",
    "encode_observe",
    "encode_sample",
]

# Root offset, Message vtable [8, 9, body_type at 8, body at 4], Message table (soffset 8,
# body offset at 16, body_type byte at 20), padding to 24 bytes: the body table follows.
_HEADER = struct.Struct("<IHHHHiIB3x")
_BODY_FIELD = 16
# Sample: vtable [14, 18, address 4, name 8, dist type 16, dist 12, control 17], table.
_SAMPLE_HEAD = struct.Struct("<7H2xiIIIBB2x")
# Observe: vtable [14, 21, address 4, name 8, dist type 20, dist 12, value 16], table.
_OBSERVE_HEAD = struct.Struct("<7H2xiIIIIB3x")
# Tag: vtable [10, 16, address 4, name 8, value 12], table.
_TAG_HEAD = struct.Struct("<5H2xiIII")
_EMPTY_TABLE = struct.pack("<HHi", 4, 4, 4)  # vtable [4, 4] and a table with no fields


def _header(body_type: int) -> bytearray:
    return bytearray(_HEADER.pack(12, 8, 9, 8, 4, 8, 0, body_type))


def _empty(cls: type) -> bytes:
    out = _header(BODY_TYPES[cls])
    patch_offset(out, _BODY_FIELD, len(out) + 4)
    out += _EMPTY_TABLE
    return bytes(out)


#: Pre-encoded messages without fields.
RUN = _empty(Run)
OBSERVE_RESULT = _empty(ObserveResult)
TAG_RESULT = _empty(TagResult)
RESET = _empty(Reset)
_CONSTANT = {Run: RUN, ObserveResult: OBSERVE_RESULT, TagResult: TAG_RESULT, Reset: RESET}


_f64_into = struct.Struct("<d").pack_into


def _put_distribution(out: bytearray, dist: Distribution, doubles: list[int]) -> tuple[int, int]:
    """Append the distribution table of ``dist``; return (union type, table position).

    Appends to ``doubles`` the position of each scalar parameter's float64.
    """
    name = dist.name
    dtype = DISTRIBUTION_TYPES.get(name)
    if dtype is None:
        raise ProtocolError(
            f"{name} cannot be sent over PPX; PPX knows {', '.join(DISTRIBUTION_TYPES)}"
        )
    params = dist.params
    table = put_offset_table(out, len(params))
    field = table + 4
    for value in params.values():
        tensor = put_tensor(out, value)
        if type(value) is float or type(value) is int:
            doubles.append(tensor + 16)  # see wire.put_tensor: the scalar layout
        patch_offset(out, field, tensor)
        field += 4
    return dtype, table


# Site templates: a Sample/Observe whose parameters (and observed value) are all Python
# numbers has the same bytes every time its site is visited except for those numbers, so the
# encoded message is kept and only the float64s are overwritten on the next visit.
_TEMPLATES: dict[tuple[Any, ...], tuple[bytes, list[int]]] = {}
_MAX_TEMPLATES = 4096


def _from_template(key: tuple[Any, ...], values: list[Any]) -> bytes | None:
    entry = _TEMPLATES.get(key)
    if entry is None:
        return None
    out = bytearray(entry[0])
    for pos, value in zip(entry[1], values, strict=True):
        _f64_into(out, pos, value)
    return bytes(out)


def _remember(key: tuple[Any, ...], out: bytearray, doubles: list[int], count: int) -> None:
    if len(doubles) == count:  # every number is a scalar: the layout is fixed
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[key] = (bytes(out), doubles)


def encode_sample(
    address: str, name: str | None, dist: Distribution, control: bool = True
) -> bytes:
    """``encode(Sample(address, name, dist, control))`` without building the message object."""
    params = list(dist.params.values())
    key = (5, address, name, bool(control), dist.name, len(params))
    if all([type(v) is float or type(v) is int for v in params]):
        cached = _from_template(key, params)
        if cached is not None:
            return cached
    out = _header(5)
    out += _SAMPLE_HEAD.pack(14, 18, 4, 8, 16, 12, 17, 16, 0, 0, 0, 0, bool(control))
    table = len(out) - 20
    patch_offset(out, table + 4, put_string(out, address))
    patch_offset(out, table + 8, put_string(out, name or ""))
    doubles: list[int] = []
    dtype, dist_table = _put_distribution(out, dist, doubles)
    patch_offset(out, table + 12, dist_table)
    out[table + 16] = dtype
    patch_offset(out, _BODY_FIELD, table)
    _remember(key, out, doubles, len(params))
    return bytes(out)


def encode_observe(address: str, name: str | None, dist: Distribution, value: Any = None) -> bytes:
    """``encode(Observe(address, name, dist, value))`` without building the message object."""
    params = list(dist.params.values())
    scalar_value = type(value) is float or type(value) is int
    key = (7, address, name, scalar_value, dist.name, len(params))
    numbers = [*params, value] if scalar_value else params
    if (value is None or scalar_value) and all(
        [type(v) is float or type(v) is int for v in params]
    ):
        cached = _from_template(key, numbers)
        if cached is not None:
            return cached
    out = _header(7)
    out += _OBSERVE_HEAD.pack(14, 21, 4, 8, 20, 12, 16, 16, 0, 0, 0, 0, 0)
    table = len(out) - 24
    patch_offset(out, table + 4, put_string(out, address))
    patch_offset(out, table + 8, put_string(out, name or ""))
    doubles: list[int] = []
    dtype, dist_table = _put_distribution(out, dist, doubles)
    patch_offset(out, table + 12, dist_table)
    out[table + 20] = dtype
    tensor = put_tensor(out, value)
    if scalar_value:
        doubles.append(tensor + 16)
    patch_offset(out, table + 16, tensor)
    patch_offset(out, _BODY_FIELD, table)
    if value is None or scalar_value:
        _remember(key, out, doubles, len(numbers))
    return bytes(out)


def _encode_tag(msg: Tag) -> bytes:
    out = _header(9)
    out += _TAG_HEAD.pack(10, 16, 4, 8, 12, 12, 0, 0, 0)
    table = len(out) - 16
    patch_offset(out, table + 4, put_string(out, msg.address))
    patch_offset(out, table + 8, put_string(out, msg.name or ""))
    patch_offset(out, table + 12, put_tensor(out, msg.value))
    patch_offset(out, _BODY_FIELD, table)
    return bytes(out)


_SCALAR_RESULTS: dict[int, tuple[bytes, int]] = {}


def _encode_result(body_type: int, value: Any) -> bytes:
    if type(value) is float or type(value) is int:  # the hot path: one number
        template = _SCALAR_RESULTS.get(body_type)
        if template is not None:
            out = bytearray(template[0])
            _f64_into(out, template[1], value)
            return bytes(out)
    out = _header(body_type)
    table = put_offset_table(out, 1)
    tensor = put_tensor(out, value)
    patch_offset(out, table + 4, tensor)
    patch_offset(out, _BODY_FIELD, table)
    if type(value) is float or type(value) is int:
        _SCALAR_RESULTS[body_type] = (bytes(out), tensor + 16)
    return bytes(out)


def _encode_strings(body_type: int, *texts: str) -> bytes:
    out = _header(body_type)
    table = put_offset_table(out, len(texts))
    for i, text in enumerate(texts):
        patch_offset(out, table + 4 + 4 * i, put_string(out, text))
    patch_offset(out, _BODY_FIELD, table)
    return bytes(out)


def encode(msg: PPXMessage) -> bytes:
    """Serialise one PPX message.

    Args:
        msg: Any of the eleven message objects of :mod:`rotalumis.remote.messages`.

    Returns:
        The FlatBuffers bytes, ready to send.

    Raises:
        ProtocolError: if a value cannot be represented as a PPX tensor, or the
            distribution is not one of the eleven PPX kinds.
    """
    cls = type(msg)
    if cls is SampleResult:
        return _encode_result(6, msg.result)  # type: ignore[union-attr]
    if cls is Sample:
        m = msg
        return encode_sample(m.address, m.name, m.distribution, m.control)  # type: ignore[union-attr]
    if cls is Observe:
        m = msg
        return encode_observe(m.address, m.name, m.distribution, m.value)  # type: ignore[union-attr]
    constant = _CONSTANT.get(cls)
    if constant is not None:
        return constant
    if cls is RunResult:
        return _encode_result(4, msg.result)  # type: ignore[union-attr]
    if cls is Tag:
        return _encode_tag(msg)  # type: ignore[arg-type]
    if cls is Handshake:
        return _encode_strings(1, msg.system_name)  # type: ignore[union-attr]
    if cls is HandshakeResult:
        return _encode_strings(2, msg.system_name, msg.model_name)  # type: ignore[union-attr]
    raise TypeError(f"not a PPX message: {msg!r}")
