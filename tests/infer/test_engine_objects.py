"""Engines as typed objects: ``run`` is what ``model.posterior(engine=...)`` calls, options
are checked against the engine's signature, kernels bind to a model, and proposals follow
the declared protocol."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
import pytest

from rotalumis.core import Distribution, Message, Normal, ProposalStats
from rotalumis.core.engines import ENTRY_POINT_GROUP, available_engines, engine_options
from rotalumis.core.proposal import FunctionProposal, Proposal, as_proposal
from rotalumis.infer import (
    BUILTIN_ENGINES,
    MCMC,
    ImportanceSampling,
    MHKernel,
    ParameterSites,
    Prior,
    PseudoMarginalKernel,
)
from rotalumis.models import UnknownMean

OBS = {"obs0": 8.0, "obs1": 9.0}


def same(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    np.testing.assert_array_equal(a.log_weights, b.log_weights)


@pytest.mark.parametrize(
    ("name", "options", "engine"),
    [
        ("prior", {}, Prior()),
        ("is", {"workers": 0}, ImportanceSampling()),
        ("lmh", {"burn_in": 20}, MCMC(MHKernel(), burn_in=20)),
        ("rmh", {"num_chains": 2, "scale": 0.3},
         MCMC(MHKernel(random_walk=True, scale=0.3), num_chains=2)),
        ("lmh", {"params": "mu"}, MCMC(MHKernel(site_policy=ParameterSites("mu")))),
        ("pmmh", {"params": ["mu"], "num_particles": 2},
         MCMC(PseudoMarginalKernel(params=["mu"], num_particles=2))),
    ],
)  # fmt: skip
def test_the_sugar_runs_the_engine_object(name: str, options: dict[str, Any], engine: Any) -> None:
    m = UnknownMean()
    sugar = m.posterior(150, engine=name, observe=OBS, seed=4, progress=False, **options)
    engine.progress = False
    direct = engine.run(m, num_traces=150, observe=OBS, seed=4)
    same(sugar, direct)
    passed = m.posterior(150, engine=engine, observe=OBS, seed=4)  # an object as the engine
    same(sugar, passed)
    assert sugar.info == direct.info and sugar.info.engine == name
    assert sugar.info.seed == 4


@pytest.mark.parametrize("name", ["prior", "is", "lmh", "rmh", "pmmh", "ic"])
def test_an_unknown_option_names_the_engine_and_lists_its_options(name: str) -> None:
    with pytest.raises(TypeError) as err:
        UnknownMean().posterior(10, engine=name, observe=OBS, burnin=5)
    text = str(err.value)
    assert f"engine {name!r} has no option 'burnin'" in text
    options = engine_options(name)
    assert options is not None and "progress" in options
    for option in [*options, "model_args", "max_choices", "max_seconds"]:
        assert option in text, option


def test_options_given_with_an_engine_object_are_refused() -> None:
    with pytest.raises(TypeError, match="pass them to the engine's constructor"):
        UnknownMean().posterior(10, engine=ImportanceSampling(), observe=OBS, workers=2)


def test_options_that_no_longer_apply_are_refused() -> None:
    # LMH proposes from the prior: a random-walk scale would be silently ignored
    with pytest.raises(TypeError, match="engine 'lmh' has no option 'scale'"):
        UnknownMean().posterior(10, engine="lmh", observe=OBS, scale=0.1)


def test_the_entry_points_declare_the_builtin_engines() -> None:
    declared = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert set(declared) == set(BUILTIN_ENGINES)
    for name, ep in declared.items():
        assert ep.load() is BUILTIN_ENGINES[name], name
    assert set(BUILTIN_ENGINES) <= set(available_engines())


def test_a_kernel_binds_a_copy_and_needs_a_model_to_run() -> None:
    kernel = MHKernel(random_walk=True, scale=0.2)
    with pytest.raises(ValueError, match="not bound to a model"):
        _ = kernel.model
    bound = kernel.bind(UnknownMean(), OBS)
    assert bound is not kernel and bound.scale == 0.2 and bound.observe == OBS
    assert not kernel.bound and bound.bound
    with pytest.raises(TypeError, match="MCMC needs a Kernel"):
        MCMC("rmh")  # type: ignore[arg-type]


class _Shifted(Proposal):
    """Proposes N(8, 1) for ``mu``; counts executions and choices (the optional parts)."""

    def __init__(self) -> None:
        self.stats = ProposalStats()
        self.traces = 0

    def begin_trace(self) -> None:
        self.traces += 1

    def __call__(self, msg: Message) -> Distribution | None:
        assert self.stats is not None
        if msg.name != "mu":
            self.stats.fallbacks += 1
            return None
        self.stats.proposed += 1
        return Normal(8.0, 1.0)


def test_a_proposal_object_is_told_each_trace_and_its_stats_reach_the_result() -> None:
    proposal = _Shifted()
    post = ImportanceSampling(proposal, progress=False).run(
        UnknownMean(), num_traces=200, observe=OBS, seed=1
    )
    assert proposal.traces == 200
    assert post.info.proposal == ProposalStats(200, 0, set())
    assert post.info.prior_fallback_fraction == 0.0
    # a plain function is a proposal too; it keeps no statistics
    fn = ImportanceSampling(lambda msg: Normal(8.0, 1.0), progress=False).run(
        UnknownMean(), num_traces=200, observe=OBS, seed=1
    )
    same(post, fn)
    assert fn.info.proposal is None


def test_a_proposal_in_workers_adds_up_its_statistics() -> None:
    proposal = _Shifted()
    post = ImportanceSampling(proposal, workers=2, progress=False).run(
        UnknownMean(), num_traces=300, observe=OBS, seed=1
    )
    assert post.info.proposal == ProposalStats(300, 0, set())


def test_as_proposal_wraps_functions_and_refuses_the_rest() -> None:
    p = _Shifted()
    assert as_proposal(p) is p
    assert isinstance(as_proposal(lambda msg: None), FunctionProposal)
    with pytest.raises(TypeError, match="a proposal must be"):
        as_proposal(3)


@pytest.mark.parametrize("name", ["lmh", "rmh", "pmmh"])
def test_mcmc_engines_list_the_chain_options(name: str) -> None:
    # the chain options are declared once (ChainOptions) and unpacked into each factory
    options = engine_options(name)
    assert options is not None
    for option in ["burn_in", "thin", "num_chains", "initial_trace", "workers", "cluster"]:
        assert option in options, option


def test_mcmc_refuses_an_unknown_chain_option_and_checks_values() -> None:
    with pytest.raises(
        TypeError, match="unknown chain option 'burnin'; the chain options are: burn_in"
    ):
        MCMC(MHKernel(), burnin=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="burn_in must be a non-negative integer"):
        MCMC(MHKernel(), burn_in=-1)
    engine = MCMC(MHKernel(random_walk=True), burn_in=20, thin=2, num_chains=2)
    assert repr(engine) == "MCMC(MHKernel, burn_in=20, thin=2, num_chains=2)"
    post = engine.run(UnknownMean(), num_traces=50, observe=OBS, seed=3)
    assert post.chains == (50, 50)
    assert post.info.options["burn_in"] == 20 and post.info.options["thin"] == 2
