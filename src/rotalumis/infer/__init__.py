"""L3 inference engines as typed objects: :class:`Prior`, :class:`ImportanceSampling`,
:class:`MCMC` (with a kernel) and :class:`InferenceCompilation`, each with
``run(model, num_traces=..., observe=..., seed=...) -> Empirical``.

``model.posterior(engine=NAME, **options)`` is sugar over them: the names (``"prior"``,
``"is"``, ``"lmh"``, ``"rmh"``, ``"pmmh"``, ``"ic"``) are listed in :mod:`.engines` and
declared as entry points, so the core finds them without importing this package.

MCMC is built from kernels (``init(rng) -> state``, ``step(state, rng) -> state``, see
:mod:`.kernel`): :class:`MHKernel` (single-site LMH/RMH, with a :class:`SitePolicy`) and
:class:`PseudoMarginalKernel` (named parameters, the simulator's other draws redrawn).

Sequential inference compilation (:func:`sequential_ic`, :mod:`.sequential`) and adaptive
inference compilation (:func:`adaptive_ic`, a network refit to one observation) use the
network layer.
"""

from typing import Any

from .adaptive import AdaptiveResult, adaptive_ic, tempering_exponent
from .engines import BUILTIN_ENGINES, lmh, pmmh, register_builtin_engines, rmh
from .ic import InferenceCompilation
from .importance import ImportanceSampling, Prior, proposal_log_density, sample_traces
from .kernel import Kernel, KernelState, ReplayKernel
from .mcmc import MCMC, ChainOptions, run_chains
from .mh_kernel import MHKernel, MHState
from .pmmh import PMMHState, PseudoMarginalKernel
from .sites import ParameterMatcher, ParameterSites, SitePolicy, UniformSites

__all__ = [
    "BUILTIN_ENGINES",
    "MCMC",
    "AdaptiveResult",
    "ChainOptions",
    "ImportanceSampling",
    "InferenceCompilation",
    "Kernel",
    "KernelState",
    "MHKernel",
    "MHState",
    "PMMHState",
    "ParameterMatcher",
    "ParameterSites",
    "Prior",
    "PseudoMarginalKernel",
    "ReplayKernel",
    "SequentialResult",
    "SitePolicy",
    "UniformSites",
    "adaptive_ic",
    "lmh",
    "pmmh",
    "proposal_log_density",
    "rmh",
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


register_builtin_engines()  # also without the entry points (an uninstalled source tree)
