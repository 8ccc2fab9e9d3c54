"""Explicit, reproducible randomness.

Every engine and simulation entry point takes a ``seed`` and builds an :class:`RNG` from it;
nothing in rotalumis draws from hidden global random state. Scalar draws (the hot path) use a
seeded :class:`random.Random`; tensor draws use a :class:`torch.Generator` derived
deterministically from the same seed the first time it is needed.

The engine's :class:`random.Random` is immune to monkeypatching of ``random.Random`` (such
as :mod:`rotalumis.intercept` does to capture a simulator's draws): it is an instance of a
private subclass whose methods are the implementations captured when this module was
imported, so the engine never draws through a patched method. Likewise its
:class:`torch.Generator` is an :class:`EngineGenerator`, by which interception of torch's
random functions recognises (and leaves alone) the engine's own tensor draws.
"""

from __future__ import annotations

import _random
import hashlib
import os
import random
import types

import torch

__all__ = ["RNG", "EngineGenerator", "derive_seed"]

_SEED_BITS = 63


def _engine_random_class() -> type[random.Random]:
    """A ``random.Random`` subclass that owns every method, bound to today's implementations.

    Later changes to ``random.Random``'s class attributes cannot reach its instances, because
    attribute lookup finds this class's own entries first. Owning ``_randbelow`` also keeps
    ``Random.__init_subclass__`` from replacing it.
    """
    namespace: dict[str, object] = {
        "__module__": __name__,
        "__qualname__": "_EngineRandom",
        "__doc__": "The engine's own random.Random, immune to patches of random.Random.",
    }
    for name in ("random", "getrandbits", "seed", "getstate", "setstate"):
        namespace[name] = vars(_random.Random)[name]
    for name, value in vars(random.Random).items():
        if isinstance(value, types.FunctionType) and not name.startswith("__"):
            namespace[name] = value
    return type("_EngineRandom", (random.Random,), namespace)


_EngineRandom = _engine_random_class()


class EngineGenerator(torch.Generator):
    """The engine's own :class:`torch.Generator` (the type marks draws that are not a
    simulator's: :mod:`rotalumis.intercept` never intercepts a call given one). Copies and
    pickles stay engine generators, with the same state."""

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        return _engine_generator, (self.get_state(),)


def _engine_generator(state: torch.Tensor) -> EngineGenerator:
    gen = EngineGenerator()
    gen.set_state(state)
    return gen


def derive_seed(seed: int, *path: int | str) -> int:
    """Derive a child seed from ``seed`` and a path of labels, stable across processes.

    Args:
        seed: The parent seed.
        *path: Labels (chain index, stream name, ...) that make the child distinct.

    Returns:
        A non-negative integer seed below 2**63.
    """
    text = "/".join([str(int(seed)), *(str(p) for p in path)]).encode()
    digest = hashlib.sha256(text).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - _SEED_BITS)


class RNG:
    """A seeded source of randomness for one stream of executions.

    Args:
        seed: Any integer. ``None`` draws a fresh seed from the operating system and records
            it in :attr:`seed`, so the run can still be reproduced.

    Example:
        >>> rng = RNG(1)
        >>> a = rng.py.random(); b = RNG(1).py.random()
        >>> a == b
        True
    """

    __slots__ = ("_torch", "parent", "py", "seed")

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") >> (64 - _SEED_BITS)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed: int = int(seed)
        self.py: random.Random = _EngineRandom(self.seed)
        self._torch: torch.Generator | None = None
        #: ``(seed, index)`` of the stream this one was spawned from (``None``: a root)
        self.parent: tuple[int, int | str] | None = None

    @property
    def torch(self) -> torch.Generator:
        """A CPU :class:`torch.Generator` derived from :attr:`seed` (created on first use)."""
        gen = self._torch
        if gen is None:
            gen = EngineGenerator()
            gen.manual_seed(derive_seed(self.seed, "torch"))
            self._torch = gen
        return gen

    def reseed(self, seed: int) -> None:
        """Restart this stream from ``seed`` in place: the ``random.Random`` and the torch
        generator stay the same objects (whoever holds them sees the new stream), and the
        draws that follow equal those of a fresh ``RNG(seed)``."""
        self.seed = int(seed)
        self.py.seed(self.seed)
        if self._torch is not None:
            self._torch.manual_seed(derive_seed(self.seed, "torch"))

    def spawn(self, index: int | str) -> RNG:
        """Return an independent child stream (for chain ``index``, worker ``index``, ...)."""
        child = RNG(derive_seed(self.seed, index))
        child.parent = (self.seed, index)
        return child

    def __repr__(self) -> str:
        return f"RNG(seed={self.seed})"
