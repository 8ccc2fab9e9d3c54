"""The address structure of Branching (n ~ Poisson(3); n Bernoulli draws; obs) is known
exactly: check nodes, visit frequencies and transition probabilities against it."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rotalumis.data import Empirical
from rotalumis.diagnostics import AddressStructure
from rotalumis.diagnostics.addresses import END, START, call_site
from rotalumis.models import Branching

RATE = 3.0
Z = 5.0  # tolerance in binomial standard errors: a correct estimate fails with p < 1e-6


def p_n(k: int) -> float:
    """P(n = k) under the Poisson(3) prior."""
    return math.exp(-RATE) * RATE**k / math.factorial(k)


def p_at_least(k: int) -> float:
    return 1.0 - sum(p_n(j) for j in range(k))


def addresses(structure: AddressStructure) -> tuple[str, list[str], str]:
    """The Poisson, the Bernoulli (by instance) and the observation addresses."""
    sites = structure.sites
    (poisson,) = [a for a, s in sites.items() if s.distribution == "Poisson"]
    (obs,) = [a for a, s in sites.items() if s.kind == "observe"]
    bern = sorted(
        (a for a, s in sites.items() if s.distribution == "Bernoulli"),
        key=lambda a: int(a.rsplit("__", 1)[1]),
    )
    return poisson, bern, obs


def close(estimate: float, p: float, n: float) -> bool:
    return abs(estimate - p) <= Z * math.sqrt(p * (1 - p) / n) + 1e-12


def test_nodes_and_transition_probabilities_match_the_model(branching_prior: Any) -> None:
    s = AddressStructure.from_result(branching_prior)
    n_traces = 4000
    assert s.num_traces == n_traces
    poisson, bern, obs = addresses(s)
    sites = s.sites
    assert sites[poisson].name == "n" and sites[poisson].kind == "sample"
    assert sites[obs].name == "obs" and sites[obs].distribution == "Normal"
    # one Bernoulli address per instance 1..max(n), all at the same call site
    n_values = np.asarray(branching_prior.to_numpy())
    assert len(bern) == n_values.max()
    assert [int(a.rsplit("__", 1)[1]) for a in bern] == list(range(1, len(bern) + 1))
    assert len({call_site(a) for a in bern}) == 1
    g = s.graph()
    assert set(g.visits) == {poisson, obs, *bern}
    assert g.probability(START, poisson) == 1.0 and g.probability(obs, END) == 1.0
    assert g.frequency(poisson) == 1.0 and g.frequency(obs) == 1.0
    # P(Poisson -> first Bernoulli) = P(n >= 1); P(Poisson -> obs) = P(n = 0)
    assert close(g.probability(poisson, bern[0]), p_at_least(1), n_traces)
    assert close(g.probability(poisson, obs), p_n(0), n_traces)
    # after the k-th Bernoulli: another one with P(n >= k+1 | n >= k), else the observation
    for k in range(1, 6):
        visits = p_at_least(k) * n_traces
        p_more = p_at_least(k + 1) / p_at_least(k)
        assert close(g.frequency(bern[k - 1]), p_at_least(k), n_traces)
        assert close(g.probability(bern[k - 1], bern[k]), p_more, visits)
        assert close(g.probability(bern[k - 1], obs), 1 - p_more, visits)
    # probabilities out of every node sum to 1
    for node in [START, poisson, *bern]:
        total = sum(g.probability(node, b) for (a, b) in g.edges if a == node)
        assert total == pytest.approx(1.0)


def test_collapsed_graph_has_a_self_loop_with_the_expected_probability(
    branching_prior: Any,
) -> None:
    g = AddressStructure.from_result(branching_prior).graph(collapse=True)
    assert len(g.visits) == 3  # Poisson, Bernoulli call site, obs
    (bern,) = [k for k, i in g.info.items() if i.distribution == "Bernoulli"]
    # E[visits] = E[n] = 3; of them, all but the last of each trace loop back:
    # P(B -> B) = (E[n] - P(n >= 1)) / E[n]
    expected = (RATE - p_at_least(1)) / RATE
    # ~12000 transitions, correlated within a trace: allow twice the binomial error
    assert close(g.probability(bern, bern), expected, 12000 / 4)
    assert g.visits_per_trace(bern) == pytest.approx(RATE, abs=Z * math.sqrt(RATE / 4000))
    assert set(g.ids.values()) == {"S1", "S2", "S3"}


def test_weighted_structure_gives_posterior_probabilities() -> None:
    model = Branching()
    y = 0.0
    emp = model.posterior(4000, engine="is", observe={"obs": y}, seed=7, keep_traces=True)
    s = AddressStructure.from_result(emp)
    poisson, _bern, obs = addresses(s)
    p0 = model.exact_posterior(y)[0]  # P(n = 0 | obs) = P(Poisson -> obs | obs)
    # self-normalised IS: the error of a posterior probability is ~sqrt(p(1-p)/ESS)
    assert close(s.graph().probability(poisson, obs), p0, emp.ess)
    unweighted = AddressStructure.from_result(emp, weighted=False).graph()
    assert close(unweighted.probability(poisson, obs), p_n(0), 4000)


def test_trace_types_ids_and_top_n(branching_prior: Any) -> None:
    s = AddressStructure.from_result(branching_prior)
    types = s.trace_types()
    counts = np.bincount(np.asarray(branching_prior.to_numpy()))
    # one type per value of n, counted exactly
    assert sorted(t.count for t in types) == sorted(c for c in counts if c)
    assert [t.rank for t in types] == list(range(1, len(types) + 1))
    assert all(a.frequency >= b.frequency for a, b in itertools.pairwise(types))
    assert sum(t.frequency for t in types) == pytest.approx(1.0)
    ids = s.address_ids()
    numbers = sorted(int(i[1:]) for i in ids.values())
    assert numbers == list(range(1, len(ids) + 1)) and all(i[0] == "A" for i in ids.values())
    assert ids[addresses(s)[0]] == "A1"  # the first site of the most frequent type
    top = s.graph(top=2)
    assert top.num_traces == types[0].count + types[1].count
    assert set(top.visits) == set(types[0].addresses) | set(types[1].addresses)


def test_json_round_trip_and_loaded_traces(branching_prior: Any, tmp_path: Path) -> None:
    s = AddressStructure.from_result(branching_prior[:300])
    s.save(tmp_path / "s.json")
    back = AddressStructure.load(tmp_path / "s.json")
    assert back.trace_types() == s.trace_types() and back.sites == s.sites
    # traces saved in an Empirical load back as dicts: same structure
    branching_prior[:300].save(tmp_path / "e.npz")
    loaded = Empirical.load(tmp_path / "e.npz")
    assert isinstance(loaded.traces[0], dict)
    assert AddressStructure.from_result(loaded).trace_types() == s.trace_types()


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_traces=True"):
        AddressStructure.from_result(Empirical([1.0, 2.0]))
    with pytest.raises(ValueError, match="was not kept"):
        AddressStructure.from_traces([None])
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match=r"bad\.json"):
        AddressStructure.load(tmp_path / "bad.json")
