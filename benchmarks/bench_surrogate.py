"""Probabilistic surrogates: fidelity at scale, speed and break-even against the simulator.

Two parts, each printing a table:

``fidelity`` — for the reference models with changing structure (branching with a Poisson
number of latents, Marsaglia's rejection loop, the HMM): train a surrogate on
``--train-traces`` simulated traces, then compare ``--traces`` (default 10^5) prior traces of
each model (``--models`` picks some by name): TV distance of the trace-type frequencies
beside its Monte Carlo noise floor, the largest per-address C2ST accuracy (classifier test
on up to 2,000 values of each of the 4 most visited addresses), the fallback rate.

``speed`` — the SIR agent-based epidemic of examples/sir_epidemic.py (about 90 random
choices per run, most of them vectors of 200): a surrogate of the parameters and the
observation (``sites=("beta", "gamma")``: the rest is nuisance, marginalised by the
surrogate) trained on ``--sir-train-traces`` runs (or the one saved in ``--sir-surrogate``,
e.g. by examples/surrogate_sir.py, whose output has its budget and break-even); the C2ST of
its prior marginals against the simulator's; traces per second of the simulator and of the
surrogate, one execution at a time (``batch=1``) and batched (``--batch`` executions drafted
in lockstep), measured side by side (alternating, medians of ``--repeats``, CPU time, one
torch thread), and the break-even number of traces (batched): the training budget (CPU
time simulating the training traces plus training) divided by the CPU time saved per trace.

``ic`` — an inference network trained only on surrogate traces against one trained on the
simulator, on the branching model (a Poisson number of latents; exact posterior of ``n`` by
enumeration). The surrogate is trained as in ``fidelity`` (``--learning-rate``: its
learning rate; 8 epochs at 3e-3 made its long traces good enough); both networks get the same budget
and settings (``--ic-traces``, batch 32, learning rate 3e-3, same seed). For ``--ic-obs``
observations drawn from the prior predictive: the total-variation distance of each
network's proposal of ``n`` (the unweighted ``n`` of ``--ic-samples`` importance-sampling
traces: only as good as the network) from the exact posterior, beside the TV of as many
exact draws (the Monte Carlo floor), and importance sampling on the simulator with each
network: the error of the posterior mean of ``n`` in its standard errors (Kish ESS) and
the ESS per trace. ``--ic-model unknown_mean``: the same comparison on UnknownMean (exact
Gaussian posterior; C2ST of the proposal), see benchmarks/_surrogate_ic.py.

``posterior`` — IS and RMH on a surrogate of each reference model against the exact posterior
(and IS on the simulator as the control), in Monte Carlo standard errors, for
``--post-obs`` prior-predictive observations: see benchmarks/_surrogate_posterior.py.

    .venv/bin/python benchmarks/bench_surrogate.py [fidelity|speed|ic|posterior|all]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rotalumis.core import Model
from rotalumis.diagnostics import compare_surrogate
from rotalumis.models import Branching, HiddenMarkovModel, MarsagliaUnknownMean
from rotalumis.nn import TrainingConfig, train_network
from rotalumis.surrogate import (
    SurrogateConfig,
    SurrogateModel,
    SurrogateNetwork,
    SurrogateTraining,
    simulate_steps,
    train_surrogate,
)

ROOT = Path(__file__).resolve().parents[1]


def surrogate_config(args: argparse.Namespace) -> SurrogateConfig:
    """The default SurrogateConfig with the skip inputs asked for on the command line."""
    skip = {k: getattr(args, k) for k in ("skip_values", "skip_tags")}
    return SurrogateConfig(**{k: v for k, v in skip.items() if v is not None})


def fidelity(args: argparse.Namespace) -> None:
    models: list[Model] = [
        m
        for m in (Branching(), MarsagliaUnknownMean(), HiddenMarkovModel())
        if not args.models or m.name in args.models
    ]
    print(f"{'model':24} {'train':>7} {'train s':>8} {'traces':>7} {'TV':>7} {'noise':>7} "
          f"{'C2ST max':>8} {'fallback':>8}")  # fmt: skip
    for model in models:
        n = args.train_traces
        config = surrogate_config(args)
        training = SurrogateTraining(num_traces=n, epochs=args.epochs, seed=1)
        trained = train_surrogate(model, config, training)
        seconds = trained.simulation_seconds + trained.training_seconds
        traces = args.traces
        f = compare_surrogate(trained.model, model, num_traces=traces, seed=2, c2st_sites=4)
        print(
            f"{model.name:24} {n:7d} {seconds:8.0f} {traces:7d} {f.trace_type_tv:7.4f} "
            f"{f.trace_type_tv_noise:7.4f} {f.max_c2st or float('nan'):8.3f} "
            f"{f.fallback_rate:8.4f}",
            flush=True,
        )


def _per_trace(model: Model, n: int, seed: int) -> float:
    start = time.process_time()
    simulate_steps(model, n, seed)
    return (time.process_time() - start) / n


def _per_is_trace(model: Model, n: int, seed: int, observe: dict[str, object]) -> float:
    start = time.process_time()
    model.posterior(n, engine="is", observe=observe, seed=seed, progress=False)
    return (time.process_time() - start) / n


def speed(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from sir_epidemic import model as sir
    from sir_epidemic import observed_cases, weekly_totals

    cpu = time.process_time()
    if args.sir_surrogate is not None:  # e.g. the example's (its budget is in its output)
        network = SurrogateNetwork.load(args.sir_surrogate)
        trained = None
    else:
        config = SurrogateConfig(sites=("beta", "gamma"), heads={"vector": args.vector_head})
        training = SurrogateTraining(
            num_traces=args.sir_train_traces,
            epochs=args.sir_epochs,
            batch_size=64,
            learning_rate=3e-3,
        )
        trained = train_surrogate(sir, config, training)
        network = trained.network
    cpu = time.process_time() - cpu
    surrogate = SurrogateModel(network, sir, batch=args.batch)
    single = SurrogateModel(network, sir, batch=1)
    f = compare_surrogate(surrogate, sir, num_traces=args.sir_compare_traces, seed=2)
    c2st = ", ".join(f"{s['name']} {s['c2st']:.3f}" for s in f.sites if s["c2st"] is not None)
    print(f"SIR prior marginals, C2ST on {args.sir_compare_traces} traces each: {c2st}")
    observe = {"weekly": weekly_totals(observed_cases()).tolist()}
    kinds = ("sim", "one", "sur", "sim_is", "one_is", "sur_is")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    n = args.sim_traces
    for r in range(args.repeats):
        times["sim"].append(_per_trace(sir, n, r))
        times["one"].append(_per_trace(single, n * 5, r))
        times["sur"].append(_per_trace(surrogate, n * 50, r))
        times["sim_is"].append(_per_is_trace(sir, n, r, observe))
        times["one_is"].append(_per_is_trace(single, n * 5, r, observe))
        times["sur_is"].append(_per_is_trace(surrogate, n * 50, r, observe))
    med = {k: statistics.median(v) for k, v in times.items()}
    t_sim, t_sur = med["sim"], med["sur"]
    budget = cpu  # simulating the training traces and training, CPU seconds
    head = f"surrogate, batch {args.batch}"
    print(f"{'':28} {'simulator':>10} {'surrogate, one at a time':>25} {head:>22}")
    for label, a, b, c in (
        ("prior traces / s (CPU)", "sim", "one", "sur"),
        ("IS traces / s (CPU)", "sim_is", "one_is", "sur_is"),
    ):
        print(f"{label:28} {1 / med[a]:10.1f} {1 / med[b]:25.1f} {1 / med[c]:22.1f}")
        speedups = f"{med[a] / med[b]:24.1f}x {med[a] / med[c]:21.1f}x"
        print(f"{'  speed-up':28} {'':>10} {speedups}")
    if trained is not None:
        wall = f"{trained.simulation_seconds:.0f} + {trained.training_seconds:.0f} s wall"
        print(f"training traces {trained.traces}, simulation + training {cpu:.0f} CPU s ({wall})")
        i_sim, i_sur = med["sim_is"], med["sur_is"]
        print(
            f"break-even: {budget / (t_sim - t_sur):.0f} prior traces, "
            f"{budget / (i_sim - i_sur):.0f} importance-sampling traces"
        )
    print(f"fallbacks: {surrogate.stats.fallbacks} of {surrogate.stats.executions} executions")


def _tv(counts: np.ndarray, exact: np.ndarray) -> float:
    return float(0.5 * np.abs(counts / counts.sum() - exact).sum())


def ic(args: argparse.Namespace) -> None:
    if args.ic_model == "unknown_mean":
        from _surrogate_ic import run  # the benchmarks directory is on sys.path

        return run(args)
    model = Branching()
    surrogate = train_surrogate(
        model,
        SurrogateConfig(),
        SurrogateTraining(
            num_traces=args.train_traces,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            seed=1,
        ),
    ).model
    config = TrainingConfig(
        num_traces=args.ic_traces, batch_size=32, learning_rate=3e-3, valid_size=0, seed=5
    )
    nets = {k: train_network(model=m, config=config).network
            for k, m in (("simulator", model), ("surrogate", surrogate))}  # fmt: skip
    rng = np.random.default_rng(0)
    counts = rng.binomial(rng.poisson(model.rate, args.ic_obs), model.p)  # prior predictive
    obs = [round(float(c + model.noise * rng.standard_normal()), 2) for c in counts]
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in nets}
    floors = []
    m = args.ic_samples
    print(f"{'obs':>6} {'network':>10} {'TV':>7} {'floor':>7} {'IS err/se':>9} {'ESS/trace':>9}")
    for j, y in enumerate(obs):
        exact = np.asarray(model.exact_posterior(y))
        support = np.arange(len(exact))
        mean = float(exact @ support)
        floors.append(
            _tv(np.bincount(rng.choice(support, m, p=exact), minlength=len(exact)), exact)
        )
        for label, net in nets.items():
            # the traces' n is drawn from the network's proposal (its first choice): the
            # unweighted histogram is the proposal; the weighted one the IS posterior
            post = model.posterior(m, engine="ic", observe={"obs": y}, seed=j, network=net)
            n = np.asarray(post.get("n").to_numpy(), dtype=int)
            tv = _tv(np.bincount(n, minlength=len(exact))[: len(exact)], exact)
            v = np.asarray(post.get("n").to_numpy(), dtype=float)
            w = np.asarray(post.get("n").weights, dtype=float)
            w = w / w.sum()
            est, ess = float(w @ v), 1.0 / float(w @ w)
            se = math.sqrt(float(w @ (v - est) ** 2) / ess)  # Kish: sqrt(Var_w / ESS)
            rows[label].append((tv, (est - mean) / se, ess / m))
            print(f"{y:6.2f} {label:>10} {tv:7.4f} {floors[-1]:7.4f} {(est - mean) / se:9.2f} "
                  f"{ess / m:9.3f}", flush=True)  # fmt: skip
    for label, r in rows.items():
        tv, z, e = (np.asarray(c) for c in zip(*r, strict=True))
        print(f"{label}-trained: proposal TV mean {tv.mean():.4f} (floor {np.mean(floors):.4f}), "
              f"max {tv.max():.4f}; IS |err|/se max {np.abs(z).max():.2f}; "
              f"ESS/trace mean {e.mean():.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=["fidelity", "speed", "ic", "posterior", "all"],
    )
    parser.add_argument("--traces", type=int, default=100_000, help="compared traces each")
    parser.add_argument(
        "--models", nargs="*", default=[], help="fidelity models by name (default: all three)"
    )
    parser.add_argument("--train-traces", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-2,
        help="ic, posterior: the surrogate's learning rate",
    )
    parser.add_argument("--sir-train-traces", type=int, default=3_000)
    parser.add_argument("--sir-epochs", type=int, default=15)
    parser.add_argument("--sir-compare-traces", type=int, default=500)
    parser.add_argument(
        "--sir-surrogate", type=Path, default=None, help="speed: time this surrogate file"
    )
    parser.add_argument("--sim-traces", type=int, default=20, help="SIR runs timed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ic-traces", type=int, default=16_000, help="ic: network training")
    parser.add_argument("--ic-obs", type=int, default=5, help="ic: observations")
    parser.add_argument("--ic-samples", type=int, default=2_000, help="ic: draws each")
    parser.add_argument(
        "--ic-model",
        choices=["branching", "unknown_mean"],
        default="branching",
        help="ic: the model (unknown_mean: see benchmarks/_surrogate_ic.py)",
    )
    parser.add_argument(
        "--um-surrogates",
        nargs="+",
        default=["4000:3"],
        help="ic on unknown_mean: surrogates as TRACES:EPOCHS",
    )
    parser.add_argument("--post-obs", type=int, default=3, help="posterior: observations")
    parser.add_argument(
        "--post-samples", type=int, default=20_000, help="posterior: IS traces each"
    )
    parser.add_argument(
        "--train-seed",
        type=int,
        default=1,
        help="posterior: the surrogate's training seed (torch's: one less)",
    )
    parser.add_argument(
        "--post-rmh-steps", type=int, default=20_000, help="posterior: RMH steps each"
    )
    parser.add_argument(
        "--skip-values",
        type=int,
        default=None,
        help="fidelity, posterior: SurrogateConfig.skip_values (default: the config's)",
    )
    parser.add_argument(
        "--skip-tags",
        type=int,
        default=None,
        help="fidelity, posterior: SurrogateConfig.skip_tags (default: the config's)",
    )
    parser.add_argument(
        "--batch", type=int, default=64, help="surrogate executions drafted at once"
    )
    parser.add_argument(
        "--vector-head",
        choices=["mixture", "flow"],
        default="flow",
        help="head of the weekly-cases observation: a joint flow or per-week mixtures",
    )
    args = parser.parse_args()
    args.surrogate_config = surrogate_config(args)
    torch.set_num_threads(1)
    if args.part in ("fidelity", "all"):
        fidelity(args)
    if args.part in ("speed", "all"):
        speed(args)
    if args.part in ("ic", "all"):
        ic(args)
    if args.part in ("posterior", "all"):
        from _surrogate_posterior import run  # the benchmarks directory is on sys.path

        run(args)


if __name__ == "__main__":
    main()
