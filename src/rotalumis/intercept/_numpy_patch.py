"""Patches for :mod:`numpy.random`: ``Generator`` and ``RandomState`` methods (so every
instance, including ones created before interception started, is intercepted), the legacy
module functions (bound methods of the global ``RandomState``, also where copied by
``from numpy.random import ...``), and ``BitGenerator.random_raw``.

Mapped calls (see :mod:`._numpy_specs`) become one site of the matching distribution per
call; ``size=`` or array parameters make it one vector-valued site. Every other drawing
method (``vonmises``, ``multivariate_normal``, ``permutation``, ``shuffle``, ``bytes``,
``random_raw``, ``choice`` without replacement, parameters outside a distribution's domain,
``dtype=float32``, ``out=`` ...) is recorded as the seed of its underlying bit stream: one
``Uniform(0, 1)`` site whose 53-bit mantissa seeds a fresh ``PCG64`` (``Generator``,
``BitGenerator``) or ``MT19937`` (``RandomState``) stream, on which NumPy's own
implementation then runs. So nothing escapes the engine's control, and replaying
the seed replays the draw exactly. Draws made from C through a bit generator's ``ctypes`` or
``cffi`` interface are not seen.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ._numpy_specs import GENERATOR_SPECS, RANDOM_STATE_SPECS, Site
from ._patching import ClassPatch
from ._session import (
    PASS,
    SEED_DISTRIBUTION,
    accelerated_wrapper,
    record_python,
    recording,
    seed_from_uniform,
    site_for,
)

__all__ = ["numpy_patches"]

_NOT_DRAWS = frozenset({"seed", "get_state", "set_state", "spawn"})


def _make_wrapper(
    kind: str,
    name: str,
    original: Callable[..., Any],
    spec: Callable[..., Site | None] | None,
    substitute: Callable[[int], Any],
    global_instance: object,
) -> Callable[..., Any]:
    class_label = f"{kind}.{name}"
    module_label = f"np.random.{name}"
    memo: dict[Any, Any] = {}

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = recording()
        if session is None:
            return original(self, *args, **kwargs)
        label = module_label if self is global_instance else class_label
        frame = sys._getframe(1)
        site = None if spec is None else site_for(spec, memo, args, kwargs)
        if site is not None:
            dist, convert, shape = site
            if dist is None:
                return convert(None)
            value = record_python(session, label, dist, frame, shape)
        else:
            value = record_python(session, label, SEED_DISTRIBUTION, frame)
            if value is not PASS:
                seed = seed_from_uniform(value)
                return session.guarded(original, substitute(seed), *args, **kwargs)
        if value is PASS:  # a draw of the engine's own
            return original(self, *args, **kwargs)
        return convert(value)

    wrapper.__name__ = name
    wrapper.__qualname__ = class_label
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    if spec is None:  # always a seed site: nothing for the compiled common case
        return wrapper
    # the compiled common case, where built (it falls back on this wrapper)
    return accelerated_wrapper(
        wrapper, original, memo, (module_label, class_label), global_instance
    )


def _new_generator(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


_local = threading.local()


def _new_random_state(seed: int) -> np.random.RandomState:
    # Building an MT19937 from a SeedSequence costs ~0.2 ms; reseeding one kept per thread
    # through the legacy array seeding costs ~0.02 ms.
    rs = getattr(_local, "random_state", None)
    if rs is None:
        rs = _local.random_state = np.random.RandomState(0)
    rs.seed([seed & 0xFFFFFFFF, seed >> 32])
    return rs


def _draw_methods(cls: type) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and name not in _NOT_DRAWS and callable(value)
    }


def numpy_patches() -> tuple[list[ClassPatch], list[tuple[Any, Any]]]:
    """The class patches for NumPy's generators and the module-level alias pairs.

    Returns:
        ``(patches, aliases)``: class attribute patches, and ``(original, replacement)``
        pairs for the legacy module functions (bound methods of the global RandomState).
    """
    mtrand = np.random.mtrand
    global_rs = getattr(mtrand, "_rand", None)
    patches: list[ClassPatch] = []
    rs_wrappers: dict[int, Callable[..., Any]] = {}
    targets: list[tuple[type, str, dict[str, Any], Callable[[int], Any]]] = [
        (np.random.Generator, "Generator", GENERATOR_SPECS, _new_generator),
        (np.random.RandomState, "RandomState", RANDOM_STATE_SPECS, _new_random_state),
    ]
    for cls, kind, specs, substitute in targets:
        replacements = {}
        for name, original in _draw_methods(cls).items():
            wrapper = _make_wrapper(kind, name, original, specs.get(name), substitute, global_rs)
            replacements[name] = wrapper
            if cls is np.random.RandomState:
                rs_wrappers[id(original)] = wrapper
        patches.append(ClassPatch(cls, replacements))
    raw = vars(np.random.BitGenerator).get("random_raw")
    if raw is not None:
        wrapper = _make_wrapper("BitGenerator", "random_raw", raw, None, np.random.PCG64, None)
        patches.append(ClassPatch(np.random.BitGenerator, {"random_raw": wrapper}))
    aliases = []
    for value in vars(mtrand).values():
        func = getattr(value, "__func__", None)
        if getattr(value, "__self__", None) is global_rs and id(func) in rs_wrappers:
            aliases.append((value, rs_wrappers[id(func)].__get__(global_rs)))
    return patches, aliases
