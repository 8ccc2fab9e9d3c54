"""The exception hierarchy of rotalumis, documented in one place.

Every error rotalumis raises on purpose derives from :class:`RotalumisError`, so callers can
catch them all at once; each also derives from the built-in exception that fits it best
(``ValueError``, ``KeyError``, ``RuntimeError``...), so generic handlers keep working.

=============================  ==========================================================
exception                      raised when
=============================  ==========================================================
``DistributionError``          a distribution gets invalid parameters (a ``ValueError``)
``SupportError``               a value lies outside a distribution's support
``ObservationError``           an observation is unknown to the model or not finite
``InferenceError``             an engine cannot produce a posterior (e.g. all weights zero)
``ModelError``                 a model is malformed or raised during an execution
``DatasetError``               a trace dataset or saved Empirical is missing or corrupt
``RemoteSimulatorError``       a PPX simulator died, timed out or cannot be reached
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

__all__ = [
    "DatasetError",
    "DistributionError",
    "EscapedRandomnessWarning",
    "InferenceError",
    "ModelError",
    "ObservationError",
    "ProtocolError",
    "RemoteSimulatorError",
    "RotalumisError",
    "SupportError",
]


class RotalumisError(Exception):
    """Base class of every error rotalumis raises on purpose."""


class DistributionError(RotalumisError, ValueError):
    """Invalid distribution parameters; the message names the distribution and parameter."""


class SupportError(RotalumisError, ValueError):
    """A value outside the support of a distribution (e.g. an observation of -1 for Poisson)."""


class ObservationError(RotalumisError, KeyError):
    """An observation name the model never observes, or a non-finite observed value."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class InferenceError(RotalumisError, RuntimeError):
    """An engine could not produce a posterior (all weights zero, no accepted state, ...)."""


class ModelError(RotalumisError, RuntimeError):
    """A model is malformed (e.g. no ``forward``) or failed during an execution."""


class DatasetError(RotalumisError, OSError):
    """A saved result or trace dataset is missing, truncated or corrupt; names the file."""


class RemoteSimulatorError(RotalumisError, RuntimeError):
    """A PPX simulator died, stopped answering within the timeout, or cannot be reached."""


class ProtocolError(RotalumisError, ValueError):
    """A PPX message was malformed, truncated, of an unknown type or out of sequence."""


class EscapedRandomnessWarning(UserWarning):
    """Two executions of a model with the same seed gave different results or observations:
    some randomness is drawn outside the engine's control (not intercepted), so it is
    neither recorded, replayed nor proposed, and posteriors can be silently wrong."""
