"""Layer L1 — results of inference: :class:`Empirical`, a columnar weighted set of samples,
and :class:`EmpiricalBuilder`, how engines accumulate one trace at a time.

Imports only :mod:`rotalumis.core`, torch and NumPy.
"""

from .builder import EmpiricalBuilder
from .empirical import Empirical

__all__ = ["Empirical", "EmpiricalBuilder"]
