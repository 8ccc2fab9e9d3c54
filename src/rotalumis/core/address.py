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

Generated code (functions compiled at run time from source strings: decorator wrappers,
``exec``-built functions, networkx's ``argmap`` wrappers, notebook cells) is recognised by
its file name, which names no file on disk (``<string>``, ``<decorator-gen-3>``,
``<class '...argmap'> compilation 27``). Code generators often number what they compile
with a process-wide counter (``argmap_gnp_random_graph_26``), so in the name of a generated
function every run of digits after ``_`` or ``-`` reads ``#``
(``argmap_gnp_random_graph_#``). And a frame that only forwards its arguments into
generated code (``return generated(*args, **kwargs)``: the trampoline with which lazily
compiled wrappers replace themselves on their first call) is left out. So the same call
path gives the same address in every process and every run, whatever ran before it.

Computing an address from the stack is on the hot path of every ``sample`` call, so the
string for a call path is cached, keyed by the identities of the code objects and the
bytecode positions of its frames (a cache key only; it never appears in an address).
"""

from __future__ import annotations

import dis
import os
import re
import sys
from types import CodeType, FrameType

__all__ = [
    "KEPT",
    "MAX_DEPTH",
    "frames_address",
    "function_name",
    "is_generated",
    "path_key",
    "remember_address",
    "shown_frames",
]

MAX_DEPTH = 64
"""Frames examined when the model's entry point is not on the stack (then the deepest
``MAX_DEPTH`` frames make the address)."""

_cache: dict[object, str] = {}

_GENERATED: dict[str, bool] = {}
_COUNTER = re.compile(r"(?<=[_-])\d+")
_CALL_EX = dis.opmap["CALL_FUNCTION_EX"]
_RETURN = dis.opmap["RETURN_VALUE"]
_OFFSET_SCALE = 2 if sys.version_info < (3, 11) else 1  # 3.10 counts f_lasti in instructions


def is_generated(code: CodeType) -> bool:
    """Whether ``code`` was compiled at run time from a string (its file is not on disk).

    Frozen standard-library modules (``<frozen os>``) are not generated code.
    """
    filename = code.co_filename
    hit = _GENERATED.get(filename)
    if hit is None:
        if filename.startswith("<"):
            hit = not filename.startswith("<frozen ")
        else:
            hit = not os.path.isfile(filename)
        _GENERATED[filename] = hit
    return hit


def function_name(code: CodeType, qualified: bool) -> str:
    """The name of ``code``'s function as addresses show it (counters of generated code as ``#``).

    Args:
        code: The code object.
        qualified: Use the qualified name (``Class.method``, ``outer.<locals>.inner``).
    """
    name = getattr(code, "co_qualname", code.co_name) if qualified else code.co_name
    return _COUNTER.sub("#", name) if is_generated(code) else name


def _forwards_into_generated(frame: FrameType, callee: CodeType) -> bool:
    """Whether ``frame`` is in ``return f(*args, **kwargs)`` with ``f`` generated code."""
    if not is_generated(callee):
        return False
    raw = frame.f_code.co_code
    at = frame.f_lasti * _OFFSET_SCALE
    return at + 2 < len(raw) and raw[at] == _CALL_EX and raw[at + 2] == _RETURN


def shown_frames(chain: list[FrameType]) -> list[FrameType]:
    """The frames of ``chain`` (innermost first) that an address lists, outermost first.

    Leaves out the frames that only forward their arguments into generated code (the
    innermost and the outermost frame are always kept).
    """
    last = len(chain) - 1
    return [
        fr
        for i, fr in enumerate(reversed(chain))
        if i == 0 or i == last or not _forwards_into_generated(fr, chain[last - i - 1].f_code)
    ]


def _frame_text(frame: FrameType) -> str:
    return f"{function_name(frame.f_code, False)}:{frame.f_lineno}"


def frames_address(frame: FrameType, entry: CodeType | None) -> str:
    """The ``<frames>`` part of the address of a primitive called from ``frame``.

    Args:
        frame: The frame that called the primitive (the sample site).
        entry: Code object of the model's entry function, or ``None`` outside a model run
            (then only ``frame`` itself is used).
    """
    code = frame.f_code
    if entry is None or code is entry:
        key: object = (id(code), frame.f_lasti)
        hit = _cache.get(key)
        if hit is None:
            KEPT.add(code)
            hit = _cache[key] = _frame_text(frame)
        return hit
    chain = [frame]
    f = frame.f_back
    while f is not None and len(chain) < MAX_DEPTH:
        chain.append(f)
        if f.f_code is entry:
            break
        f = f.f_back
    key = path_key(chain)
    hit = _cache.get(key)
    if hit is None:
        KEPT.update(fr.f_code for fr in chain)
        hit = _cache[key] = "/".join([_frame_text(fr) for fr in shown_frames(chain)])
    return hit


_SUSPENDABLE = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
_MEMO_LIMIT = 1024


def remember_address(
    memo: dict[tuple[int, int], tuple[FrameType, int, CodeType | None, str]],
    frame: FrameType,
    entry: CodeType | None,
    address: str,
) -> None:
    """Remember ``address``, the :func:`frames_address` of ``frame``, in ``memo`` for the
    next visit of the site (primitives remember sites visited more than once per execution).

    ``memo`` maps the site's code and instruction to its caller's frame (the parent), the
    parent's instruction, ``entry`` and the address. While the parent is the same live
    activation at the same instruction, the frames above it cannot have changed, so the
    next visit finds the address with one lookup (primitives check the entry without a
    call): a loop in the model, or a helper called from one, walks no stack. A parent that
    can be suspended (a generator or coroutine) is never remembered: a resumed generator's
    callers may differ. ``memo`` holds frames, so its owner (the execution) clears it
    between executions; it is also cleared when it reaches ``_MEMO_LIMIT`` sites.
    """
    parent = frame.f_back  # frames_address put frame.f_code into KEPT
    if parent is not None and not parent.f_code.co_flags & _SUSPENDABLE:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[(id(frame.f_code), frame.f_lasti)] = (parent, parent.f_lasti, entry, address)


KEPT: set[CodeType] = set()
"""Code objects named by cache keys, kept alive so that their ids are never reused."""


def path_key(chain: list[FrameType]) -> tuple[int, ...]:
    """A cache key of a call path: ids and bytecode positions of its frames' code.

    Identity, not the code object itself, because hashing a code object hashes its contents
    (a few tenths of a microsecond per frame, on every call); a code object whose id is in a
    key is kept alive in :data:`KEPT`, so that id is never reused.
    """
    key: list[int] = []
    for fr in chain:
        key.append(id(fr.f_code))
        key.append(fr.f_lasti)
    return tuple(key)
