"""Runs in .venv-sbi (sbi from PyPI): single-round NPE on given simulations, then posterior
samples for given observations. Called by bench_sbi_tasks.py; reads and writes .npz files.

NPE as sbi's users run it: ``NPE(prior, density_estimator="nsf")`` (a neural spline flow, as
in the sbibm paper) with sbi's default training (Adam 5e-4, batches of 200, 10% validation,
stop after 20 epochs without improvement).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def prior(task: str) -> object:
    from sbi.utils import BoxUniform

    if task == "gaussian_linear":
        return torch.distributions.MultivariateNormal(torch.zeros(10), 0.1 * torch.eye(10))
    bound, dim = {"two_moons": (1.0, 2), "slcp": (3.0, 5), "gaussian_mixture": (10.0, 2)}[task]
    return BoxUniform(-bound * torch.ones(dim), bound * torch.ones(dim))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", required=True, help="npz with theta, x, observations")
    parser.add_argument("--out", required=True, help="npz written: samples (obs, n, dim)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from sbi.inference import NPE

    data = np.load(args.data)
    theta = torch.as_tensor(data["theta"], dtype=torch.float32)
    x = torch.as_tensor(data["x"], dtype=torch.float32)
    inference = NPE(prior=prior(args.task), density_estimator="nsf", show_progress_bars=False)
    inference.append_simulations(theta, x)
    start = time.perf_counter()
    estimator = inference.train(show_train_summary=False)
    seconds = time.perf_counter() - start
    epochs = int(inference._summary["epochs_trained"][-1])
    posterior = inference.build_posterior(estimator)
    samples = []
    for x_o in data["observations"]:
        xo = torch.as_tensor(x_o, dtype=torch.float32)[None]
        s = posterior.sample((args.samples,), x=xo, show_progress_bars=False)
        samples.append(s.numpy())
    np.savez(args.out, samples=np.stack(samples))
    info = {"seconds": seconds, "epochs": epochs, "simulations": len(theta)}
    with open(args.out + ".json", "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main()
