"""L3 inference engines: prior, importance sampling, LMH and RMH (registered by name), and
adaptive inference compilation (a network refit to one observation)."""

from rotalumis.core import register_engine

from .adaptive import AdaptiveResult, adaptive_ic, tempering_exponent
from .ic import inference_compilation
from .importance import importance_sampling, prior_sampling, sample_traces
from .mcmc import MHKernel, MHState
from .mh import lightweight_mh, metropolis_hastings, random_walk_mh

__all__ = [
    "AdaptiveResult",
    "MHKernel",
    "MHState",
    "adaptive_ic",
    "importance_sampling",
    "inference_compilation",
    "lightweight_mh",
    "metropolis_hastings",
    "prior_sampling",
    "random_walk_mh",
    "sample_traces",
    "tempering_exponent",
]

register_engine("prior", prior_sampling)
register_engine("is", importance_sampling)
register_engine("importance", importance_sampling)
register_engine("lmh", lightweight_mh)
register_engine("rmh", random_walk_mh)
register_engine("ic", inference_compilation)
