"""The tau-decay example with a GPU budget: a large amortized network, then a proposal fitted
to this image (RMH draws, then optional adaptive IC rounds).

Trains the example's inference network on ``--traces`` prior simulations (simulated ahead
of the training step in ``--workers`` processes) on ``--device`` (default: CUDA when
present), prints the ESS of plain IC importance sampling on the example's observed image,
fits a proposal network to ``--chains`` RMH chains of ``--draws`` kept draws run on the
image (in ``--workers`` processes; see ``tau_decay.fit_proposal``), runs ``--rounds`` adaptive
IC rounds of ``--round-traces`` (0: none) and prints the ESS and the posterior of the decay
channel and momentum, with whether the 95% intervals hold the truth. Writes the networks to
``--out``.

    .venv/bin/python scripts/tau_gpu_train.py --traces 1000000 --workers 14 --batch-size 256

On two shared CPU cores the example itself (10,000 training traces, 6,000 RMH draws) is what
the README reports; the point of a GPU machine is a larger amortized budget and more RMH
chains, draws and epochs for the fit. Not yet run on a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import tau_decay as td


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=256)
    cores = os.cpu_count() or 2
    parser.add_argument("--workers", type=int, default=max(cores - 2, 1))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chains", type=int, default=14)
    parser.add_argument("--draws", type=int, default=2000, help="kept RMH draws per chain")
    parser.add_argument("--warm-epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--round-traces", type=int, default=2000)
    parser.add_argument("--ic-traces", type=int, default=5000)
    parser.add_argument("--event", type=int, default=1, help="seed of the observed event")
    parser.add_argument("--seed", type=int, default=1, help="seed of the inference")
    parser.add_argument("--out", type=Path, default=Path("results/tau_gpu"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    p_true, channel, image = td.observed_event(args.event)
    print(f"truth: {td.CHANNELS[channel]}, momentum {np.round(p_true, 3)}; device {args.device}")
    start = time.perf_counter()
    network = td.train_ic(
        args.traces, seed=args.seed, batch_size=args.batch_size, workers=args.workers,
        device=args.device,
    )  # fmt: skip
    trained = time.perf_counter() - start
    network.save(args.out / "tau_network.pt")
    print(f"trained on {args.traces:,} traces in {trained:.0f} s "
          f"({args.traces / trained:,.0f} traces/s)")  # fmt: skip
    plain = td.infer_ic(image, network, args.ic_traces, seed=args.seed)
    print(f"amortized IC: ESS {plain.ess:.1f} of {args.ic_traces}")

    def show(k: int, info: dict[str, float]) -> None:
        print(f"  round {k}: ESS {info['ess']:.1f} of {args.round_traces}", flush=True)

    rmh = td.infer(
        image, args.draws, seed=args.seed, chains=args.chains, burn_in=2000, thin=20,
        keep_traces=True, workers=args.workers,
    )  # fmt: skip
    draws = td.posterior_draws(rmh.traces)
    network = td.fit_proposal(draws, args.warm_epochs, args.seed)
    warm = td.infer_ic(image, network, args.ic_traces, seed=args.seed)
    print(f"fitted to {len(draws)} RMH draws: ESS {warm.ess:.1f} of {args.ic_traces}")
    if args.rounds > 0:
        network = td.adapt_ic(
            image, network, args.rounds, args.round_traces, args.seed, show
        ).network
    network.save(args.out / "tau_network_adapted.pt")
    ic = td.infer_ic(image, network, args.ic_traces, seed=args.seed + 1000)
    td.summarize("adapted IC", ic)
    inside, p_channel = td.covers(ic, p_true, channel)
    print(f"ESS {ic.ess:.1f} of {args.ic_traces} ({100 * ic.ess / args.ic_traces:.1f}%); "
          f"95% intervals hold px, py, pz: {inside}; P(true channel) {p_channel:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
