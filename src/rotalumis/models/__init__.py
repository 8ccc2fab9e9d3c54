"""Reference models with exact posteriors (used by the tests, the demo and the benchmarks).

Each model comes with a function computing its exact posterior (analytically, by
forward-backward or by enumeration), so every engine can be checked against the truth.
The sbibm benchmark tasks (:mod:`.sbi_tasks`) have exact likelihoods; their reference
posteriors are the samples sbibm ships (see ``benchmarks/bench_sbi_tasks.py``).
"""

from .branching import Branching
from .hmm import HiddenMarkovModel
from .marsaglia import MarsagliaUnknownMean
from .mixture import GaussianMixture
from .sbi_tasks import (
    SBI_TASKS,
    GaussianLinearTask,
    GaussianMixtureTask,
    SLCPTask,
    TwoMoonsTask,
)
from .unknown_mean import UnknownMean

__all__ = [
    "SBI_TASKS",
    "Branching",
    "GaussianLinearTask",
    "GaussianMixture",
    "GaussianMixtureTask",
    "HiddenMarkovModel",
    "MarsagliaUnknownMean",
    "SLCPTask",
    "TwoMoonsTask",
    "UnknownMean",
]
