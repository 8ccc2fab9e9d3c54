"""Which implementation of the intercept hot path runs: compiled or pure Python.

The common case of an intercepted draw (a call site seen before in a loop, an unnamed
site, prior sampling) has a C implementation, ``rotalumis.intercept._accel``, built at
installation when a C compiler and the Python headers are there (``setup.py``). The pure
Python code of :mod:`._session`, :mod:`._random_patch` and :mod:`._numpy_patch` is both
its reference and its fallback: the compiled code hands every other case to it before
changing anything, so the two record the same sites, addresses, values and log-probabilities
(tested). Setting the environment variable ``ROTALUMIS_PURE_PYTHON=1`` (read once, at
import) forces the pure-Python path.

:data:`DESCRIPTION` says which one runs, in one line (the Makefile prints it after
installing).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

__all__ = ["ACCEL", "DESCRIPTION", "PURE_PYTHON_ENV"]

log = logging.getLogger(__name__)

PURE_PYTHON_ENV = "ROTALUMIS_PURE_PYTHON"
"""Environment variable: set to anything but ``""`` or ``"0"`` to force pure Python."""


def _load() -> tuple[ModuleType | None, str]:
    forced = os.environ.get(PURE_PYTHON_ENV, "")
    if forced not in ("", "0"):
        return None, f"pure Python ({PURE_PYTHON_ENV}={forced})"
    try:
        import rotalumis.intercept._accel as accel
    except ImportError as exc:
        return None, f"pure Python (the C accelerator is not built: {exc})"
    return accel, "compiled hot path (rotalumis.intercept._accel)"


ACCEL, DESCRIPTION = _load()
"""The compiled module (``None``: pure Python) and a one-line description."""
log.debug("interception: %s", DESCRIPTION)
