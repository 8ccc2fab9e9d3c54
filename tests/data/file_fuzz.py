"""Mutations of JSON metadata for the bad-file tests: every field deleted or replaced."""

from __future__ import annotations

import copy
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DELETE = object()

#: What each field is replaced with: wrong types, huge and negative numbers, nesting.
REPLACEMENTS: list[Any] = [DELETE, "text", -1, 0, 10**12, 2**70, 1.5, None, True, [], {}]


def field_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every field of a JSON value (lists: their first two items)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from field_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            yield (*prefix, i)
            yield from field_paths(v, (*prefix, i))


def mutated(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``obj`` with the field at ``path`` replaced by ``value`` (or deleted)."""
    out = copy.deepcopy(obj)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def mutations(obj: Any) -> Iterator[tuple[str, Any]]:
    """``(description, mutated copy)`` for every field of ``obj`` and every replacement."""
    for path in field_paths(obj):
        for value in REPLACEMENTS:
            what = "deleted" if value is DELETE else repr(value)[:20]
            yield f"{'/'.join(map(str, path))} := {what}", mutated(obj, path, value)


def rewrite_member(path: Path, member: str, data: bytes) -> None:
    """Replace one member of a ZIP file (the others are copied unchanged)."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members[member] = data
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)


def updated(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with ``changes`` applied (a value of ``None`` deletes the key)."""
    out = dict(obj)
    for k, v in changes.items():
        if v is None:
            del out[k]
        else:
            out[k] = v
    return out


def check_truncations(path: Path, data: bytes, load: Callable[[Path], Any], error: type) -> int:
    """Write ``data`` cut at 12 evenly spaced lengths to ``path``: each load raises ``error``
    naming the file. Returns the number of cases."""
    count = 12
    for k in range(count):
        path.write_bytes(data[: len(data) * k // count])
        with pytest.raises(error, match=re.escape(str(path))):
            load(path)
    return count
