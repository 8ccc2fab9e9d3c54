"""An inference network trained on surrogate traces of UnknownMean against one trained on the
simulator (``bench_surrogate.py ic --ic-model unknown_mean``).

The exact posterior of ``mu`` is Gaussian (conjugate). One network is trained on simulator
traces, one on the traces of each surrogate in ``--um-surrogates`` (``TRACES:EPOCHS``, at
``--learning-rate``), all with the same budget and settings (``--ic-traces``, batch 32,
learning rate 3e-3, seed 5). For ``--ic-obs`` observations drawn from the prior predictive
(seed 0), with ``--ic-samples`` draws each:

* the proposal alone (``proposal_only=True``: no weights, only as good as the network):
  C2ST accuracy against as many exact draws, and the error of its mean in posterior sds
  (floor: a mean of ``n`` exact draws is off by ``sqrt(2 / (pi n))`` sds on average);
* importance sampling on the simulator with the network as proposal: the ESS per trace.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rotalumis.diagnostics import c2st
from rotalumis.models import UnknownMean
from rotalumis.nn import TrainingConfig, train_network
from rotalumis.surrogate import SurrogateConfig, SurrogateTraining, train_surrogate


def run(args: Any) -> None:
    """The UnknownMean comparison (see the module docstring)."""
    model = UnknownMean()
    config = TrainingConfig(
        num_traces=args.ic_traces, batch_size=32, learning_rate=3e-3, valid_size=0, seed=5
    )
    nets = {"simulator": train_network(model=model, config=config).network}
    for spec in args.um_surrogates:
        traces, epochs = (int(x) for x in spec.split(":"))
        training = SurrogateTraining(
            num_traces=traces, epochs=epochs, learning_rate=args.learning_rate, seed=1
        )
        torch.manual_seed(0)
        trained = train_surrogate(model, SurrogateConfig(), training)
        seconds = trained.simulation_seconds + trained.training_seconds
        print(f"# surrogate {traces} traces, {epochs} epochs, lr {args.learning_rate:g}: "
              f"{seconds:.0f} s", flush=True)  # fmt: skip
        nets[f"surrogate {spec}"] = train_network(model=trained.model, config=config).network
    rng = np.random.default_rng(0)
    m = args.ic_samples
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in nets}
    for j in range(args.ic_obs):
        mu = rng.normal(model.prior_mean, model.prior_std)
        ys = [float(mu + v) for v in rng.normal(0.0, model.likelihood_std, size=2)]
        mean, sd = model.exact_posterior(ys)
        exact = rng.normal(mean, sd, size=(m, 1))
        observe = model.observations(ys)
        for label, net in nets.items():
            prop = model.posterior(
                m, engine="ic", observe=observe, seed=j, network=net, proposal_only=True
            )
            x = np.asarray(prop.get("mu").to_numpy(), dtype=float)
            post = model.posterior(m, engine="ic", observe=observe, seed=100 + j, network=net)
            w = np.asarray(post.weights, dtype=float)
            ess = 1.0 / float((w / w.sum()) @ (w / w.sum()))
            err = abs(float(x.mean()) - mean) / sd
            rows[label].append((c2st(exact, x.reshape(-1, 1)), err, ess / m))
            print(f"obs {j} {label:>22}: C2ST {rows[label][-1][0]:.3f}, mean err/sd "
                  f"{err:.3f}, ESS/trace {ess / m:.3f}", flush=True)  # fmt: skip
    floor = math.sqrt(2.0 / (math.pi * m))
    print(f"{'network trained on':>22} {'C2ST mean':>9} {'max':>6} {'err/sd':>7} "
          f"{'ESS/trace':>9}   (err/sd floor {floor:.3f})")  # fmt: skip
    for label, r in rows.items():
        acc, err, ess = (np.asarray(c) for c in zip(*r, strict=True))
        print(f"{label:>22} {acc.mean():9.3f} {acc.max():6.3f} {err.mean():7.3f} "
              f"{ess.mean():9.3f}")  # fmt: skip
