"""Learned message layouts: decode a site's messages by comparing bytes, not parsing them.

A simulator visiting the same site sends messages that differ only in the float64 numbers
(the parameters and the observed value) when those are scalars: the address, the name, the
distribution kind, every offset, vtable and shape are byte-for-byte the same. After one full,
checked decode the decoder records such a message here as a template with the numbers'
positions left open; a later message of the same length whose every other byte equals the
template is, by construction, the same message with other numbers, which are read straight
from their positions. This makes decoding the hot path of a remote simulator a few
``bytes.startswith`` comparisons.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["LayoutCache"]

_f64 = struct.Struct("<d").unpack_from

Maker = Callable[[list[float]], Any]


class LayoutCache:
    """Templates of previously decoded messages, by message length.

    Args:
        capacity: Number of templates kept; the cache starts afresh when full.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._count = 0
        self._by_length: dict[
            int, list[tuple[tuple[tuple[int, bytes], ...], tuple[int, ...], Maker]]
        ] = {}

    def lookup(self, buf: bytes) -> Any:
        """The message ``buf`` encodes if it matches a template, else ``None``."""
        entries = self._by_length.get(len(buf))
        if entries:
            for segments, positions, make in entries:
                for start, segment in segments:
                    if not buf.startswith(segment, start):
                        break
                else:
                    return make([_f64(buf, p)[0] for p in positions])
        return None

    def learn(self, buf: bytes, positions: Sequence[int], make: Maker) -> None:
        """Remember ``buf`` with float64s at ``positions`` (in the order ``make`` takes them).

        Args:
            buf: A message that was fully decoded and checked.
            positions: Where its variable numbers lie.
            make: Builds the message from those numbers.
        """
        if self._count >= self.capacity:
            self._by_length.clear()
            self._count = 0
        segments = []
        start = 0
        for p in sorted(positions):
            if p > start:
                segments.append((start, buf[start:p]))
            start = p + 8
        if start < len(buf):
            segments.append((start, buf[start:]))
        self._by_length.setdefault(len(buf), []).append((tuple(segments), tuple(positions), make))
        self._count += 1
