"""L3 inference engines: prior, importance sampling, MCMC (LMH, RMH, pseudo-marginal MH) and
inference compilation, registered by name for ``model.posterior(engine=...)``.

MCMC is built from kernels (``init(rng) -> state``, ``step(state, rng) -> state``) run by
:func:`run_chains`: :class:`MHKernel` (single-site, with a :class:`SitePolicy`) and
:class:`PseudoMarginalKernel` (named parameters, the simulator's other draws redrawn).

Sequential inference compilation (:func:`sequential_ic`, :mod:`.sequential`) and adaptive
inference compilation (:func:`adaptive_ic`, a network refit to one observation) use the
network layer.
"""

from typing import Any

from rotalumis.core import register_engine

from .adaptive import AdaptiveResult, adaptive_ic, tempering_exponent
from .ic import inference_compilation
from .importance import importance_sampling, prior_sampling, sample_traces
from .kernel import Kernel, KernelState
from .mcmc import MHKernel, MHState
from .mh import (
    lightweight_mh,
    metropolis_hastings,
    pseudo_marginal_mh,
    random_walk_mh,
    run_chains,
)
from .pmmh import PMMHState, PseudoMarginalKernel
from .sites import ParameterMatcher, ParameterSites, SitePolicy, UniformSites

__all__ = [
    "AdaptiveResult",
    "Kernel",
    "KernelState",
    "MHKernel",
    "MHState",
    "PMMHState",
    "ParameterMatcher",
    "ParameterSites",
    "PseudoMarginalKernel",
    "SequentialResult",
    "SitePolicy",
    "UniformSites",
    "adaptive_ic",
    "importance_sampling",
    "inference_compilation",
    "lightweight_mh",
    "metropolis_hastings",
    "prior_sampling",
    "pseudo_marginal_mh",
    "random_walk_mh",
    "run_chains",
    "sample_traces",
    "sequential_ic",
    "tempering_exponent",
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
register_engine("pmmh", pseudo_marginal_mh)
register_engine("ic", inference_compilation)
