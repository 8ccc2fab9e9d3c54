"""The MCMC engines: chains of any :class:`~.kernel.Kernel` (LMH, RMH, pseudo-marginal MH).

:func:`run_chains` is the one chain loop (burn-in, thinning, several chains, worker
processes); :func:`metropolis_hastings` and :func:`pseudo_marginal_mh` build a kernel from
engine options and run it, which is what ``model.posterior(engine="lmh" | "rmh" | "pmmh")``
calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rotalumis.core import RNG, Model, Trace
from rotalumis.core.parallel import check_parallel, map_in_workers
from rotalumis.data import Empirical, EmpiricalBuilder

from ._common import ObservationChecker, check_num_traces
from ._progress import ProgressBar
from .kernel import Kernel
from .mcmc import MHKernel
from .pmmh import PseudoMarginalKernel
from .sites import ParameterSites, SitePolicy

__all__ = [
    "lightweight_mh",
    "metropolis_hastings",
    "pseudo_marginal_mh",
    "random_walk_mh",
    "run_chains",
]

log = logging.getLogger(__name__)


def run_chains(
    kernel: Kernel[Any],
    num_traces: int,
    *,
    seed: int | None = None,
    burn_in: int = 0,
    thin: int = 1,
    num_chains: int = 1,
    initial_trace: Trace | None = None,
    keep_traces: bool = False,
    progress: bool | None = None,
    workers: int = 0,
) -> Any:
    """Run ``num_chains`` chains of ``kernel`` and collect ``num_traces`` samples per chain.

    Args:
        kernel: The MCMC kernel (it holds the model and the observations).
        num_traces: Samples kept per chain (after burn-in, one every ``thin`` moves).
        seed: Seed; chain ``c`` uses an independent stream derived from it.
        burn_in: Moves discarded at the start of each chain.
        thin: Keep one sample every ``thin`` moves.
        num_chains: Independent chains.
        initial_trace: Starting trace for every chain (default: a prior draw).
        keep_traces: Keep full traces in the result.
        progress: Show a progress bar (default: when on a terminal).
        workers: Run the chains in this many worker processes (``0``: one after another
            here); each chain's random stream is the same wherever it runs, so is the result.

    Returns:
        An equally weighted ``Empirical`` of all kept samples, chains one after another
        (``result.chains`` holds their lengths, so ``result.ess`` is the autocorrelation-
        aware bulk ESS); ``result.metadata["chains"]`` holds the per-chain lengths and
        acceptance rates, ``result.metadata["log_prob"]`` the joint log density of every
        kept sample.
    """
    check_num_traces(num_traces)
    check_num_traces(thin, "thin")
    check_num_traces(num_chains, "num_chains")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    model, observe = kernel.model, kernel.observe
    check_parallel(model, workers)
    root = RNG(seed)
    name = kernel.name
    moves = burn_in + num_traces * thin

    def chain(c: int, bar: ProgressBar | None = None) -> tuple[Empirical, float, list[float]]:
        """Chain ``c``: its samples, acceptance rate and joint log densities."""
        rng = root.spawn(c) if num_chains > 1 else root
        builder = EmpiricalBuilder(name=model.name)
        log_probs: list[float] = []  # joint log density of each kept sample (for plots)
        checker = ObservationChecker(model, observe)
        with kernel.session(rng):
            state = kernel.init(rng, initial_trace)
            checker.check(state.trace)
            checker.finish()
            for i in range(moves):
                state = kernel.step(state, rng)
                if i >= burn_in and (i - burn_in + 1) % thin == 0:
                    t = state.trace
                    log_probs.append(float(t.log_prob))
                    builder.append(
                        t.result, 0.0, latents=t.named_latents, trace=t if keep_traces else None
                    )
                if bar is not None:
                    bar.update(c * moves + i + 1, f"acc {state.acceptance_rate:.2f}")
        log.info("%s chain %d: acceptance rate %.3f", name, c, state.acceptance_rate)
        return builder.build(), state.acceptance_rate, log_probs

    with ProgressBar(moves * num_chains, name, progress) as bar:
        if workers == 0 or num_chains == 1:
            runs = [chain(c, bar) for c in range(num_chains)]
        else:  # chain c draws from root.spawn(c) wherever it runs: the same result
            runs = map_in_workers(
                chain,
                num_chains,
                workers,
                lambda c, out: bar.update((c + 1) * moves, f"acc {out[1]:.2f}"),
            )
    chains = [emp for emp, _, _ in runs]
    rates = [rate for _, rate, _ in runs]
    result = Empirical.from_chains(chains)
    result.metadata["engine"] = name.lower()
    result.metadata["chains"] = [
        {"length": len(ch), "acceptance_rate": r} for ch, r in zip(chains, rates, strict=True)
    ]
    result.metadata["log_prob"] = [lp for _, _, lps in runs for lp in lps]
    return result


_RUN_OPTIONS = ("burn_in", "thin", "num_chains", "initial_trace", "keep_traces", "progress")


def _run_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of :func:`run_chains`; a ``TypeError`` names any other option."""
    unknown = sorted(set(options) - set(_RUN_OPTIONS))
    if unknown:
        raise TypeError(f"unknown MCMC option(s): {', '.join(unknown)}")
    return options


def metropolis_hastings(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    random_walk: bool = False,
    scale: float = 0.5,
    params: Sequence[str] | str | None = None,
    param_probability: float = 0.5,
    site_policy: SitePolicy | None = None,
    model_args: tuple[Any, ...] = (),
    workers: int = 0,
    **options: Any,
) -> Any:
    """Single-site MH chains (LMH or RMH); see :class:`~.mcmc.MHKernel`.

    Args:
        model: The model.
        num_traces: Samples kept per chain.
        observe: Observed values by name.
        seed: Seed.
        random_walk: RMH (``True``) or LMH (``False``).
        scale: RMH step size relative to each site's prior standard deviation.
        params: Names or address patterns of the parameters: a move then changes one of
            them with probability ``param_probability`` (:class:`~.sites.ParameterSites`),
            instead of picking among all random choices uniformly.
        param_probability: See ``params``.
        site_policy: A :class:`~.sites.SitePolicy` (instead of ``params``).
        model_args: Arguments for ``model.forward``.
        workers: Worker processes for the chains (same result for any number).
        **options: ``burn_in``, ``thin``, ``num_chains``, ``initial_trace``,
            ``keep_traces``, ``progress`` (see :func:`run_chains`).

    Returns:
        The chains' ``Empirical`` (see :func:`run_chains`).
    """
    run = _run_options(options)
    if params is not None:
        if site_policy is not None:
            raise ValueError("give params or site_policy, not both")
        site_policy = ParameterSites(params, param_probability)
    kernel = MHKernel(
        model,
        observe,
        random_walk=random_walk,
        scale=scale,
        site_policy=site_policy,
        model_args=model_args,
    )
    return run_chains(kernel, num_traces, seed=seed, workers=workers, **run)


def lightweight_mh(model: Model, num_traces: int, **options: Any) -> Any:
    """Lightweight Metropolis-Hastings: single-site moves proposed from the prior."""
    return metropolis_hastings(model, num_traces, random_walk=False, **options)


def random_walk_mh(model: Model, num_traces: int, **options: Any) -> Any:
    """Random-walk MH: Gaussian steps on continuous sites, prior draws on discrete ones."""
    return metropolis_hastings(model, num_traces, random_walk=True, **options)


def pseudo_marginal_mh(
    model: Model,
    num_traces: int,
    *,
    params: Sequence[str] | str | None = None,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    num_particles: int = 1,
    proposal: str = "random_walk",
    scale: float = 0.5,
    refresh: float = 1.0,
    model_args: tuple[Any, ...] = (),
    workers: int = 0,
    **options: Any,
) -> Any:
    """Pseudo-marginal MH over ``params``, every other draw redrawn in each run (a fraction
    ``refresh`` of it for correlated PMMH); see :class:`~.pmmh.PseudoMarginalKernel`
    (options ``num_particles``, ``proposal``, ``scale``, ``refresh``) and
    :func:`run_chains` (``burn_in``, ``thin``, ``num_chains``, ...).

    Raises:
        ValueError: without ``params``, or for invalid options.
    """
    run = _run_options(options)
    if params is None:
        raise ValueError(
            "pseudo-marginal MH needs params=[...]: the names or address patterns of the "
            "parameters to infer (every other random choice is redrawn in each run)"
        )
    kernel = PseudoMarginalKernel(
        model,
        observe,
        params=params,
        num_particles=num_particles,
        proposal=proposal,
        scale=scale,
        refresh=refresh,
        model_args=model_args,
    )
    return run_chains(kernel, num_traces, seed=seed, workers=workers, **run)
