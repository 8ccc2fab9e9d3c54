"""Design a magnetized muon shield with a simulator that cannot be differentiated.

A toy of the SHiP muon-shield problem that motivated L-GSO. Muons from a target cross a
block of magnetized iron of length ``L`` (m) and field ``B`` (T), then drift 10 m to a
detector of half-width 1 m. The field bends each muon by ``0.3 B L / p`` radians (sign by
charge), the iron scatters it, and the iron itself sends secondary particles into the
detector, more for a longer block. The simulator (:func:`simulate_background`) is plain
NumPy code with random draws, counting and thresholds: nothing to differentiate. Its output
is the energy deposited in the detector; the design minimizes its expectation. A short,
strong magnet lets muons through; a long one makes its own background: the best length is
in between, and the best field is the strongest allowed (a bound).

``optimize_blackbox`` runs the simulator unmodified (its ``numpy.random`` draws are
intercepted and seeded by call), fits a local generative surrogate of the deposit given
the design in a trust region, and follows its gradient. The exact expected deposit for the
plot and the reference optimum comes from a large Monte Carlo with common random numbers
(200,000 muons, outside the budget).

Run (about 2 minutes on two cores; writes the plot)::

    .venv/bin/python examples/muon_shield_design.py --out examples/images/muon_shield_lgso.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from rotalumis.optimize import BlackBoxResult, LGSOConfig, optimize_blackbox

MUONS = 400  # muons per simulator call
DRIFT = 10.0  # m from the magnet's end to the detector
HALF_WIDTH = 1.0  # m
BOUNDS = ([0.5, 0.0], [8.0, 1.8])  # length (m), field (T)
START = {"length": 1.0, "field": 0.5}


def simulate_background(length: float, field: float) -> np.ndarray:
    """Energy (GeV) deposited in the detector by one spill of ``MUONS`` muons.

    Plain NumPy code, unmodified for rotalumis: random draws, a loop-free transport, a
    threshold and counts.
    """
    length, field = float(length), float(field)
    p = 5.0 + np.random.exponential(20.0, MUONS)  # momentum, GeV
    charge = np.where(np.random.uniform(size=MUONS) < 0.5, -1.0, 1.0)
    x0 = np.random.normal(0.0, 0.5, MUONS)  # m
    angle0 = np.random.normal(0.0, 0.02, MUONS)  # rad
    kick = charge * 0.3 * field * length / p
    scatter = np.random.normal(0.0, 1.0, MUONS) * 0.0136 / p * np.sqrt(length / 0.0176)
    x = x0 + angle0 * (length + DRIFT) + (kick + scatter) * (length / 2 + DRIFT)
    muon_hits = int(np.count_nonzero(np.abs(x) < HALF_WIDTH))
    secondaries = int(np.random.poisson(30.0 * length))
    deposit = np.random.gamma(4.0, 0.05, muon_hits).sum()
    deposit += np.random.gamma(2.0, 0.1, secondaries).sum()
    return np.array([deposit])


def deposit(y: torch.Tensor) -> torch.Tensor:
    """The objective: the deposited energy of each output."""
    return y[:, 0]


def expected_deposit(length: float, field: float, muons: int = 200_000) -> float:
    """The exact objective up to 0.1% (one large spill with fixed random numbers)."""
    rng = np.random.default_rng(12345)
    p = 5.0 + rng.exponential(20.0, muons)
    charge = np.where(rng.uniform(size=muons) < 0.5, -1.0, 1.0)
    x0 = rng.normal(0.0, 0.5, muons)
    angle0 = rng.normal(0.0, 0.02, muons)
    scatter = rng.normal(0.0, 1.0, muons) * 0.0136 / p * np.sqrt(length / 0.0176)
    x = (
        x0
        + angle0 * (length + DRIFT)
        + (charge * 0.3 * field * length / p + scatter) * (length / 2 + DRIFT)
    )
    hit_fraction = np.count_nonzero(np.abs(x) < HALF_WIDTH) / muons
    return MUONS * hit_fraction * 4.0 * 0.05 + 30.0 * length * 2.0 * 0.1


def reference_optimum() -> tuple[float, float, float]:
    """(length, field, expected deposit) minimizing the exact objective on a fine grid."""
    best = (float("inf"), 0.0, 0.0)
    for length in np.linspace(BOUNDS[0][0], BOUNDS[1][0], 111):
        value = expected_deposit(float(length), BOUNDS[1][1])
        best = min(best, (value, float(length), BOUNDS[1][1]))
    return best[1], best[2], best[0]


CONFIG = LGSOConfig(
    epsilon=0.3, samples_per_step=16, lr=0.15, flow="nsf", hidden_features=(32, 32),
    transforms=2, refit_steps=40, objective_samples=512,
)  # fmt: skip


def run(budget: int = 2000, seed: int = 0, config: LGSOConfig = CONFIG) -> BlackBoxResult:
    """Optimize the design with L-GSO within ``budget`` simulator calls."""
    return optimize_blackbox(
        simulate_background, START, deposit, "lgso", budget=budget, bounds=BOUNDS,
        config=config, seed=seed,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="examples/images/muon_shield_lgso.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    res = run(args.budget, args.seed)
    length, field, best = reference_optimum()
    found = expected_deposit(res.params["length"], res.params["field"])
    start = expected_deposit(START["length"], START["field"])
    print(
        f"L-GSO, {res.calls} calls: length {res.params['length']:.2f} m, field "
        f"{res.params['field']:.2f} T, expected deposit {found:.3f} GeV (start {start:.3f})"
    )
    print(f"reference optimum: length {length:.2f} m, field {field:.2f} T, {best:.3f} GeV")
    res.plot(
        args.out,
        title="Muon shield design with L-GSO (unmodified NumPy simulator)",
        reference=best,
        exact=lambda p: expected_deposit(float(p[0]), float(p[1])),
    )
    print(f"plot written to {args.out}")


if __name__ == "__main__":
    main()
