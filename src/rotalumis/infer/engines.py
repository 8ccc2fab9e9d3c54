"""The built-in engines by name: what ``model.posterior(engine=NAME, **options)`` makes.

Each name maps to a factory whose keyword parameters are the engine's options (checked by
:func:`rotalumis.core.engines.create_engine`, which names the engine and lists them when an
option is unknown):

* ``"prior"``: :class:`~.importance.Prior`;
* ``"is"`` (also ``"importance"``): :class:`~.importance.ImportanceSampling`, the prior as
  proposal;
* ``"lmh"``, ``"rmh"``: :func:`lmh`, :func:`rmh`, an :class:`~.mcmc.MCMC` with an
  :class:`~.mh_kernel.MHKernel`;
* ``"pmmh"``: :func:`pmmh`, an :class:`~.mcmc.MCMC` with a
  :class:`~.pmmh.PseudoMarginalKernel`;
* ``"ic"``: :class:`~.ic.InferenceCompilation`.

The core finds them through the ``rotalumis.engines`` entry points of ``pyproject.toml``
(:data:`BUILTIN_ENGINES` is the same table; importing :mod:`rotalumis.infer` registers it
too). Another package adds an engine by declaring an entry point in that group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from rotalumis.core.engines import EngineFactory, register_engine

from .ic import InferenceCompilation
from .importance import ImportanceSampling, Prior
from .mcmc import MCMC, ChainOptions
from .mh_kernel import MHKernel
from .pmmh import PseudoMarginalKernel
from .sites import ParameterSites, SitePolicy

__all__ = ["BUILTIN_ENGINES", "lmh", "pmmh", "register_builtin_engines", "rmh"]


def _mh(
    random_walk: bool,
    scale: float,
    params: Sequence[str] | str | None,
    param_probability: float,
    site_policy: SitePolicy | None,
    redraw_probability: float,
) -> MHKernel:
    if params is not None:
        if site_policy is not None:
            raise ValueError("give params or site_policy, not both")
        site_policy = ParameterSites(params, param_probability)
    return MHKernel(
        random_walk=random_walk,
        scale=scale,
        site_policy=site_policy,
        redraw_probability=redraw_probability,
    )


def lmh(
    *,
    params: Sequence[str] | str | None = None,
    param_probability: float = 0.5,
    site_policy: SitePolicy | None = None,
    redraw_probability: float = 0.5,
    **chain: Unpack[ChainOptions],
) -> MCMC:
    """Lightweight Metropolis-Hastings: single-site moves proposed from the prior.

    Args:
        params: Names or address patterns of the parameters: a move then changes one of
            them with probability ``param_probability`` (:class:`~.sites.ParameterSites`),
            instead of picking among all random choices uniformly.
        param_probability: See ``params``.
        site_policy: A :class:`~.sites.SitePolicy` (instead of ``params``).
        redraw_probability: See :class:`~.mh_kernel.MHKernel`.
        **chain: The chain options, :class:`~.mcmc.ChainOptions` (``burn_in``, ``thin``,
            ``num_chains``, ``initial_trace``, ``keep_traces``, ``progress``, ``workers``,
            ``cluster``).

    Returns:
        The :class:`~.mcmc.MCMC` engine.
    """
    kernel = _mh(False, 0.5, params, param_probability, site_policy, redraw_probability)
    return MCMC(kernel, **chain)


def rmh(
    *,
    scale: float = 0.5,
    params: Sequence[str] | str | None = None,
    param_probability: float = 0.5,
    site_policy: SitePolicy | None = None,
    redraw_probability: float = 0.5,
    **chain: Unpack[ChainOptions],
) -> MCMC:
    """Random-walk MH: Gaussian steps on continuous sites, prior draws on discrete ones.

    Args:
        scale: Step size relative to each site's prior standard deviation.
        params: See :func:`lmh` (also ``param_probability``, ``site_policy``,
            ``redraw_probability`` and the chain options).

    Returns:
        The :class:`~.mcmc.MCMC` engine.
    """
    kernel = _mh(True, scale, params, param_probability, site_policy, redraw_probability)
    return MCMC(kernel, **chain)


def pmmh(
    *,
    params: Sequence[str] | str | None = None,
    num_particles: int = 1,
    proposal: str = "random_walk",
    scale: float = 0.5,
    refresh: float = 1.0,
    **chain: Unpack[ChainOptions],
) -> MCMC:
    """Pseudo-marginal MH over ``params``, every other draw redrawn in each run (a fraction
    ``refresh`` of it for correlated PMMH); see :class:`~.pmmh.PseudoMarginalKernel`
    (``num_particles``, ``proposal``, ``scale``, ``refresh``) and :class:`~.mcmc.MCMC` (the
    chain options).

    Raises:
        ValueError: without ``params``, or for invalid options.
    """
    if params is None:
        raise ValueError(
            "pseudo-marginal MH needs params=[...]: the names or address patterns of the "
            "parameters to infer (every other random choice is redrawn in each run)"
        )
    kernel = PseudoMarginalKernel(
        params=params, num_particles=num_particles, proposal=proposal, scale=scale,
        refresh=refresh,
    )  # fmt: skip
    return MCMC(kernel, **chain)


#: The built-in engines by name (the ``rotalumis.engines`` entry points declare the same).
BUILTIN_ENGINES: dict[str, EngineFactory] = {
    "prior": Prior,
    "is": ImportanceSampling,
    "importance": ImportanceSampling,
    "lmh": lmh,
    "rmh": rmh,
    "pmmh": pmmh,
    "ic": InferenceCompilation,
}


def register_builtin_engines() -> None:
    """Register :data:`BUILTIN_ENGINES` in this process (works without the entry points,
    e.g. from a source tree that was not installed)."""
    for name, factory in BUILTIN_ENGINES.items():
        register_engine(name, factory)
