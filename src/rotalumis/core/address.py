"""Addresses of random choices, derived from the call stack.

Format: ``<frames>__<Distribution>__<instance>``, where ``<frames>`` lists
``function:line`` for every frame from the model's entry function (``forward``, or the
decorated function) down to the frame that called the primitive, joined by ``/``; for
example ``forward:14/emit:31__Normal__2`` is the second visit, in one execution, of a
Normal drawn at line 31 of ``emit`` called from line 14 of ``forward``. Function names and
line numbers (never bytecode offsets) make addresses stable across runs, processes and
Python versions as long as the source does not change. A user-given ``address=`` replaces
``<frames>``; the distribution and instance counter are always appended, exactly as PPX
engines do for addresses that arrive from remote simulators.

Computing an address from the stack is on the hot path of every ``sample`` call, so the
string for a call path is cached, keyed by the code objects and bytecode positions of its
frames (a cache key only; it never appears in an address).
"""

from __future__ import annotations

from types import CodeType, FrameType

__all__ = ["MAX_DEPTH", "frames_address"]

MAX_DEPTH = 64
"""Frames examined when the model's entry point is not on the stack (then the deepest
``MAX_DEPTH`` frames make the address)."""

_cache: dict[object, str] = {}


def frames_address(frame: FrameType, entry: CodeType | None) -> str:
    """The ``<frames>`` part of the address of a primitive called from ``frame``.

    Args:
        frame: The frame that called the primitive (the sample site).
        entry: Code object of the model's entry function, or ``None`` outside a model run
            (then only ``frame`` itself is used).
    """
    code = frame.f_code
    if entry is None or code is entry:
        key: object = (code, frame.f_lasti)
        hit = _cache.get(key)
        if hit is None:
            hit = _cache[key] = f"{code.co_name}:{frame.f_lineno}"
        return hit
    chain = [frame]
    f = frame.f_back
    while f is not None and len(chain) < MAX_DEPTH:
        chain.append(f)
        if f.f_code is entry:
            break
        f = f.f_back
    key = tuple((fr.f_code, fr.f_lasti) for fr in chain)
    hit = _cache.get(key)
    if hit is None:
        hit = _cache[key] = "/".join(f"{fr.f_code.co_name}:{fr.f_lineno}" for fr in reversed(chain))
    return hit
