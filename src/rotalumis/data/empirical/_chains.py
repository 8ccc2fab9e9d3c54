"""MCMC chains in an :class:`~rotalumis.data.Empirical`: their lengths and their ESS.

An MCMC result stores its chains one after another; ``lengths`` (a tuple of chain lengths
summing to ``N``) says where each one ends. Draws of a chain are autocorrelated, so the
number of draws says little about how much information they carry: the effective sample size
here is ArviZ's bulk ESS (rank-normalised split chains, Vehtari et al. 2021), which accounts
for the autocorrelation and, for several chains, for disagreement between them. Importance
sampling results keep Kish's weight-based ESS (``_weights.ess``).

ArviZ is imported lazily (it is slow to import and only needed here).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._columns import ArrayColumn, Column, RecordColumn, ScalarColumn

__all__ = [
    "check_chains",
    "column_ess",
    "import_arviz",
    "series_ess",
    "smallest",
    "sub_chains",
]

Chains = tuple[int, ...]

_MIN_DRAWS = 4  # ArviZ's split-chain ESS needs at least this many draws per chain


def import_arviz() -> Any:
    """Import ArviZ without its import-time FutureWarning about the 1.x refactor (we pin the
    0.23 line, the newest for Python 3.11; the warning is not actionable for users)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
        import arviz

    return arviz


def check_chains(lengths: Sequence[int], n: int) -> Chains:
    """Chain lengths as a tuple of positive ints that sum to ``n``, or a ``ValueError``."""
    out = tuple(int(x) for x in lengths)
    if any(x < 1 for x in out) or sum(out) != n:
        raise ValueError(f"chain lengths {list(out)} must be positive and sum to {n} entries")
    return out


def sub_chains(lengths: Chains | None, idx: np.ndarray) -> Chains | None:
    """The chains left after keeping the entries ``idx`` (increasing), e.g. thinning or
    dropping entries without a latent; ``None`` when ``idx`` is not increasing (a resample
    is not a chain any more) or no chains are given. Emptied chains are dropped."""
    if lengths is None or idx.shape[0] == 0:
        return None
    if idx.shape[0] > 1 and not bool((np.diff(idx) > 0).all()):
        return None
    ends = np.cumsum(lengths)
    counts = np.bincount(np.searchsorted(ends, idx, side="right"), minlength=len(lengths))
    return tuple(int(c) for c in counts if c > 0)


def series_ess(values: np.ndarray, lengths: Chains) -> float:
    """Bulk ESS of ``values`` (shape ``(N, ...)``, chains concatenated): the smallest over
    the elements of array values. Chains of equal length are assessed together; unequal
    ones each on their own, their ESS summed (chains under 4 draws left out). NaN when the
    chains are too short to tell; ``1`` for draws that never change (one sample's worth of
    information)."""
    x = np.asarray(values, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    if bool((x == x[:1]).all()):
        return 1.0
    if len(set(lengths)) == 1:
        groups = [x.reshape(len(lengths), lengths[0], -1)] if lengths[0] >= _MIN_DRAWS else []
    else:  # chains too short to assess are left out
        ends = np.cumsum((0, *lengths))
        groups = [x[a:b][None] for a, b in itertools.pairwise(ends)]
        groups = [g for g in groups if g.shape[1] >= _MIN_DRAWS]
    if not groups:
        return math.nan
    az = import_arviz()
    total = np.zeros(x.shape[1])
    for g in groups:
        with warnings.catch_warnings():  # constant elements: NaN, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            if g.shape[2] == 1:
                ess = np.asarray([az.ess(g[:, :, 0], method="bulk")], dtype=np.float64)
            else:  # all elements in one call, through a dataset
                data = az.ess(az.convert_to_dataset({"x": g}), method="bulk")["x"].values
                ess = np.asarray(data, dtype=np.float64).reshape(-1)
        constant = (g == g[:, :1]).all(axis=(0, 1))
        total += np.where(constant, 1.0 / len(groups), ess)
    return float(np.nanmin(total)) if not np.isnan(total).all() else math.nan


def smallest(values: Sequence[float | None]) -> float:
    """The smallest number, ignoring ``None`` and NaN (NaN if nothing is left)."""
    found = [v for v in values if v is not None and not math.isnan(v)]
    return min(found) if found else math.nan


def column_ess(col: Column, lengths: Chains) -> float | None:
    """Bulk ESS of a column (:func:`series_ess`); the smallest over the fields of dict
    values; ``None`` for values stored as Python objects or complex numbers."""
    if col.present is not None:
        idx = np.flatnonzero(col.present)
        sub = sub_chains(lengths, idx)
        if sub is None:
            return None
        return column_ess(col.take(idx), sub)
    if isinstance(col, RecordColumn):
        found = [column_ess(c, lengths) for c in col.fields.values()]
        return None if all(e is None for e in found) else smallest(found)
    if isinstance(col, ScalarColumn | ArrayColumn) and col.data.dtype.kind in "biuf":
        if col.data.shape[0] == 0 or col.data[0].size == 0:
            return None
        return series_ess(col.data, lengths)
    return None
