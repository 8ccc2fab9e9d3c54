"""The exception hierarchy of rotalumis, documented in one place.

Every error rotalumis raises on purpose derives from :class:`RotalumisError`, so callers can
catch them all at once; each also derives from the built-in exception that fits it best
(``ValueError``, ``KeyError``, ``RuntimeError``...), so generic handlers keep working.

=============================  ==========================================================
exception                      raised when
=============================  ==========================================================
``DistributionError``          a distribution gets invalid parameters (a ``ValueError``)
``SupportError``               a value lies outside a distribution's support
``ObservationError``           an observation is unknown, not finite or of the wrong shape
``InferenceError``             an engine cannot produce a posterior (e.g. all weights zero)
``ModelError``                 a model is malformed or raised during an execution
``TraceLimitError``            one execution exceeded its limits per trace (a ``ModelError``)
``CheckpointError``            a training checkpoint belongs to another training run
``DatasetError``               a trace dataset or saved Empirical is missing or corrupt
``RemoteSimulatorError``       a PPX simulator died, timed out or cannot be reached
``SimulatorLostError``         a simulator of a pool died during a work unit (retried)
``ProtocolError``              a PPX message is malformed, truncated or out of sequence
=============================  ==========================================================

Warnings (``warnings.warn``; filter them like any warning):

==================================  =====================================================
warning                             issued when
==================================  =====================================================
``EscapedRandomnessWarning``        two executions of a model with the same seed differ:
                                    some of the simulator's randomness escapes the engine
==================================  =====================================================
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckpointError",
    "DatasetError",
    "DistributionError",
    "EscapedRandomnessWarning",
    "InferenceError",
    "ModelError",
    "ObservationError",
    "ProtocolError",
    "RemoteSimulatorError",
    "RotalumisError",
    "SimulatorLostError",
    "SupportError",
    "TraceLimitError",
    "execution_error",
]


class RotalumisError(Exception):
    """Base class of every error rotalumis raises on purpose."""


class DistributionError(RotalumisError, ValueError):
    """Invalid distribution parameters; the message names the distribution and parameter."""


class SupportError(RotalumisError, ValueError):
    """A value outside the support of a distribution (e.g. an observation of -1 for Poisson)."""


class ObservationError(RotalumisError, KeyError):
    """An observation name the model never observes, a non-finite observed value, or a value
    whose shape is not the shape of the site it conditions."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class InferenceError(RotalumisError, RuntimeError):
    """An engine could not produce a posterior (all weights zero, no accepted state, ...)."""


class ModelError(RotalumisError, RuntimeError):
    """A model is malformed (e.g. no ``forward``) or failed during an execution."""


class TraceLimitError(ModelError):
    """One execution made more random choices, or ran longer, than its limits per trace
    allow (see :class:`~rotalumis.core.limits.TraceLimits`); names the model and the limit."""


class CheckpointError(RotalumisError, ValueError):
    """A training checkpoint was written by a run with another configuration (network,
    hyper-parameters, seed, model or dataset), so resuming it would train something else."""


class DatasetError(RotalumisError, OSError):
    """A saved result or trace dataset is missing, truncated or corrupt; names the file."""


class RemoteSimulatorError(RotalumisError, RuntimeError):
    """A PPX simulator died, stopped answering within the timeout, or cannot be reached."""


class SimulatorLostError(RemoteSimulatorError):
    """One simulator of a pool died or stopped answering during a work unit.

    Attributes:
        address: The simulator's address.
        retryable: Whether another simulator of the pool is left to run the unit again
            (executors do so, see :mod:`rotalumis.core.executor`).
    """

    def __init__(self, message: str, address: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.address = address
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields through pickling (workers)
        return (type(self), (self.args[0] if self.args else "", self.address, self.retryable))


class ProtocolError(RotalumisError, ValueError):
    """A PPX message was malformed, truncated, of an unknown type or out of sequence."""


class EscapedRandomnessWarning(UserWarning):
    """Two executions of a model with the same seed gave different results or observations:
    some randomness is drawn outside the engine's control (not intercepted), so it is
    neither recorded, replayed nor proposed, and posteriors can be silently wrong."""


def execution_error(model_name: str, exc: Exception, where: str) -> RotalumisError:
    """The error to raise (``from exc``) when an execution of a model failed.

    A rotalumis error keeps its type, with ``where`` (which trace of which run, its seed)
    added to its message; any other exception becomes a :class:`ModelError` naming the
    model, the exception and ``where``, so the failing trace can be reproduced.

    Args:
        model_name: The model's name.
        exc: What the execution raised.
        where: The trace and the seed that reproduce it, e.g. ``"trace 7 of the run with
            seed 3"``.
    """
    if isinstance(exc, RotalumisError):
        try:
            new: RotalumisError = type(exc)(f"{exc} ({where})")
        except Exception:  # a subclass with another constructor
            new = ModelError(f"model {model_name!r}: {exc} ({where})")
        new.__dict__.update(exc.__dict__)
        return new
    detail = f": {exc}" if str(exc) else ""
    return ModelError(f"model {model_name!r} raised {type(exc).__name__}{detail} ({where})")
