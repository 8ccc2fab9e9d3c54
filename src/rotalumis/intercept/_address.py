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
cached, keyed by the code objects' identities and the frames' bytecode positions (a key
only; see :func:`rotalumis.core.address.path_key`).
"""

from __future__ import annotations

from types import CodeType, FrameType
from typing import Any

from rotalumis.core.address import KEPT, function_name, shown_frames
from rotalumis.core.runtime import apply_stack

__all__ = ["ADDRESSES", "MAX_DEPTH", "site_address"]

MAX_DEPTH = 64
"""Frames examined when the entry function is not on the stack."""

_CACHE_LIMIT = 200_000
ADDRESSES: dict[tuple[Any, ...], str | None] = {}
"""The cache of :func:`site_address` by its key (also read by the compiled hot path)."""
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
    # the key (path_key's, built in the same walk: this runs on every draw)
    code = frame.f_code
    ids: list[Any] = [label, id(code), frame.f_lasti]
    if entry is not None and code is not entry:
        f = frame.f_back
        depth = 1
        while f is not None and depth < MAX_DEPTH:
            code = f.f_code
            ids.append(id(code))
            ids.append(f.f_lasti)
            depth += 1
            if code is entry:
                break
            f = f.f_back
    key = tuple(ids)
    try:
        return ADDRESSES[key]
    except KeyError:
        pass
    chain = [frame]
    f = frame.f_back
    while len(chain) < len(ids) // 2 and f is not None:
        chain.append(f)
        f = f.f_back
    KEPT.update(fr.f_code for fr in chain)
    hit: str | None = None
    if not any(fr.f_code is _ENGINE for fr in chain):
        home = None if entry is None else entry.co_filename
        hit = "/".join([*(_frame_text(fr, home) for fr in shown_frames(chain)), label])
    if len(ADDRESSES) >= _CACHE_LIMIT:
        ADDRESSES.clear()
    ADDRESSES[key] = hit
    return hit
