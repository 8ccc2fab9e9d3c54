"""Posterior agreement of SIR surrogates with the simulator, over several trainings.

The SIR example's surrogate (``examples/surrogate_sir.py``) is trained here on runs of the
plain numpy program the example intercepts (``simulate_epidemic``, recorded only at the
example's addresses ``beta``, ``gamma`` and ``weekly``: the same joint distribution, about
30x faster than the intercepted model). Subcommands (each writes JSON or ``.npz`` files)::

    # simulator reference: importance sampling from the prior, plain program, no recording
    python benchmarks/sir_surrogate_agreement.py ref --n 400000 --out runs/ref.json
    # one training (the example's settings), then importance sampling on it
    python benchmarks/sir_surrogate_agreement.py train --seed 1 --out runs/s1.pt
    python benchmarks/sir_surrogate_agreement.py eval runs/s1.pt --seed 3
    # offsets in combined standard errors; comma-joined files are pooled (an ensemble)
    python benchmarks/sir_surrogate_agreement.py report --ref runs/ref.json \\
        runs/s1.is3.npz runs/s1.is3.npz,runs/s2.is3.npz

Standard errors are ``sd / sqrt(ESS)`` (Kish ESS); "c.s.e." is the difference of the
posterior means over the combined standard error of both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rotalumis.core import Model, Normal, Uniform, current_rng, observe, sample
from rotalumis.surrogate import (
    SurrogateConfig,
    SurrogateModel,
    SurrogateNetwork,
    SurrogateTraining,
    train_surrogate,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from sir_epidemic import KERNEL, observed_cases, simulate_epidemic, weekly_totals

OBSERVED = weekly_totals(observed_cases())  # [37, 73, 24, 9]
RATES = ("beta", "gamma")


class PlainSIR(Model):
    """The plain numpy program, recorded at the example's addresses only."""

    def forward(self) -> None:
        beta = sample(Uniform(0.0, 0.3), name="beta", address="beta")
        gamma = sample(Uniform(0.0, 0.5), name="gamma", address="gamma")
        cases = simulate_epidemic(beta, gamma, seed=current_rng().py.getrandbits(63))
        weekly = Normal(torch.from_numpy(weekly_totals(cases)), KERNEL)
        observe(weekly, name="weekly", address="weekly")


def summary(values: dict[str, np.ndarray], logw: np.ndarray) -> dict[str, object]:
    """ESS and, per rate, (mean, sd, Monte Carlo standard error) of a weighted sample."""
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = 1.0 / float(w @ w)
    out: dict[str, object] = {"ess": ess}
    for k, v in values.items():
        mean = float(w @ v)
        sd = math.sqrt(float(w @ (v - mean) ** 2))
        out[k] = (mean, sd, sd / math.sqrt(ess))
    return out


def reference(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    beta, gamma = rng.uniform(0, 0.3, args.n), rng.uniform(0, 0.5, args.n)
    cpu = time.process_time()
    logw = np.empty(args.n)
    for i in range(args.n):
        cases = simulate_epidemic(beta[i], gamma[i], seed=int(rng.integers(1 << 62)))
        logw[i] = -0.5 * np.sum(((OBSERVED - weekly_totals(cases)) / KERNEL) ** 2)
    out = summary({"beta": beta, "gamma": gamma}, logw)
    out.update(n=args.n, seed=args.seed, cpu_s=time.process_time() - cpu)
    Path(args.out).write_text(json.dumps(out))
    print(json.dumps(out))


def train(args: argparse.Namespace) -> None:
    cpu = time.process_time()
    trained = train_surrogate(
        PlainSIR(name="SIREpidemic"),
        SurrogateConfig(sites=RATES, flow_bound=args.bound),
        SurrogateTraining(
            num_traces=args.n,
            epochs=args.epochs,
            batch_size=64,
            learning_rate=3e-3,
            seed=args.seed,
            validation_traces=1000,
        ),
    )
    trained.network.save(args.out)
    info = {
        "seed": args.seed,
        "bound": args.bound,
        "runs": args.n,
        "cpu_s": time.process_time() - cpu,
        "simulation_s": trained.simulation_seconds,
        "training_s": trained.training_seconds,
        "validation": trained.validation,
        "best_epoch": trained.best_epoch,
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(info))
    print(json.dumps(info))


def evaluate(args: argparse.Namespace) -> None:
    for path in args.files:
        surrogate = SurrogateModel(SurrogateNetwork.load(path), PlainSIR(name="SIREpidemic"))
        post = surrogate.posterior(
            args.n, engine="is", observe={"weekly": OBSERVED.tolist()}, seed=args.seed
        )
        values = {k: np.asarray(post.get(k).to_numpy(), dtype=float) for k in RATES}
        logw = np.asarray(post.log_weights, dtype=float)
        np.savez(Path(path).with_suffix(f".is{args.seed}.npz"), logw=logw, **values)
        print(path, json.dumps(summary(values, logw)), "fallbacks", surrogate.stats.fallbacks)


def report(args: argparse.Namespace) -> None:
    ref = json.loads(Path(args.ref).read_text())
    for group in args.groups:
        parts = [np.load(f) for f in group.split(",")]
        values = {k: np.concatenate([p[k] for p in parts]) for k in RATES}
        s = summary(values, np.concatenate([p["logw"] for p in parts]))
        cells = []
        for k in RATES:
            mean, sd, se = s[k]  # type: ignore[misc]
            cse = (mean - ref[k][0]) / math.hypot(se, ref[k][2])
            cells.append(f"{k} {mean:.4f} +- {sd:.3f} ({cse:+.1f} c.s.e.)")
        print(f"{group}: {', '.join(cells)}, ESS {s['ess']:.0f}")


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ref", help="simulator reference (importance sampling)")
    p.add_argument("--n", type=int, default=400_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    p = sub.add_parser("train", help="train one surrogate (the example's settings)")
    p.add_argument("--n", type=int, default=16_000, help="training runs")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--bound", type=float, default=5.0, help="SurrogateConfig.flow_bound")
    p.add_argument("--out", required=True)
    p = sub.add_parser("eval", help="importance sampling on saved surrogates")
    p.add_argument("files", nargs="+")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=3)
    p = sub.add_parser("report", help="offsets from the reference in c.s.e.")
    p.add_argument("--ref", required=True)
    p.add_argument("groups", nargs="+", help="npz files; comma-joined ones are pooled")
    args = parser.parse_args()
    {"ref": reference, "train": train, "eval": evaluate, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
