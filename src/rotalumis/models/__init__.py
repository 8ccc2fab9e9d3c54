"""Reference models with exact posteriors (used by the tests, the demo and the benchmarks).

Each model comes with a function computing its exact posterior (analytically, by
forward-backward or by enumeration), so every engine can be checked against the truth.
"""

from .branching import Branching
from .hmm import HiddenMarkovModel
from .marsaglia import MarsagliaUnknownMean
from .mixture import GaussianMixture
from .unknown_mean import UnknownMean

__all__ = [
    "Branching",
    "GaussianMixture",
    "HiddenMarkovModel",
    "MarsagliaUnknownMean",
    "UnknownMean",
]
