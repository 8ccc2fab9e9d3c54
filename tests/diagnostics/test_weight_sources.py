"""weight_sources: the importance log weights split into the likelihood and each site's term.

The terms are recomputed here from the traces' values with scipy's densities (not from what
the engine recorded), so the split is checked against the model and proposal themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rotalumis import model, observe, sample
from rotalumis.core import MixtureProposal, Normal
from rotalumis.data import Empirical
from rotalumis.diagnostics import weight_sources


@model
def two_sites(noise: float) -> float:
    a = sample(Normal(0.0, 1.0), name="a")
    b = sample(Normal(0.0, 1.0), name="b")
    observe(Normal(a + b, noise), name="y")
    return a + b


def normalised(lw: np.ndarray) -> np.ndarray:
    """The importance weights, recomputed here from the log weights."""
    w = np.exp(lw - lw.max())
    return w / w.sum()


def propose_a(loc: float, scale: float):  # type: ignore[no-untyped-def]
    return lambda msg: Normal(loc, scale) if msg.name == "a" else None  # b: its prior


def run(proposal, n=400, keep_traces=True, noise=0.5):  # type: ignore[no-untyped-def]
    return two_sites.posterior(
        n, engine="is", observe={"y": 1.0}, seed=3, progress=False, proposal=proposal,
        keep_traces=keep_traces, model_args=(noise,),
    )  # fmt: skip


@pytest.mark.parametrize("noise", [3.0, 0.1], ids=["loose-data", "tight-data"])
def test_the_terms_are_the_model_and_proposal_densities(noise: float) -> None:
    post = run(propose_a(0.8, 0.3), noise=noise)  # a proposal far too narrow for a
    rows = {r.label: r for r in weight_sources(post)}
    assert set(rows) == {"likelihood", "a"}  # b came from its prior: no term, no row
    a = np.array([t.named_latents["a"] for t in post.traces], dtype=float)
    b = np.array([t.named_latents["b"] for t in post.traces], dtype=float)
    term_a = stats.norm(0, 1).logpdf(a) - stats.norm(0.8, 0.3).logpdf(a)
    lik = stats.norm(a + b, noise).logpdf(1.0)
    lw = np.asarray(post.log_weights, dtype=float)
    np.testing.assert_allclose(term_a + lik, lw, atol=1e-9)  # the split is exact: no "rest"
    w = normalised(lw)
    for label, c in (("a", term_a), ("likelihood", lik)):
        r = rows[label]
        assert r.mean == pytest.approx(c.mean(), abs=1e-9)
        assert r.weighted_mean == pytest.approx(w @ c, abs=1e-9)
        assert r.divergence == pytest.approx(w @ c - c.mean(), abs=1e-9)
        assert r.traces == 400
    jeffreys = w @ lw - lw.mean()  # E_p[log w] - E_q[log w]
    assert rows["a"].divergence + rows["likelihood"].divergence == pytest.approx(jeffreys)
    # loose data: the narrow proposal makes the weights uneven; tight data: the traces that miss
    culprit, other = ("a", "likelihood") if noise > 1.0 else ("likelihood", "a")
    assert rows[culprit].divergence > 5 * abs(rows[other].divergence)
    assert weight_sources(post)[0].label == culprit


def test_prior_sampling_leaves_the_likelihood_alone() -> None:
    row_post = run(None)
    (row,) = weight_sources(row_post)
    lw = np.asarray(row_post.log_weights, dtype=float)
    assert row.label == "likelihood" and row.divergence > 0.0
    w = normalised(lw)
    assert row.divergence == pytest.approx(w @ lw - lw.mean())


def test_a_mixture_proposal_splits_by_the_chain_rule() -> None:
    mixture = MixtureProposal([propose_a(0.8, 0.3), propose_a(-0.5, 2.0)])
    post = run(mixture)
    rows = weight_sources(post)
    assert {r.label for r in rows} == {"likelihood", "a"}  # no "rest": the split is exact
    lw = np.asarray(post.log_weights, dtype=float)
    w = normalised(lw)
    assert sum(r.divergence for r in rows) == pytest.approx(w @ lw - lw.mean())
    a = np.array([t.named_latents["a"] for t in post.traces], dtype=float)
    q_mix = 0.5 * stats.norm(0.8, 0.3).pdf(a) + 0.5 * stats.norm(-0.5, 2.0).pdf(a)
    term_a = stats.norm(0, 1).logpdf(a) - np.log(q_mix)
    assert next(r for r in rows if r.label == "a").mean == pytest.approx(term_a.mean(), abs=1e-9)


def test_group_labels_sites_together() -> None:
    def both(msg):  # type: ignore[no-untyped-def]
        return Normal(0.3, 0.8)

    post = run(both)
    alone = {r.label: r for r in weight_sources(post)}
    (together,) = [
        r for r in weight_sources(post, group=lambda msg: "a+b") if r.label != "likelihood"
    ]
    assert together.mean == pytest.approx(alone["a"].mean + alone["b"].mean, abs=1e-9)
    parts = alone["a"].divergence + alone["b"].divergence
    assert together.divergence == pytest.approx(parts, abs=1e-9)


def test_bad_input_names_the_culprit() -> None:
    with pytest.raises(ValueError, match="keep_traces=True"):
        weight_sources(run(None, keep_traces=False))
    with pytest.raises(ValueError, match="at least two traces"):
        weight_sources(run(None, n=1))


def test_what_the_terms_do_not_explain_is_the_rest() -> None:
    # log weights from elsewhere (here: each trace's own plus an extra term per trace, as an
    # engine's own correction would be): the difference gets its own row, "rest"
    post = run(propose_a(0.8, 0.3))
    extra = np.linspace(-1.0, 1.0, len(post.traces))
    lw = np.asarray(post.log_weights, dtype=float) + extra
    reweighted = Empirical(post.to_numpy(), lw, traces=post.traces)
    rows = {r.label: r for r in weight_sources(reweighted)}
    assert set(rows) == {"likelihood", "a", "rest"}
    assert rows["rest"].mean == pytest.approx(0.0, abs=1e-9)
    w = normalised(lw)
    assert rows["rest"].weighted_mean == pytest.approx(w @ extra, abs=1e-9)
    assert sum(r.divergence for r in rows.values()) == pytest.approx(w @ lw - lw.mean())
