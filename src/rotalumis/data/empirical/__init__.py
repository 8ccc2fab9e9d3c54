"""Results of inference: :class:`Empirical`, a columnar weighted set of samples (in memory or
saved to one ``.npz`` file), and :class:`EmpiricalBuilder`, how engines accumulate it one
trace at a time.

Modules: ``empirical.py`` (the class), ``builder.py``; private: ``_columns.py`` (immutable
column kinds), ``_buffers.py`` (growable buffers behind the builder), ``_from_data.py``
(columns from arrays, tensors and lists), ``_concat.py``,
``_weights.py`` (normalisation, ESS, resampling), ``_column_stats.py`` (weighted statistics
of one column) and ``_weighted_statistics.py`` (the statistics properties of an Empirical),
``_chains.py`` (MCMC chain structure, ArviZ), ``_storage.py`` (the file format),
``_summary.py`` (summary tables), ``run_info.py`` (typed run information: :class:`RunInfo`).
"""

from ._chains import import_arviz  # ArviZ without its import-time FutureWarning
from ._weights import ess as kish_ess
from ._weights import normalized_weights
from .builder import EmpiricalBuilder
from .empirical import Empirical
from .run_info import ChainInfo, RunInfo

__all__ = [
    "ChainInfo",
    "Empirical",
    "EmpiricalBuilder",
    "RunInfo",
    "import_arviz",
    "kish_ess",
    "normalized_weights",
]
