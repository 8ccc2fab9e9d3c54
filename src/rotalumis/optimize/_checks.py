"""Argument checks of the optimization configurations (``config.py``, ``blackbox/config.py``):
each raises ``ValueError`` naming the configuration class and the field."""

from __future__ import annotations

import math

__all__ = ["choice", "in_range", "positive_int"]


def positive_int(name: str, value: object, owner: str = "OptimizeConfig") -> None:
    """Raise ``ValueError`` naming ``owner`` and ``name`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")


def in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    owner: str = "OptimizeConfig",
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number in the given interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{owner}: {name} must be in {left}{low}, {high}{right}, got {value!r}")


def choice(
    name: str, value: object, allowed: tuple[str, ...], owner: str = "OptimizeConfig"
) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(allowed)}; got {value!r}")
