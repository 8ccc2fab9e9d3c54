"""Patches for torch's random functions and ``Tensor`` methods.

Module functions (``torch.rand``, ``torch.randn``, ``torch.normal``, ...) are replaced where
they are looked up: in the :mod:`torch` namespace and wherever ``from torch import randn``
copied them (:class:`~._patching.AliasPatch`). ``Tensor`` methods (``normal_``,
``uniform_``, ...) are replaced on :class:`torch.Tensor`, so every tensor (parameters
included) is intercepted. Mapped calls (see :mod:`._torch_specs`) become one site of the
matching distribution; the others (``randperm``, ``binomial``, ``Tensor.random_``, ...,
and mapped calls with arguments outside the mapping) are recorded as one ``Uniform(0, 1)``
seed of a fresh :class:`torch.Generator` on which torch's own implementation runs.

Never intercepted: calls given one of the engine's own generators (an
:class:`~rotalumis.core.rng.EngineGenerator`: rotalumis' distributions and kernels draw
through it), calls made while the engine handles a message, and randomness drawn inside
torch's C++ code without a Python-level call (dropout, ``rrelu``, ...: see the docs).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import torch

from rotalumis.core.rng import EngineGenerator

from ._accelerator import ACCEL
from ._patching import ClassPatch
from ._session import (
    PASS,
    SEED_DISTRIBUTION,
    TORCH_FUNCTION,
    TORCH_IN_PLACE,
    accelerated_wrapper,
    build_site,
    record,
    recording,
    seed_from_uniform,
)
from ._torch_sites import fill, memo_key
from ._torch_specs import FUNCTION_SPECS, METHOD_SPECS

__all__ = ["torch_patches"]

_local = threading.local()

if ACCEL is not None:
    ACCEL.configure_torch(torch.get_default_dtype, torch.strided, torch.Size, fill)


def _substitute(seed: int, device: torch.device) -> torch.Generator:
    """A generator of this thread for ``device``, reseeded (building one costs more)."""
    generators = getattr(_local, "generators", None)
    if generators is None:
        generators = _local.generators = {}
    gen = generators.get(device)
    if gen is None:
        gen = generators[device] = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def _device(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.device:
    """The device a call draws on: its ``device=``, else its first tensor's, else CPU."""
    device = kwargs.get("device")
    if device is not None:
        return torch.device(device)
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


_IN_PLACE = frozenset({"normal_", "uniform_", "exponential_", "log_normal_", "bernoulli_"})
"""The ``Tensor`` methods that fill their tensor (their site depends on its dtype and shape)."""


def _kept_in_place(site: Any) -> Any:
    return (site[0], None, site[2])


def _site(
    spec: Callable[..., Any], memo: dict[Any, Any], in_place: bool, args: Any, kwargs: Any
) -> Any:
    """``spec(*args, **kwargs)`` (``None``: no mapping), memoised by :func:`memo_key`.

    A function's site (distribution, conversion, shape) is kept whole. An in-place
    method's conversion fills its own tensor, so only ``(distribution, shape)`` is kept,
    under the tensor's dtype and shape (strided tensors only), and the site is rebuilt
    around the tensor: ``(distribution, None, shape)`` tells the caller to fill ``args[0]``.
    """
    if in_place:
        self: Any = args[0] if args else None
        strided = getattr(self, "layout", None) is torch.strided
        key = memo_key(args[1:], kwargs, (self.dtype, self.shape)) if strided else None
    else:
        key = memo_key(args, kwargs, (torch.get_default_dtype(),))
    if key is not None:
        hit = memo.get(key)
        if hit is not None:
            return hit
    return build_site(spec, memo, key, args, kwargs, _kept_in_place if in_place else None)


def _make_wrapper(
    label: str, original: Callable[..., Any], spec: Callable[..., Any] | None
) -> Callable[..., Any]:
    memo: dict[Any, Any] = {}
    in_place = label.removeprefix("Tensor.") in _IN_PLACE

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args and type(args[-1]) is EngineGenerator:
            return original(*args, **kwargs)  # the engine's own draw
        if kwargs and type(kwargs.get("generator")) is EngineGenerator:
            return original(*args, **kwargs)
        session = recording()
        if session is None:
            return original(*args, **kwargs)
        frame = sys._getframe(1)
        site = None if spec is None else _site(spec, memo, in_place, args, kwargs)
        if site is not None:
            dist, convert, shape = site
            value = record(session, label, dist, frame, shape)
            if value is PASS:
                return original(*args, **kwargs)
            return fill(args[0], value, shape) if convert is None else convert(value)
        value = record(session, label, SEED_DISTRIBUTION, frame)
        if value is PASS:
            return original(*args, **kwargs)
        if args and isinstance(args[-1], torch.Generator):
            args = args[:-1]  # a generator given by position: replaced like a keyword one
        substitute = _substitute(seed_from_uniform(value), _device(args, kwargs))
        return session.guarded(original, *args, **{**kwargs, "generator": substitute})

    wrapper.__name__ = getattr(original, "__name__", label)
    wrapper.__qualname__ = label
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    if spec is None:
        return wrapper
    # the compiled common case, where built (it falls back on this wrapper)
    mode = TORCH_IN_PLACE if in_place else TORCH_FUNCTION
    return accelerated_wrapper(wrapper, original, memo, (label, label), None, None, mode)


def torch_patches() -> tuple[list[ClassPatch], list[tuple[Any, Any]]]:
    """The class patch for :class:`torch.Tensor` and the module-level alias pairs.

    Returns:
        ``(patches, aliases)``: the ``Tensor`` method patch, and ``(original, replacement)``
        pairs for torch's module functions (replaced in :mod:`torch` and wherever copied).
    """
    aliases = []
    for name, spec in FUNCTION_SPECS.items():
        original = getattr(torch, name, None)
        if original is not None:
            aliases.append((original, _make_wrapper(f"torch.{name}", original, spec)))
    methods = {}
    for name, spec in METHOD_SPECS.items():
        original = getattr(torch.Tensor, name, None)
        if original is not None:
            methods[name] = _make_wrapper(f"Tensor.{name}", original, spec)
    return [ClassPatch(torch.Tensor, methods)], aliases
