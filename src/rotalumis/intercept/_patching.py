"""Install and remove patches: class attributes (also of immutable extension types) and
module-level aliases of patched functions.

NumPy's ``Generator``, ``RandomState`` and ``BitGenerator`` are immutable extension types:
``setattr`` on them is refused. Their attribute dictionary is still an ordinary dict, so a
patch writes it directly and then calls CPython's ``PyType_Modified`` to invalidate the
method cache, exactly as ``type.__setattr__`` does for mutable types. Only Python-level
lookups (``rng.normal(...)``, including existing instances) see the patch; NumPy's C code
calls its C functions directly.

``from random import random`` or ``from numpy.random import normal`` copies a bound method
into another module before interception starts. :class:`AliasPatch` finds such copies by
identity in every loaded module and swaps them too; modules are scanned once and afterwards
only modules imported since (or imported anew) are scanned (an alias assigned into an
already scanned module later, at run time, is not found).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
from typing import Any

from ._accelerator import ACCEL

__all__ = ["MISSING", "AliasPatch", "ClassPatch", "set_class_attributes"]

log = logging.getLogger(__name__)

_IMMUTABLE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE
MISSING = object()
"""Marks an attribute that the class did not have in its own namespace."""


def _namespace(cls: type) -> dict[str, Any]:
    """The real attribute dict behind ``cls.__dict__`` (a read-only mappingproxy)."""
    namespace = gc.get_referents(cls.__dict__)[0]
    if not isinstance(namespace, dict):  # pragma: no cover - not CPython
        raise RuntimeError(f"cannot patch {cls.__qualname__}: its namespace is not a dict")
    return namespace


def set_class_attributes(cls: type, values: dict[str, Any]) -> None:
    """Set class attributes (deleting those whose value is ``MISSING``), immutable types too."""
    if cls.__flags__ & _IMMUTABLE:
        namespace = _namespace(cls)
        for name, value in values.items():
            if value is MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value
        ctypes.pythonapi.PyType_Modified(ctypes.py_object(cls))  # invalidate method caches
        return
    for name, value in values.items():
        if value is MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, value)


class ClassPatch:
    """Replace attributes of the class ``owner`` while applied.

    Args:
        owner: The class (mutable or an immutable extension type).
        replacements: New attribute values by name.
    """

    __slots__ = (
        "_compiled",
        "_names",
        "_previous",
        "_values",
        "originals",
        "owner",
        "replacements",
    )

    def __init__(self, owner: type, replacements: dict[str, Any]) -> None:
        self.owner = owner
        self.replacements = dict(replacements)
        self.originals: dict[str, Any] = {}
        self._names = tuple(self.replacements)
        self._values = tuple(self.replacements.values())
        self._previous: tuple[Any, ...] = ()
        # the compiled swap writes the class's dict and calls PyType_Modified once: what
        # type.__setattr__ does for plain names of a class whose metaclass is ``type``
        self._compiled = (
            ACCEL is not None
            and (type(owner) is type or bool(owner.__flags__ & _IMMUTABLE))
            and not any(name.startswith("__") for name in self._names)
        )

    def apply(self) -> None:
        """Install the replacements, remembering what was there (or that nothing was)."""
        if self._compiled:
            assert ACCEL is not None
            names, values = self._names, self._values
            previous, _ = ACCEL.set_class_attrs(self.owner, names, values, None, MISSING)
            self._previous = previous  # (``originals`` stays empty: restore reads this)
            return
        own = self.owner.__dict__
        self.originals = {name: own.get(name, MISSING) for name in self.replacements}
        set_class_attributes(self.owner, self.replacements)

    def restore(self) -> None:
        """Put the originals back, except where someone else replaced a patch meanwhile."""
        if self._compiled:
            assert ACCEL is not None
            _, skipped = ACCEL.set_class_attrs(
                self.owner, self._names, self._previous, self._values, MISSING
            )
            for i in skipped:
                self._changed(self._names[i])
            return
        own = self.owner.__dict__
        back = {}
        for name, value in self.replacements.items():
            if own.get(name, MISSING) is value:
                back[name] = self.originals[name]
            else:
                self._changed(name)
        set_class_attributes(self.owner, back)

    def _changed(self, name: str) -> None:
        log.warning(
            "%s.%s was changed by someone else during interception; leaving it",
            self.owner.__qualname__,
            name,
        )


def _replace_items(entries: list[tuple[dict[str, Any], str, Any, Any]]) -> None:
    """For each ``(namespace, key, old, new)``: ``namespace[key] = new`` where it is ``old``
    (compiled when the accelerator is built)."""
    if ACCEL is not None:
        ACCEL.replace_items(entries)
        return
    for namespace, key, old, new in entries:
        if namespace.get(key) is old:
            namespace[key] = new


class AliasPatch:
    """Swap module-level references to original functions for their replacements.

    Args:
        pairs: ``(original, replacement)`` objects; originals are matched by identity.
    """

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self._by_original = {id(o): (o, r) for o, r in pairs}
        self._by_replacement = {id(r): (r, o) for o, r in pairs}
        self._scanned: dict[str, Any] = {}  # module name -> the module object scanned
        self._volatile: set[str] = set()  # modules first imported while patched
        self._modules_seen = -1
        self._sites: list[tuple[dict[str, Any], str, Any]] = []  # (namespace, key, original)
        # (namespace, key, original, replacement) of each site, and the reverse
        self._forward: list[tuple[dict[str, Any], str, Any, Any]] = []
        self._backward: list[tuple[dict[str, Any], str, Any, Any]] = []

    def _scan(
        self, table: dict[int, tuple[Any, Any]]
    ) -> list[tuple[dict[str, Any], str, tuple[Any, Any]]]:
        """Find references to ``table``'s objects in the modules not scanned yet.

        All of ``sys.modules`` is looked at only when its size changed; otherwise just the
        modules first imported while patched (a simulator that imports a module anew at
        each run replaces it under the same name, leaving the size unchanged).
        """
        found: list[tuple[dict[str, Any], str, tuple[Any, Any]]] = []
        if len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            names: list[str] = list(sys.modules)
        elif self._volatile:
            names = list(self._volatile)
        else:
            return found  # nothing imported since the last scan (the common case)
        for mod_name in names:
            module = sys.modules.get(mod_name)
            if module is None or self._scanned.get(mod_name) is module:
                continue
            self._scanned[mod_name] = module
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                hit = table.get(id(value))
                if hit is not None and hit[0] is value:
                    found.append((namespace, key, hit))
        return found

    def _swaps(self) -> tuple[list[Any], list[Any]]:
        """``_sites`` as (namespace, key, original, replacement) entries, and reversed."""
        for namespace, key, original in self._sites[len(self._forward) :]:
            replacement = self._by_original[id(original)][1]
            self._forward.append((namespace, key, original, replacement))
            self._backward.append((namespace, key, replacement, original))
        return self._forward, self._backward

    def apply(self) -> None:
        """Replace every known and newly found alias of an original."""
        for namespace, key, hit in self._scan(self._by_original):
            self._sites.append((namespace, key, hit[0]))
        _replace_items(self._swaps()[0])

    def restore(self) -> None:
        """Put the originals back, also into modules imported while patched."""
        _replace_items(self._swaps()[1])
        for namespace, key, hit in self._scan(self._by_replacement):
            namespace[key] = hit[1]
            self._sites.append((namespace, key, hit[1]))
            name = namespace.get("__name__")
            if isinstance(name, str):
                self._volatile.add(name)
