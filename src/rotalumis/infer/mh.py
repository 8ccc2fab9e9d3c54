"""The LMH and RMH engines: chains of :class:`~.mcmc.MHKernel` moves."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rotalumis.core import RNG, Model, Trace
from rotalumis.core.parallel import check_parallel, map_in_workers
from rotalumis.data import Empirical, EmpiricalBuilder

from ._common import ObservationChecker, check_num_traces
from ._progress import ProgressBar
from .mcmc import MHKernel

__all__ = ["lightweight_mh", "metropolis_hastings", "random_walk_mh"]

log = logging.getLogger(__name__)


def metropolis_hastings(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    random_walk: bool = False,
    scale: float = 0.5,
    burn_in: int = 0,
    thin: int = 1,
    num_chains: int = 1,
    initial_trace: Trace | None = None,
    keep_traces: bool = False,
    progress: bool | None = None,
    model_args: tuple[Any, ...] = (),
    workers: int = 0,
) -> Any:
    """Run ``num_chains`` single-site MH chains and collect ``num_traces`` samples per chain.

    Args:
        model: The model.
        num_traces: Samples kept per chain (after burn-in, one every ``thin`` moves).
        observe: Observed values by name.
        seed: Seed; chain ``c`` uses an independent stream derived from it.
        random_walk: RMH (``True``) or LMH (``False``).
        scale: RMH step size relative to each site's prior standard deviation.
        burn_in: Moves discarded at the start of each chain.
        thin: Keep one sample every ``thin`` moves.
        num_chains: Independent chains.
        initial_trace: Starting trace for every chain (default: a prior draw).
        keep_traces: Keep full traces in the result.
        progress: Show a progress bar (default: when on a terminal).
        model_args: Arguments for ``model.forward``.
        workers: Run the chains in this many worker processes (``0``: one after another
            here); each chain's random stream is the same wherever it runs, so is the result.

    Returns:
        An equally weighted ``Empirical`` of all kept samples, chains one after another;
        ``result.metadata["chains"]`` holds the per-chain lengths and acceptance rates,
        ``result.metadata["log_prob"]`` the joint log density of every kept sample.
    """
    check_num_traces(num_traces)
    check_num_traces(thin, "thin")
    check_num_traces(num_chains, "num_chains")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    check_parallel(model, workers)
    kernel = MHKernel(model, observe, random_walk=random_walk, scale=scale, model_args=model_args)
    root = RNG(seed)
    name = "RMH" if random_walk else "LMH"
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
    log_probs = [lp for _, _, lps in runs for lp in lps]
    result = chains[0] if num_chains == 1 else Empirical.combine(chains)
    result.metadata["engine"] = name.lower()
    result.metadata["chains"] = [
        {"length": len(ch), "acceptance_rate": r} for ch, r in zip(chains, rates, strict=True)
    ]
    result.metadata["log_prob"] = log_probs
    return result


def lightweight_mh(model: Model, num_traces: int, **options: Any) -> Any:
    """Lightweight Metropolis-Hastings: single-site moves proposed from the prior."""
    return metropolis_hastings(model, num_traces, random_walk=False, **options)


def random_walk_mh(model: Model, num_traces: int, **options: Any) -> Any:
    """Random-walk MH: Gaussian steps on continuous sites, prior draws on discrete ones."""
    return metropolis_hastings(model, num_traces, random_walk=True, **options)
