"""L3 inference engines: prior, importance sampling, LMH and RMH (registered by name).

Sequential inference compilation (:func:`sequential_ic`, :mod:`.sequential`) loads the
network layer only when used.
"""

from typing import Any

from rotalumis.core import register_engine

from .ic import inference_compilation
from .importance import importance_sampling, prior_sampling, sample_traces
from .mcmc import MHKernel, MHState
from .mh import lightweight_mh, metropolis_hastings, random_walk_mh

__all__ = [
    "MHKernel",
    "MHState",
    "SequentialResult",
    "importance_sampling",
    "inference_compilation",
    "lightweight_mh",
    "metropolis_hastings",
    "prior_sampling",
    "random_walk_mh",
    "sample_traces",
    "sequential_ic",
]


def __getattr__(name: str) -> Any:
    if name in ("sequential_ic", "SequentialResult"):
        from . import sequential  # imports rotalumis.nn (torch.nn, pyarrow) only when used

        return getattr(sequential, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_engine("prior", prior_sampling)
register_engine("is", importance_sampling)
register_engine("importance", importance_sampling)
register_engine("lmh", lightweight_mh)
register_engine("rmh", random_walk_mh)
register_engine("ic", inference_compilation)
