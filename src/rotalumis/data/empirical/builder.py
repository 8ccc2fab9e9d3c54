""":class:`EmpiricalBuilder`: how inference engines accumulate an :class:`Empirical`."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from ._buffers import Buffer, FloatBuffer, RecordBuffer, new_buffer
from ._columns import Column, RecordColumn, ScalarColumn, freeze
from .empirical import Empirical

__all__ = ["EmpiricalBuilder"]


class EmpiricalBuilder:
    """Collects one entry per trace, column by column, and builds an :class:`Empirical`.

    :meth:`append` is called once per trace in the innermost loop of every engine, so it is
    amortised O(1) and keeps no Python object per entry for numbers and fixed-shape tensors:

    * ``bool``/``int``/``float`` values go into typed :class:`array.array` buffers (an ``int``
      column meeting a ``float`` becomes ``float64``);
    * tensors and NumPy arrays of one fixed shape go into a ``(capacity, *shape)`` array that
      doubles when full (tensors are detached and moved to the CPU);
    * dicts with ``str`` keys get one column per key, recursively;
    * values whose type or shape changes between entries fall back to a Python list column
      (statistics other than :meth:`Empirical.mode` are then unavailable for them).

    Named latents are stored the same way, one column per name; a latent missing from some
    entries (stochastic control flow) is recorded as missing there, and its statistics use
    only the entries that have it.

    Args:
        name: Name of the resulting :class:`Empirical` (e.g. ``"posterior"``).

    Example:
        >>> b = EmpiricalBuilder(name="posterior")
        >>> for x, lw in [(0.5, -1.0), (1.5, -0.5)]:
        ...     b.append(x, lw, latents={"mu": x / 2})
        >>> emp = b.build()
        >>> len(emp), emp.get("mu").latent_names
        (2, ())
    """

    __slots__ = (
        "_latents",
        "_logw",
        "_logw_append",
        "_name",
        "_traces",
        "_value_fast",
        "_values",
    )

    def __init__(self, name: str | None = None) -> None:
        self._name = name
        self._logw = array("d")
        self._logw_append = self._logw.append
        self._values: Buffer | None = None
        self._value_fast: Any = None  # array.append of a float value column (the hot path)
        self._latents = RecordBuffer(strict=True)
        self._traces: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._logw)

    def append(
        self,
        value: Any,
        log_weight: float = 0.0,
        latents: dict[str, Any] | None = None,
        trace: Any | None = None,
    ) -> None:
        """Add one entry.

        Args:
            value: The result of the execution (number, tensor, array, dict, any object).
            log_weight: Its unnormalised log importance weight (``-inf`` for weight zero).
            latents: Named latent values of the trace (name -> number or tensor).
            trace: The full trace; keep it only when the user asked for traces, it is the
                one thing stored as a Python object per entry.

        Raises:
            TypeError: if ``log_weight`` is not a real number or ``latents`` is not a dict
                with ``str`` keys.
        """
        logw = self._logw
        n = len(logw)
        self._logw_append(log_weight)  # raises TypeError before anything is stored
        lat = self._latents
        if latents is not None:
            if lat.n != n:  # no latent so far: entries without latents were not counted
                lat.n = n
            try:
                lat.push(latents)
            except TypeError:  # rejected, and the latent buffers restored
                del logw[n:]
                raise
        elif lat.fields:
            lat.push({})
        vf = self._value_fast
        if vf is not None and type(value) is float:
            vf(value)
        else:
            self._push_value(value)
        if trace is not None or self._traces is not None:
            traces = self._traces
            if traces is None:
                traces = self._traces = [None] * n
            traces.append(trace)

    def _push_value(self, value: Any) -> None:
        vb = self._values
        if vb is None:
            vb = new_buffer(value)
        nb = vb.push(value)
        self._values = nb
        self._value_fast = nb._append if type(nb) is FloatBuffer else None

    def build(self) -> Empirical:
        """Return an immutable :class:`Empirical` of the entries so far (copies the buffers,
        so the builder can keep appending)."""
        n = len(self._logw)
        logw = freeze(np.frombuffer(self._logw, dtype=np.float64).copy())
        values: Column = (
            ScalarColumn(freeze(np.zeros(0))) if self._values is None else self._values.finish()
        )
        lat = self._latents.finish()
        assert isinstance(lat, RecordColumn)
        traces = None
        if self._traces is not None:
            traces = self._traces + [None] * (n - len(self._traces))
        return Empirical._from_columns(values, logw, dict(lat.fields), traces, self._name)
