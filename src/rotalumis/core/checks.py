"""Checking the metadata of files rotalumis reads before trusting it.

Dataset manifests, the metadata of a saved ``Empirical`` and the configuration of a saved
network are JSON written by rotalumis, but a file may be damaged, truncated or crafted. Every
value read from one is checked here first, for its type, its range and (for nested
structures) its depth, so that a bad file gives one clear ``ValueError`` saying which field
is wrong, instead of a ``KeyError`` from deep inside, a hang on a huge count, or a
``RecursionError``. Callers turn it into a :class:`~rotalumis.core.DatasetError` that names
the file.

Example:
    >>> get_field({"num_traces": 10}, "num_traces", int, "manifest", low=1)
    10
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "check_depth", "get_field", "loads_json"]

#: Nesting deeper than this in a file's metadata is refused (rotalumis never writes it).
MAX_JSON_DEPTH = 64

_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(t, t.__name__) for t in types)


def get_field(
    obj: Any,
    key: str,
    types: type | tuple[type, ...],
    where: str,
    *,
    low: float | None = None,
    high: float | None = None,
    optional: bool = False,
    default: Any = None,
) -> Any:
    """``obj[key]``, checked to be of ``types`` and, for a number, within ``[low, high]``.

    ``int`` never accepts a boolean, ``float`` also accepts an integer, and numbers must be
    finite.

    Args:
        obj: The JSON object read from the file.
        key: The field.
        types: The type or types allowed.
        where: What ``obj`` is, for the message (``"column 'mu'"``...; ``""`` when the
            caller's message already says it).
        low: Smallest allowed number.
        high: Largest allowed number.
        optional: Whether the field may be absent (``default`` is returned then); to allow
            null, include ``type(None)`` in ``types``.
        default: The value of an absent optional field.

    Raises:
        ValueError: naming ``where`` and ``key`` if the field is missing or invalid.
    """
    at = f"{where}: " if where else ""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{at}expected an object, got {_describe((type(obj),))}")
    if key not in obj:
        if optional:
            return default
        raise ValueError(f"{at}missing field {key!r}")
    allowed = types if isinstance(types, tuple) else (types,)
    if float in allowed:
        allowed = (*allowed, int)
    value = obj[key]
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        raise ValueError(
            f"{at}{key!r} must be {_describe(allowed)}, got {_describe((type(value),))}"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{at}{key!r} must be finite, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"between {low:g} and {high:g}"
                if low is not None and high is not None
                else (f"at least {low:g}" if low is not None else f"at most {high:g}")
            )
            raise ValueError(f"{at}{key!r} must be {bounds}, got {value!r}")
    return value


def check_depth(obj: Any, where: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse lists and objects nested deeper than ``max_depth`` (checked without recursion).

    Raises:
        ValueError: naming ``where``.
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"{where} is nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def loads_json(data: str | bytes, where: str, max_depth: int | None = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from a file and check its depth (``max_depth=None``: only Python's limit).

    Raises:
        ValueError: naming ``where`` if ``data`` is not valid JSON (or not UTF-8), or is
            nested deeper than ``max_depth``.
    """
    try:
        obj = json.loads(data)
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{where} is not valid JSON ({exc})") from None
    if max_depth is not None:
        check_depth(obj, where, max_depth)
    return obj
