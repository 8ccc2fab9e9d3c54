"""The MCMC engine: chains of any :class:`~.kernel.Kernel` (LMH, RMH, pseudo-marginal MH).

:class:`MCMC` is the engine object (``MCMC(kernel, burn_in=..., num_chains=...)``, then
``.run(model, num_traces=..., observe=..., seed=...)``); :func:`run_chains` is the one chain
loop it uses (burn-in, thinning, several chains, worker processes), for a kernel already
bound to a model. ``model.posterior(engine="lmh" | "rmh" | "pmmh", ...)`` builds an
:class:`MCMC` with the matching kernel (see :mod:`.engines`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from rotalumis.core import RNG, Model, Trace
from rotalumis.core.progress import ProgressBar
from rotalumis.data import ChainInfo, Empirical, EmpiricalBuilder, RunInfo
from rotalumis.distributed import check_executor, open_executor

from ._common import ObservationChecker, check_num_traces
from .kernel import Kernel

__all__ = ["MCMC", "ChainOptions", "chain_options", "run_chains"]

log = logging.getLogger(__name__)


class ChainOptions(TypedDict, total=False):
    """The options of a set of MCMC chains, taken as keywords by :class:`MCMC`,
    :func:`run_chains` and the ``lmh``/``rmh``/``pmmh`` engines (defaults in brackets).

    Attributes:
        burn_in: Moves discarded at the start of each chain [0].
        thin: Keep one sample every ``thin`` moves [1].
        num_chains: Independent chains; chain ``c`` draws from a stream derived from the
            seed and ``c`` [1].
        initial_trace: Starting trace for every chain [a prior draw].
        keep_traces: Keep full traces in the result [False].
        progress: Show a progress bar [when on a terminal].
        workers: Run the chains in this many worker processes (``0``: one after another
            here); each chain's stream is the same wherever it runs, so is the result [0].
        cluster: Run the chains on a Dask cluster instead (a ``dask.distributed.Client``, a
            scheduler address, or ``"local"``/``"local:N"``; see
            :func:`rotalumis.distributed.open_executor`); the same result [None].
    """

    burn_in: int
    thin: int
    num_chains: int
    initial_trace: Trace | None
    keep_traces: bool
    progress: bool | None
    workers: int
    cluster: Any


def chain_options(chain: Mapping[str, Any]) -> ChainOptions:
    """``chain`` checked and completed with the defaults of :class:`ChainOptions`.

    Raises:
        TypeError: for a key that is not a chain option (it names the valid ones).
        ValueError: for an invalid ``burn_in``, ``thin`` or ``num_chains``.
    """
    unknown = sorted(set(chain) - set(ChainOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"unknown chain option {', '.join(map(repr, unknown))}; "
            f"the chain options are: {', '.join(ChainOptions.__annotations__)}"
        )
    out: ChainOptions = {
        "burn_in": 0, "thin": 1, "num_chains": 1, "initial_trace": None, "keep_traces": False,
        "progress": None, "workers": 0, "cluster": None,
    }  # fmt: skip
    out.update(chain)  # type: ignore[typeddict-item]
    burn_in = out["burn_in"]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    check_num_traces(out["thin"], "thin")
    check_num_traces(out["num_chains"], "num_chains")
    return out


def run_chains(
    kernel: Kernel[Any],
    num_traces: int,
    *,
    seed: int | None = None,
    **chain: Unpack[ChainOptions],
) -> Empirical:
    """Run ``num_chains`` chains of ``kernel`` and collect ``num_traces`` samples per chain.

    Args:
        kernel: The MCMC kernel (it holds the model and the observations).
        num_traces: Samples kept per chain (after burn-in, one every ``thin`` moves).
        seed: Seed; chain ``c`` uses an independent stream derived from it.
        **chain: The chain options (:class:`ChainOptions`: ``burn_in``, ``thin``,
            ``num_chains``, ``initial_trace``, ``keep_traces``, ``progress``, ``workers``,
            ``cluster``).

    Returns:
        An equally weighted ``Empirical`` of all kept samples, chains one after another
        (``result.chains`` holds their lengths, so ``result.ess`` is the autocorrelation-
        aware bulk ESS); ``result.info`` (a :class:`~rotalumis.data.RunInfo`) holds the
        per-chain lengths and acceptance rates and the joint log density of every kept
        sample.
    """
    check_num_traces(num_traces)
    opts = chain_options(chain)
    burn_in, thin, num_chains = opts["burn_in"], opts["thin"], opts["num_chains"]
    initial_trace, keep_traces = opts["initial_trace"], opts["keep_traces"]
    workers, cluster = opts["workers"], opts["cluster"]
    model, observe = kernel.model, kernel.observe
    check_executor(model, workers, cluster)
    root = RNG(seed)
    name = kernel.name
    moves = burn_in + num_traces * thin

    def one_chain(c: int, bar: ProgressBar | None = None) -> tuple[Empirical, float, list[float]]:
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

    parallel = (workers or cluster is not None) and num_chains > 1
    with (
        open_executor(model, workers if parallel else 0, cluster if parallel else None) as ex,
        ProgressBar(
            moves * num_chains, name, opts["progress"], show_rate=True, every_step=True
        ) as bar,
    ):
        if ex is None or ex.shares_memory:  # threads would share the kernel's state
            runs = [one_chain(c, bar) for c in range(num_chains)]
        else:  # chain c draws from root.spawn(c) wherever it runs: the same result
            finished = 0

            def arrived(c: int, out: tuple[Empirical, float, list[float]]) -> None:
                nonlocal finished
                finished += 1
                bar.update(finished * moves, f"acc {out[1]:.2f}")

            def describe(c: int) -> str:
                return f"chain {c} of {num_chains} (stream {c} spawned from seed {root.seed})"

            runs = ex.map(one_chain, num_chains, describe, arrived)
    chains = [emp for emp, _, _ in runs]
    rates = [rate for _, rate, _ in runs]
    result = Empirical.from_chains(chains)
    options = {"burn_in": burn_in, "thin": thin, "num_chains": num_chains, **kernel.options()}
    result.info = RunInfo(
        engine=name.lower(),
        options=options,
        seed=root.seed,
        chains=tuple(ChainInfo(len(ch), r) for ch, r in zip(chains, rates, strict=True)),
        log_prob=tuple(lp for _, _, lps in runs for lp in lps),
    )
    return result


class MCMC:
    """Markov chain Monte Carlo with any kernel: the engine object.

    Args:
        kernel: The kernel, e.g. ``MHKernel(random_walk=True)`` (RMH) or
            ``PseudoMarginalKernel(params=["beta"])``; :meth:`run` binds a copy of it to the
            model (see :meth:`~.kernel.Kernel.bind`).
        **chain: The chain options, :class:`ChainOptions` (``burn_in``, ``thin``,
            ``num_chains``, ``initial_trace``, ``keep_traces``, ``progress``, ``workers``,
            ``cluster``); the result is the same for any ``workers``/``cluster``.

    Example:
        >>> from rotalumis.infer import MCMC, MHKernel
        >>> engine = MCMC(MHKernel(random_walk=True), burn_in=500, num_chains=4)
        >>> posterior = engine.run(model, num_traces=2000, observe={"y": 1.0})  # doctest: +SKIP
    """

    def __init__(self, kernel: Kernel[Any], **chain: Unpack[ChainOptions]) -> None:
        if not isinstance(kernel, Kernel):
            raise TypeError(f"MCMC needs a Kernel (e.g. MHKernel()), got {kernel!r}")
        self.kernel = kernel
        self.chain = chain_options(chain)

    def run(
        self,
        model: Model,
        *,
        num_traces: int,
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> Empirical:
        """Run the chains on ``model`` given ``observe``.

        Args:
            model: The model.
            num_traces: Samples kept per chain (after burn-in, one every ``thin`` moves).
            observe: Observed values by name.
            seed: Seed (``None``: a fresh one, recorded in ``result.info.seed``).
            model_args: Arguments for ``model.forward``.

        Returns:
            The chains' equally weighted ``Empirical`` (see :func:`run_chains`).

        Raises:
            ObservationError: for an observation name the model never observes.
            InferenceError: if no starting state has non-zero probability.
            ValueError: for invalid options.
        """
        kernel = self.kernel.bind(model, observe, model_args)
        return run_chains(kernel, num_traces, seed=seed, **self.chain)

    def __repr__(self) -> str:
        return (
            f"MCMC({type(self.kernel).__name__}, burn_in={self.chain['burn_in']}, "
            f"thin={self.chain['thin']}, num_chains={self.chain['num_chains']})"
        )
