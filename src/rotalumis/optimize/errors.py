"""Errors of the optimization layer."""

from __future__ import annotations

from rotalumis.core.errors import RotalumisError

__all__ = ["OptimizationError"]


class OptimizationError(RotalumisError, RuntimeError):
    """An optimization cannot go on; the message names the culprit.

    Raised for a parameter that receives no gradient (named), a loss or gradient that is
    not finite (naming the step and the parameter values), a loss that is not a scalar,
    or a model that fails at some step (naming the step).
    """
