"""L3 inference engines: prior, importance sampling, LMH and RMH (registered by name)."""

from rotalumis.core import register_engine

from .ic import inference_compilation
from .importance import importance_sampling, prior_sampling, sample_traces
from .mcmc import MHKernel, MHState
from .mh import lightweight_mh, metropolis_hastings, random_walk_mh

__all__ = [
    "MHKernel",
    "MHState",
    "importance_sampling",
    "inference_compilation",
    "lightweight_mh",
    "metropolis_hastings",
    "prior_sampling",
    "random_walk_mh",
    "sample_traces",
]

register_engine("prior", prior_sampling)
register_engine("is", importance_sampling)
register_engine("importance", importance_sampling)
register_engine("lmh", lightweight_mh)
register_engine("rmh", random_walk_mh)
register_engine("ic", inference_compilation)
