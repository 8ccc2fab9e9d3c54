"""Trace of a Jacobian without building it: the engine of ``laplacian`` and ``div``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rotalumis.autodiff import _func
from rotalumis.autodiff.errors import AutodiffArgumentError

__all__ = ["CHUNK_ENTRY_BUDGET", "DEFAULT_CHUNK_SIZE", "default_chunk_size", "trace_over_basis"]

#: Most directions pushed through ``f`` per vectorized pass when ``chunk_size`` is ``None``.
DEFAULT_CHUNK_SIZE = 1024
#: With ``chunk_size=None`` a chunk's basis holds at most this many entries (8 MiB in float64).
CHUNK_ENTRY_BUDGET = 2**20

Directional = Callable[[Tensor], tuple[Tensor, Tensor]]


def default_chunk_size(n: int) -> int:
    """Directions per pass for an ``n``-dim input: ``min(n, 1024, 2^20 // n)``, at least 1."""
    return max(1, min(n, DEFAULT_CHUNK_SIZE, CHUNK_ENTRY_BUDGET // n))


def trace_over_basis(
    directional: Directional, x: Tensor, chunk_size: int | None, op: str
) -> tuple[Tensor, Tensor]:
    """Sum ``directional(e_i)[0]`` over the standard basis ``e_1..e_n`` of ``x``'s space.

    ``directional(e)`` returns ``(e . (J e), value)`` for one direction ``e``; ``value`` must
    not depend on ``e`` (it is ``f(x)``). The directions are pushed through in vectorized
    chunks (``torch.func.vmap``) of ``chunk_size``, so memory is ``O(chunk_size)`` copies of
    ``f``'s intermediates, and no ``n x n`` matrix (not even the identity) is ever built.

    Returns:
        ``(trace, value)``.
    """
    n = x.numel()
    if n == 0:
        raise AutodiffArgumentError(f"rotalumis.autodiff.{op}: x has no elements")
    if chunk_size is None:
        chunk_size = default_chunk_size(n)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: chunk_size must be a positive int or None, "
            f"got {chunk_size!r}"
        )
    total: Tensor | None = None
    value: Tensor | None = None
    batched = _func.vmap_keep_aux(directional)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        index = torch.arange(start, stop, device=x.device)
        basis = torch.nn.functional.one_hot(index, n).to(dtype=x.dtype)
        quadratic, value = batched(basis.reshape(stop - start, *x.shape))
        part = quadratic.sum()
        total = part if total is None else total + part
    assert total is not None and value is not None  # n >= 1
    return total, value
