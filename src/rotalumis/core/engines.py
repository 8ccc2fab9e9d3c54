"""The registry of inference engines by name.

The core knows no engine. An engine is an object with a typed ``run`` method (the
:class:`~rotalumis.core.model.Engine` protocol); the engines themselves live in
:mod:`rotalumis.infer`
(``ImportanceSampling``, ``MCMC(kernel)``, ...). ``model.posterior(engine="is", **options)``
is sugar: it asks this registry for the factory called ``"is"``, checks ``options`` against
the factory's signature, and calls ``factory(**options).run(model, ...)``.

Where a name is looked up, in order:

1. factories registered in this process with :func:`register_engine`;
2. the entry points of group ``"rotalumis.engines"`` that installed packages declare
   (rotalumis declares its built-in engines in ``pyproject.toml``); an entry point is loaded
   only when its name is asked for.

So importing the core imports no engine module: the core never imports upwards, and a
package that adds an engine declares an entry point (or calls :func:`register_engine`).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from .limits import LIMIT_OPTIONS

__all__ = [
    "ENTRY_POINT_GROUP",
    "RUN_OPTIONS",
    "EngineFactory",
    "available_engines",
    "create_engine",
    "engine_options",
    "register_engine",
]

#: Entry-point group where installed packages declare engine factories by name.
ENTRY_POINT_GROUP = "rotalumis.engines"

#: Options of ``model.posterior`` that every engine takes (besides its own): arguments of
#: the model (given to ``Engine.run``) and the limits per trace (applied by the model).
RUN_OPTIONS = ("model_args", *LIMIT_OPTIONS)


#: Something that makes an engine from keyword options (an engine class, or a function
#: such as ``rotalumis.infer.engines.rmh``).
EngineFactory = Callable[..., Any]

_REGISTERED: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``factory`` available as ``model.posterior(..., engine=name)``.

    Args:
        name: The engine's name (replaces an engine of that name).
        factory: Makes the engine from keyword options; its signature lists the options
            that ``model.posterior`` accepts for this engine.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an engine name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"engine {name!r}: the factory must be callable, got {factory!r}")
    _REGISTERED[name] = factory


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_engines() -> list[str]:
    """Names of the engines that ``model.posterior(engine=...)`` can use."""
    return sorted(set(_REGISTERED) | set(_entry_points()))


def _factory(name: str) -> EngineFactory:
    factory = _REGISTERED.get(name)
    if factory is not None:
        return factory
    ep = _entry_points().get(name)
    if ep is None:
        names = available_engines()
        if not names:
            raise ValueError(
                f"unknown engine {name!r}: no engine is installed (reinstall rotalumis, e.g. "
                f"`pip install -e .`, so that its {ENTRY_POINT_GROUP!r} entry points exist)"
            )
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(names)}")
    loaded: EngineFactory = ep.load()
    if not callable(loaded):
        raise TypeError(f"entry point {ep.value!r} of engine {name!r} is not callable")
    _REGISTERED[name] = loaded  # loaded once
    return loaded


def engine_options(name: str) -> list[str] | None:
    """The options of the engine called ``name`` (``None``: it takes any keyword).

    Raises:
        ValueError: for an unknown engine name.
    """
    return _options_of(_factory(name))


_OPTIONS: dict[int, tuple[EngineFactory, list[str] | None]] = {}
"""``_options_of``'s results by the factory's identity (with the factory, which keeps the
identity its own): reading a signature costs ~50 us, on every ``Model.posterior`` call."""


def _options_of(factory: EngineFactory) -> list[str] | None:
    hit = _OPTIONS.get(id(factory))
    if hit is None or hit[0] is not factory:
        hit = _OPTIONS[id(factory)] = (factory, _read_options(factory))
    return None if hit[1] is None else list(hit[1])


def _read_options(factory: EngineFactory) -> list[str] | None:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to check against: take any keyword
        return None
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    for p in params:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            extra = _unpacked_keys(factory, p.name)
            if extra is None:  # a plain **kwargs: take any keyword
                return None
            names.extend(extra)
    return names


def _unpacked_keys(factory: EngineFactory, name: str) -> list[str] | None:
    """The keys of ``**name: Unpack[SomeTypedDict]`` in ``factory``'s signature, or
    ``None`` when that ``**name`` is not annotated so."""
    target = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    try:
        hint = typing.get_type_hints(target, include_extras=True).get(name)
    except Exception:  # an annotation that does not resolve: take any keyword
        return None
    if typing.get_origin(hint) is not typing.Unpack:
        return None
    (inner,) = typing.get_args(hint)
    return list(inner.__annotations__) if typing.is_typeddict(inner) else None


def create_engine(name: str, options: Mapping[str, Any]) -> Any:
    """The engine called ``name``, made from ``options`` (``Model.posterior`` checks that it
    is an :class:`~rotalumis.core.model.Engine`).

    Raises:
        ValueError: for an unknown engine name.
        TypeError: for an option the engine does not take; the message names the engine
            and lists the options it takes.
    """
    factory = _factory(name)
    known = _options_of(factory)
    if known is not None:
        unknown = sorted(set(options) - set(known))
        if unknown:
            valid = ", ".join([*known, *RUN_OPTIONS])
            raise TypeError(
                f"engine {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {valid}"
            )
    return factory(**options)
