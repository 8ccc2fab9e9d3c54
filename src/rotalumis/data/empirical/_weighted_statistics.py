"""Weighted statistics of an :class:`~rotalumis.data.Empirical`'s values (a base class).

Kept apart from ``empirical.py`` to keep each file to one responsibility: this class only
reads ``_values`` (the value column), ``_logw`` and :attr:`weights`; ``_column_stats.py`` holds the
column-level computations and documents the types of the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _column_stats
from ._columns import Column, RecordColumn, ScalarColumn

__all__ = ["WeightedStatistics"]


class WeightedStatistics:
    """Mean, variance, quantiles, ... of weighted values; see :class:`Empirical`."""

    __slots__ = ()
    _values: Column
    _logw: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        raise NotImplementedError

    def _apply(self, stat: _column_stats.Stat) -> Any:
        if self._values.present is None and not isinstance(self._values, RecordColumn):
            return stat(self._values, self.weights)
        return _column_stats.apply(self._values, self._logw, stat)

    @property
    def mean(self) -> Any:
        """Weighted mean (elementwise for tensors; a dict for dict values)."""
        return self._apply(_column_stats.mean)

    @property
    def variance(self) -> Any:
        """Weighted variance ``sum w (x - mean)^2`` (not bias-corrected)."""
        return self._apply(_column_stats.variance)

    @property
    def stddev(self) -> Any:
        """Square root of :attr:`variance`."""
        return self._apply(_column_stats.stddev)

    def quantile(self, q: float) -> Any:
        """Weighted ``q``-quantile: the smallest value whose cumulative weight reaches ``q``
        (``numpy.quantile(..., weights=w, method="inverted_cdf")``), elementwise for tensors."""
        return self._apply(_column_stats.quantiles(np.asarray([q], dtype=np.float64), True))

    def quantiles(self, qs: Sequence[float]) -> Any:
        """Weighted quantiles for each probability in ``qs``, stacked on a new first axis."""
        return self._apply(
            _column_stats.quantiles(np.asarray(qs, dtype=np.float64).reshape(-1), False)
        )

    @property
    def median(self) -> Any:
        """The weighted 0.5-quantile (an actual sample value, see :meth:`quantile`)."""
        return self.quantile(0.5)

    @property
    def min(self) -> Any:
        """Smallest value among entries of positive weight (elementwise for tensors)."""
        return self._apply(_column_stats.order_stat("min"))

    @property
    def max(self) -> Any:
        """Largest value among entries of positive weight (elementwise for tensors)."""
        return self._apply(_column_stats.order_stat("max"))

    @property
    def mode(self) -> Any:
        """The value of largest total weight (for discrete values)."""
        return self._apply(_column_stats.mode)

    def histogram(
        self, bins: int | Sequence[float] = 30, range: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Weighted histogram of scalar values: ``(densities, bin_edges)`` as in
        ``numpy.histogram(values, bins, range, weights=weights, density=True)``."""
        x = self._values.data if isinstance(self._values, ScalarColumn) else None
        if x is None or self._values.present is not None:
            raise TypeError("histogram needs scalar values recorded in every entry")
        return np.histogram(x, bins=bins, range=range, weights=self.weights, density=True)
