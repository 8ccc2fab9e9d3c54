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

from ._patching import ClassPatch
from ._session import (
    PASS,
    SEED_DISTRIBUTION,
    SPEC_ERRORS,
    record,
    recording,
    seed_from_uniform,
)
from ._torch_specs import FUNCTION_SPECS, METHOD_SPECS

__all__ = ["torch_patches"]

_local = threading.local()


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


def _make_wrapper(
    label: str, original: Callable[..., Any], spec: Callable[..., Any] | None
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = kwargs.get("generator")
        if type(gen) is EngineGenerator or (args and type(args[-1]) is EngineGenerator):
            return original(*args, **kwargs)  # the engine's own draw
        session = recording()
        if session is None:
            return original(*args, **kwargs)
        frame = sys._getframe(1)
        site = None
        if spec is not None:
            try:
                site = spec(*args, **kwargs)
            except SPEC_ERRORS:
                site = None  # torch's own code below raises the usual error, or copes
        if site is not None:
            dist, convert, shape = site
            value = record(session, label, dist, frame, shape)
            return original(*args, **kwargs) if value is PASS else convert(value)
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
    return wrapper


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
