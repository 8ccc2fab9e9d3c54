"""Posterior agreement of surrogates on the reference models (``bench_surrogate.py posterior``).

For each model (Branching, Marsaglia, the HMM) a surrogate is trained as in the fidelity
benchmark; for ``--post-obs`` observations drawn from the prior predictive (seeded), importance
sampling and RMH on the surrogate, and importance sampling and RMH on the simulator (the
controls: correct engines on the true model, with the same seeds), estimate posterior
expectations whose exact values are known (Branching: enumeration; Marsaglia: the conjugate
Gaussian posterior of ``mu``, the same as UnknownMean's; the HMM: forward-backward). Each
estimate's Monte Carlo standard error comes from the Kish ESS (importance sampling) or from the
chain's autocorrelation ESS (RMH, ArviZ's MCSE of the mean via ``rotalumis.diagnostics``); the
exact value has none, so the combined standard error is the estimate's own. Reported: the error
of each statistic in those standard errors (``z``); the headline statistic's ``z``, the largest
``|z|`` and the RMS of ``z`` over the model's statistics.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rotalumis.core import Model
from rotalumis.diagnostics import convergence_table
from rotalumis.models import Branching, HiddenMarkovModel, MarsagliaUnknownMean
from rotalumis.surrogate import SurrogateTraining, train_surrogate

BRANCHING_MAX_N = 8  # P(n = k) for k < 8, and E[n]
METHODS = ("simulator IS", "surrogate IS", "simulator RMH", "surrogate RMH")


@dataclass(frozen=True)
class Case:
    """A reference model with its statistics: ``stats(posterior) -> (N, K)`` per-sample
    values, ``exact(obs) -> (K,)`` their exact posterior expectations, ``draw(rng)`` one
    observation mapping from the prior predictive."""

    model: Model
    names: list[str]
    stats: Callable[[Any], np.ndarray]
    exact: Callable[[dict[str, float]], np.ndarray]
    draw: Callable[[np.random.Generator], dict[str, float]]


def _values(post: Any, name: str) -> np.ndarray:
    """Latent ``name`` of every entry; for a tag (Marsaglia's ``mu``) the result, which is
    the tag's value for the simulator and the dict of named values for the surrogate."""
    if name in post.latent_names:
        return np.asarray(post.get(name).to_numpy(), dtype=float)
    out = post.to_numpy()
    return np.asarray(out[name] if isinstance(out, dict) else out, dtype=float)


def branching() -> Case:
    m = Branching()

    def stats(post: Any) -> np.ndarray:
        n = _values(post, "n")
        return np.column_stack([n, *[(n == k) for k in range(BRANCHING_MAX_N)]]).astype(float)

    def exact(obs: dict[str, float]) -> np.ndarray:
        p = np.asarray(m.exact_posterior(obs["obs"]))
        return np.concatenate([[p @ np.arange(len(p))], p[:BRANCHING_MAX_N]])

    def draw(rng: np.random.Generator) -> dict[str, float]:
        total = rng.binomial(rng.poisson(m.rate), m.p)
        return {"obs": round(float(total + m.noise * rng.standard_normal()), 2)}

    names = ["E[n]", *[f"P(n={k})" for k in range(BRANCHING_MAX_N)]]
    return Case(m, names, stats, exact, draw)


def marsaglia() -> Case:
    m = MarsagliaUnknownMean()

    def stats(post: Any) -> np.ndarray:
        mu = _values(post, "mu")
        return np.column_stack([mu, mu * mu])

    def exact(obs: dict[str, float]) -> np.ndarray:
        mean, sd = m.exact_posterior([obs[k] for k in m.names])
        return np.array([mean, mean * mean + sd * sd])

    def draw(rng: np.random.Generator) -> dict[str, float]:
        mu = rng.normal(m.prior_mean, m.prior_std)
        ys = mu + m.likelihood_std * rng.standard_normal(len(m.names))
        return m.observations([round(float(y), 2) for y in ys])

    return Case(m, ["E[mu]", "E[mu^2]"], stats, exact, draw)


def hmm(steps: int = 16) -> Case:
    m = HiddenMarkovModel(steps)

    def stats(post: Any) -> np.ndarray:
        cols = []
        for t in range(steps):
            s = _values(post, f"state{t}")
            cols += [(s == k) for k in range(3)]
        return np.column_stack(cols).astype(float)

    def exact(obs: dict[str, float]) -> np.ndarray:
        return m.exact_marginals([obs[f"obs{t}"] for t in range(steps)]).numpy().reshape(-1)

    def draw(rng: np.random.Generator) -> dict[str, float]:
        s, ys = rng.choice(3, p=m.initial), []
        for _ in range(steps):
            ys.append(round(float(m.means[s] + m.std * rng.standard_normal()), 2))
            s = rng.choice(3, p=m.transition[s])
        return m.observations(ys)

    names = [f"P(state{t}={k})" for t in range(steps) for k in range(3)]
    return Case(m, names, stats, exact, draw)


def _all(names: list[str], z: np.ndarray) -> str:
    """Every statistic's ``z`` when there are few of them."""
    return (
        "; " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(names, z, strict=True))
        if len(z) <= 2
        else ""
    )


def _tag_sd(surrogate: Any, case: Case) -> float | None:
    """Marsaglia: the sd of the surrogate's prior of the tag ``mu`` (20,000 traces)."""
    if "E[mu]" not in case.names:
        return None
    return float(np.std(_values(surrogate.prior(20_000, seed=5, progress=False), "mu")))


def is_estimate(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted means of the columns, their s.e. sqrt(Var_w / ESS) (Kish), and the ESS."""
    w = weights / weights.sum()
    mean = w @ values
    ess = 1.0 / float(w @ w)
    var = w @ (values - mean) ** 2
    return mean, np.sqrt(var / ess), ess


def chain_estimate(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Means of the columns of one chain, ArviZ's MCSE of each (autocorrelation ESS) and the
    smallest bulk ESS. A column that never moved has no MCSE (NaN)."""
    import arviz as az  # the diagnostics layer's dependency

    logging.getLogger("arviz").setLevel(logging.ERROR)  # one chain: "minimum 2 chains"

    data = az.from_dict(posterior={f"c{j}": values[None, :, j] for j in range(values.shape[1])})
    table = convergence_table(data)
    se = np.array([table[f"c{j}"]["mcse_mean"] for j in range(values.shape[1])])
    ess = min(table[f"c{j}"]["ess_bulk"] for j in range(values.shape[1]))
    return values.mean(axis=0), se, float(ess)


def run(args: Any) -> None:
    """The ``posterior`` part of bench_surrogate.py (see the module docstring)."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    cases = {"Branching": branching, "MarsagliaUnknownMean": marsaglia, "HiddenMarkovModel": hmm}
    chosen = [k for k in cases if not args.models or k in args.models]
    print(f"{'model':20} {'obs':>3} {'method':>14} {'N':>6} {'ESS':>7} {'head':>8} "
          f"{'head z':>7} {'max|z|':>7} {'rms z':>6}")  # fmt: skip
    for name in chosen:
        case = cases[name]()
        training = SurrogateTraining(
            num_traces=args.train_traces,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            seed=args.train_seed,
        )
        torch.manual_seed(args.train_seed - 1)
        config = args.surrogate_config  # set by bench_surrogate.py
        trained = train_surrogate(case.model, config, training)
        seconds = trained.simulation_seconds + trained.training_seconds
        print(f"# {name}: surrogate on {args.train_traces} traces, {args.epochs} epochs, "
              f"lr {args.learning_rate:g}, skip inputs {config.skip_values} values "
              f"{config.skip_tags} tags, training seed {args.train_seed}, {seconds:.0f} s",
              flush=True)  # fmt: skip
        mu_sd = _tag_sd(trained.model, case)
        if mu_sd is not None:
            print(f"# prior sd of the tag mu: {mu_sd:.3f} (exact {case.model.prior_std:.3f}, "
                  f"20,000 surrogate prior traces)", flush=True)  # fmt: skip
        rng = np.random.default_rng(0)
        n, steps = args.post_samples, args.post_rmh_steps
        for j in range(args.post_obs):
            obs = case.draw(rng)
            exact = case.exact(obs)
            for method in METHODS:
                target = case.model if method.startswith("simulator") else trained.model
                if method.endswith("RMH"):
                    post = target.posterior(steps, engine="rmh", observe=obs, seed=30 + j,
                                            burn_in=steps // 10, progress=False)  # fmt: skip
                else:
                    post = target.posterior(n, engine="is", observe=obs, seed=10 + j,
                                            progress=False)  # fmt: skip
                values = case.stats(post)
                if method.endswith("RMH"):
                    est, se, ess = chain_estimate(values)
                else:
                    est, se, ess = is_estimate(values, np.asarray(post.weights, dtype=float))
                z = (est - exact) / se
                ok = np.isfinite(z)
                rms = math.sqrt(float(np.mean(z[ok] ** 2))) if ok.any() else math.nan
                big = float(np.abs(z[ok]).max()) if ok.any() else math.nan
                worst = case.names[int(np.argmax(np.where(ok, np.abs(z), -1.0)))]
                print(f"{name[:20]:20} {j:3d} {method:>14} {len(values):6d} {ess:7.0f} "
                      f"{est[0]:8.4f} {z[0]:7.2f} {big:7.2f} {rms:6.2f}"
                      f"  (exact {case.names[0]} {exact[0]:.4f}, se {se[0]:.4f}; "
                      f"worst {worst}{_all(case.names, z)})", flush=True)  # fmt: skip
