"""Distributions: the PPX set plus TruncatedNormal and Mixture (see :mod:`.base`)."""

from .base import Distribution
from .normal import Normal

__all__ = ["Distribution", "Normal"]
