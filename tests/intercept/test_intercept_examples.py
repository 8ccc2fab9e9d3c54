"""The three intercept examples run from Python and from the command line (small budgets).

Their full runs (commands in each module's docstring) write the plots the README shows.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rotalumis.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cli(tmp_path: Path, target: str, *args: str) -> dict:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLES / target), *args, "--seed", "1", "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def test_tau_decay_rmh_and_ic(tmp_path: Path, monkeypatch) -> None:
    td = _load("tau_decay")
    p_true, channel, image = td.observed_event(1)
    assert image.shape == td.GRID and td.CHANNELS[channel] == "rho nu"
    post = td.infer(image, 40, seed=1, burn_in=10, keep_traces=True)
    momentum = np.asarray(post.get("momentum").to_numpy())
    assert momentum.shape == (40, 3)
    low, high = np.array([-2.5, -2.5, 42.0]), np.array([2.5, 2.5, 48.0])
    assert np.all((momentum >= low) & (momentum <= high))
    td.plot_observed(tmp_path, p_true, channel, image)
    td.plot_posterior(tmp_path / "rmh.png", "RMH", p_true, channel, post)
    network = td.train_ic(16, seed=0, batch_size=16)  # one step: exercises the path
    ic = td.infer_ic(image, network, 3, seed=1)
    assert len(ic) == 3 and ic.info.engine == "ic"
    draws = td.posterior_draws(post.traces)
    assert draws and len({int(t.named_latents["channel"]) for t in draws}) == 1
    fitted = td.fit_proposal(draws, epochs=1)  # one epoch: exercises the path
    flows = [s.address for s in fitted.specs if s.proposal == "flow"]
    assert [a for a in flows if "sample_momentum" in a] == flows and flows
    assert fitted.config.flow_interval == "probit"  # level at the edges of the momentum's box
    # held-out stretches of consecutive draws (train_weighted's groups=): the path runs
    stretched = td.fit_proposal(draws, epochs=2, stretches=4, patience=1)
    assert [s.address for s in stretched.specs if s.proposal == "flow"] == flows
    kept = [fitted]
    refit, pool = td.rejuvenate(
        image, fitted, draws, 1, traces=8, starts=2, moves=8, seed=1, keep=kept
    )
    assert refit is not fitted and len(pool) == len(draws) + 2 * 2  # two chains, two draws each
    assert len(kept) == 2 and kept[1] is refit
    _check_mixture_weights(td, image, kept)
    proposals = []  # mixture rounds: round k importance-samples with the k + 1 networks so far
    infer_ic = td.infer_ic
    monkeypatch.setattr(
        td,
        "infer_ic",
        lambda image, net, *a, **k: proposals.append(net) or infer_ic(image, net, *a, **k),
    )
    mixed = [fitted]
    td.rejuvenate(image, fitted, draws, 2, traces=8, starts=2, moves=8, seed=1, keep=mixed,
                  mixture=True)  # fmt: skip
    assert [len(p) for p in proposals] == [1, 2] and proposals[1] == mixed[:2]
    assert len(mixed) == 3
    monkeypatch.undo()
    adapted = td.adapt_ic(image, fitted, rounds=1, traces=8, seed=1)
    assert [r["round"] for r in adapted.rounds] == [0, 1]
    ic = td.infer_ic(image, adapted.network, 8, seed=2)
    inside, p_channel = td.covers(ic, p_true, channel)
    assert len(inside) == 3 and 0.0 <= p_channel <= 1.0
    td.plot_posterior(tmp_path / "ic.png", "IC", p_true, channel, ic)
    assert all((tmp_path / f).stat().st_size > 5000 for f in ("tau_observed.png", "rmh.png"))
    np.save(tmp_path / "image.npy", image)
    summary = _cli(
        tmp_path, "tau_decay.py:model", "-e", "rmh", "-n", "20", "--scale", "0.05",
        "-o", f"image=@{tmp_path / 'image.npy'}",
    )  # fmt: skip
    assert summary["num_samples"] == 20 and "channel" in summary["summary"]


def _check_mixture_weights(td, image, networks) -> None:
    """IC with the mixture of ``networks``: each trace's ``log p - log w`` is the log of the
    mean of the networks' densities of it (with :func:`pilot_weights`' weights: of their
    weighted sum), each recomputed by replaying the trace through that network's proposal
    (flow head, image embedding, defensive mixtures of the channel's and the momentum's
    proposals with their priors, prior fallbacks), and for a network's own traces that
    density is the engine's ``log q``. Tolerance 1e-3 nats: float32 networks, log densities
    of order 1e3 summed in float."""
    from rotalumis.infer import proposal_log_density
    from rotalumis.nn import NetworkProposal

    observe = {"image": image}

    def log_q(net, trace) -> float:
        proposal = NetworkProposal(net, observe, {"cat": 0.02, "momentum": 0.25})
        return proposal_log_density(td.model, trace, proposal, observe=observe)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one training step: unseen addresses
        own = td.infer_ic(image, networks[0], 4, seed=3, keep_traces=True)
        assert own.info.options["defensive"] == {"cat": 0.02, "momentum": 0.25}
        for trace, lw in zip(own.traces, own.log_weights.tolist(), strict=True):
            assert abs(log_q(networks[0], trace) - (float(trace.log_prob) - lw)) < 1e-3
        mixed = td.infer_ic(image, networks, 6, seed=4, keep_traces=True)
        assert mixed.info.options["networks"] == len(networks)
        for trace, lw in zip(mixed.traces, mixed.log_weights.tolist(), strict=True):
            each = np.array([log_q(net, trace) for net in networks])
            expected = float(np.logaddexp.reduce(each)) - np.log(len(networks))
            assert abs(float(trace.log_prob) - lw - expected) < 1e-3
        weights, ess = td.pilot_weights(image, networks, traces=6, seed=5, floor=0.05)
        share = np.maximum(np.asarray(ess) / np.sum(ess), 0.05)
        np.testing.assert_allclose(weights, share / share.sum())
        tilted = td.infer_ic(image, networks, 6, seed=6, keep_traces=True, weights=weights)
        assert tilted.info.options["mixture_weights"] == pytest.approx(weights)
        for trace, lw in zip(tilted.traces, tilted.log_weights.tolist(), strict=True):
            each = np.array([log_q(net, trace) for net in networks]) + np.log(weights)
            assert abs(float(trace.log_prob) - lw - float(np.logaddexp.reduce(each))) < 1e-3


def test_tau_decay_script_saves_networks_for_the_module(tmp_path: Path, monkeypatch) -> None:
    """Run as a script, the example's networks carry the addresses of ``tau_decay.model``
    (they named ``__main__`` before, so ``import tau_decay`` could not use them)."""
    import runpy

    from rotalumis.nn import InferenceNetwork

    td = _load("tau_decay")
    args = "--num-traces 6 --chains 1 --burn-in 2 --ic-training-traces 16 --warm-epochs 1"
    monkeypatch.setattr(
        sys, "argv", ["tau_decay.py", "--out", str(tmp_path), *args.split(), "--ic-traces", "3"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one training step: unseen addresses, plots
        runpy.run_path(str(EXAMPLES / "tau_decay.py"), run_name="__main__")
    for name in ("tau_network.pt", "tau_network_adapted.pt"):
        addresses = InferenceNetwork.load(tmp_path / name).addresses
        assert addresses and all("/tau_decay.simulate_event:" in a for a in addresses)
    trace = td.model.get_trace(seed=3)
    assert trace.variables[0].address in addresses


def test_tau_decay_script_fits_a_proposal_without_an_amortized_network(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """``--ic-training-traces 0``: the proposal is fitted to the RMH draws alone (no
    amortized network trained or saved), and the final IC runs ``--ic-repeats`` times."""
    import runpy

    from rotalumis.nn import InferenceNetwork

    args = "--num-traces 8 --chains 1 --burn-in 2 --ic-training-traces 0 --warm-epochs 1"
    argv = ["tau_decay.py", "--out", str(tmp_path), *args.split(), "--ic-traces", "3"]
    monkeypatch.setattr(sys, "argv", [*argv, "--ic-repeats", "2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one training step: unseen addresses, plots
        runpy.run_path(str(EXAMPLES / "tau_decay.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "amortized" not in out and "proposal fitted to" in out
    assert out.count("again, seed") == 1
    assert not (tmp_path / "tau_network.pt").exists()
    assert InferenceNetwork.load(tmp_path / "tau_network_adapted.pt").addresses


def test_tau_decay_script_ensemble_of_fits(tmp_path: Path, monkeypatch, capsys) -> None:
    """``--ensemble 2``: a second fit of the same RMH draws from another seed; the final IC's
    mixture holds both members' networks, and both are saved (and differ)."""
    import runpy

    import torch

    from rotalumis.nn import InferenceNetwork

    args = "--num-traces 8 --chains 1 --burn-in 2 --ic-training-traces 0 --warm-epochs 1"
    argv = ["tau_decay.py", "--out", str(tmp_path), *args.split(), "--ic-traces", "3"]
    monkeypatch.setattr(sys, "argv", [*argv, "--ic-repeats", "1", "--ensemble", "2", "--mixture"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one training step: unseen addresses, plots
        runpy.run_path(str(EXAMPLES / "tau_decay.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ensemble member 1" in out and "mixture of 2 proposals" in out
    assert not (tmp_path / "tau_network_2.pt").exists()
    a, b = (InferenceNetwork.load(tmp_path / f"tau_network_{k}.pt") for k in (0, 1))
    assert a.addresses == b.addresses
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert any(not torch.equal(pa[k], pb[k]) for k in pa)
    monkeypatch.setattr(sys, "argv", [*argv, "--ensemble", "2", "--proposal", "x.pt"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(EXAMPLES / "tau_decay.py"), run_name="__main__")
    assert "--ensemble needs a fit" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*argv, "--ensemble", "0"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(EXAMPLES / "tau_decay.py"), run_name="__main__")
    assert "--ensemble must be at least 1" in capsys.readouterr().err


def test_tau_decay_posterior_draws_drop_stuck_chains_and_other_channels() -> None:
    """``posterior_draws`` keeps the draws within ``drop`` nats of the 90th percentile, of the
    most held channel; with ``every_channel``, those of every channel."""
    from types import SimpleNamespace

    td = _load("tau_decay")
    specs = [(0, -10.0)] * 30 + [(1, -12.0)] * 10 + [(1, -40.0)] * 5 + [(2, -50.0)] * 5
    traces = [
        SimpleNamespace(log_prob=lp, named_latents={"channel": np.array(c)}) for c, lp in specs
    ]
    top = td.posterior_draws(traces)
    assert top == traces[:30]
    every = td.posterior_draws(traces, every_channel=True)
    assert every == traces[:40]


def test_tau_decay_mirrored_photons_have_the_same_density() -> None:
    """Swapping the two photons of a neutral pion leaves the image likelihood and the prior
    unchanged (the symmetry :func:`fit_proposal` adds to its training draws)."""
    from rotalumis.core import ConditionHandler, ReplayHandler

    td = _load("tau_decay")
    _, _, image = td.observed_event(1)
    traces = td.model.traces(400, seed=5, handlers=[ConditionHandler({"image": image})])
    pions = [t for t in traces if int(t.named_latents["channel"]) in (1, 5)][:4]
    assert {int(t.named_latents["channel"]) for t in pions} == {1, 5}  # one pi0, and two
    for trace in pions:
        mirrored = td.mirror_photons(trace)
        before = [m.value for m in trace.variables if "pi0_photons" in m.address]
        after = [m.value for m in mirrored.variables if "pi0_photons" in m.address]
        assert len(before) in (2, 4) and all(a != b for a, b in zip(after, before, strict=True))
        handlers = [ReplayHandler(mirrored), ConditionHandler({"image": image})]
        (replayed,) = td.model.traces(1, seed=9, handlers=handlers)
        assert [m.value for m in replayed.variables if "pi0_photons" in m.address] == after
        # the same deposits summed in another order: equal to rounding
        assert float(replayed.log_likelihood) == pytest.approx(
            float(trace.log_likelihood), abs=1e-6
        )
        assert float(replayed.log_prior) == pytest.approx(float(trace.log_prior), abs=1e-9)


def test_tau_decay_shortest_interval() -> None:
    td = _load("tau_decay")
    rng = np.random.default_rng(0)
    x = rng.normal(size=40_000)
    lo, hi = td._shortest(x, np.full(x.size, 1 / x.size), 0.95)
    # N(0, 1): (-1.96, 1.96); 0.05 is ~4 standard errors (0.013) of a 2.5% quantile of 40,000 draws
    assert abs(lo + 1.96) < 0.05 and abs(hi - 1.96) < 0.05
    # density falling from the lower end of the support (as pz's posterior at its prior
    # edge): the shortest interval starts at the edge, where the central one cannot
    x = 42.0 + 6.0 * rng.uniform(size=40_000) ** 2
    lo, hi = td._shortest(x, np.full(x.size, 1 / x.size), 0.95)
    assert lo < 42.001 and abs(hi - (42.0 + 6.0 * 0.95**2)) < 0.05
    # weights count: all the mass on the upper half gives an interval inside it
    w = (x > 45.0).astype(float)
    lo, _ = td._shortest(x, w / w.sum(), 0.95)
    assert lo > 45.0


def test_sir_epidemic(tmp_path: Path) -> None:
    se = _load("sir_epidemic")
    cases = se.observed_cases()
    assert len(cases) == se.DAYS and all(isinstance(c, int) for c in cases)
    for engine in ("is", "pmmh"):
        post = se.infer(cases, 12, engine, seed=1, burn_in=2, chains=2, particles=1)
        beta = np.asarray(post.get("beta").to_numpy())
        assert np.all((beta >= 0) & (beta <= 0.3))
        assert len(beta) == (24 if engine == "pmmh" else 12)
        se.plot(tmp_path, cases, post)
        assert (tmp_path / "sir_posterior.png").stat().st_size > 5000
    assert post.chains == (12, 12) and post.info.engine == "pmmh"
    weekly = json.dumps(se.weekly_totals(cases).tolist())
    summary = _cli(tmp_path, "sir_epidemic.py:model", "-e", "pmmh", "-p", "beta", "-p", "gamma",
                   "--particles", "1", "-n", "4", "-o", f"weekly={weekly}")  # fmt: skip
    assert set(summary["summary"]) >= {"beta", "gamma"}


def test_ciw_queue(tmp_path: Path) -> None:
    pytest.importorskip("ciw")
    cq = _load("ciw_queue")
    observed = cq.observed_day()
    assert observed["served"] > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post = cq.infer(observed, 8, seed=1, particles=1)
    rate = np.asarray(post.get("arrival_rate").to_numpy())
    assert len(rate) == 8 and np.all((rate >= 0.1) & (rate <= 0.3))
    assert post.chains == (8,)
    cq.plot(tmp_path, observed, post)
    assert (tmp_path / "ciw_posterior.png").stat().st_size > 5000
    # the library's own draws were intercepted: addresses run into ciw's frames
    trace = cq.model.get_trace(seed=0, observe=observed)
    inside = [s.address for s in trace.controlled if "/ciw." in s.address]
    assert len(inside) > 100 and inside[0].endswith("random.expovariate__Exponential__1")
    summary = _cli(tmp_path, "ciw_queue.py:model", "-e", "is", "-n", "6",
                   "-o", f"served={observed['served']}", "-o", "mean_wait=5.0")  # fmt: skip
    assert "arrival_rate" in summary["summary"]
