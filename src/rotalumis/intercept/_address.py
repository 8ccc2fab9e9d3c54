"""Addresses of intercepted draws, measured from the simulator's own call stack.

An intercepted draw is made deep inside code that knows nothing about rotalumis (the
simulator, or a library it calls), so its address lists every Python frame from the model's
entry function down to the frame that called the random number generator, third-party frames
included, then the intercepted function::

    forward:21/simulate:12/ciw.dists.distributions.Exponential.sample:331/random.expovariate

Frames in the entry function's own file read ``function:line``; frames elsewhere read
``module.qualified_name:line``. A vector-valued draw carries its shape in the label
(``np.random.normal[3x2]``). Function names and line numbers, never bytecode offsets,
make the address stable across runs and processes while the source does not change;
generated code (wrappers compiled at run time, e.g. by networkx's decorators) follows the
rules of :mod:`rotalumis.core.address`: counters in its names read ``#``, and trampolines
that only forward into it are left out. The runtime then appends
``__<Distribution>__<instance>``.

A draw whose call path passes through :func:`rotalumis.core.runtime.apply_stack` is made
by the engine itself while it handles a message (a proposal network initialising a layer, a
distribution drawing its value) and gets no address: it is not the simulator's.

Building the string walks the stack on every intercepted call (the hot path), so it is
cached, keyed by the code objects and bytecode positions of the frames (a key only).
"""

from __future__ import annotations

from types import CodeType, FrameType

from rotalumis.core.address import function_name, shown_frames
from rotalumis.core.runtime import apply_stack

__all__ = ["MAX_DEPTH", "site_address"]

MAX_DEPTH = 64
"""Frames examined when the entry function is not on the stack."""

_CACHE_LIMIT = 200_000
_cache: dict[tuple[object, ...], str | None] = {}
_ENGINE = apply_stack.__code__


def _frame_text(frame: FrameType, home: str | None) -> str:
    code = frame.f_code
    if code.co_filename == home:
        return f"{function_name(code, False)}:{frame.f_lineno}"
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{function_name(code, True)}:{frame.f_lineno}"


def site_address(frame: FrameType, entry: CodeType | None, label: str) -> str | None:
    """The call-site part of the address of an intercepted draw.

    Args:
        frame: The frame that called the intercepted function.
        entry: Code object of the model's entry function, or ``None`` (then only ``frame``
            itself is used, as :func:`rotalumis.core.address.frames_address` does).
        label: The intercepted function, e.g. ``"np.random.normal"``.

    Returns:
        ``<frames>/<label>``, or ``None`` for a draw made by the engine itself.
    """
    chain = [frame]
    if entry is not None and frame.f_code is not entry:
        f = frame.f_back
        while f is not None and len(chain) < MAX_DEPTH:
            chain.append(f)
            if f.f_code is entry:
                break
            f = f.f_back
    key = (label, *[(fr.f_code, fr.f_lasti) for fr in chain])
    try:
        return _cache[key]
    except KeyError:
        pass
    hit: str | None = None
    if not any(fr.f_code is _ENGINE for fr in chain):
        home = None if entry is None else entry.co_filename
        hit = "/".join([*(_frame_text(fr, home) for fr in shown_frames(chain)), label])
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = hit
    return hit
