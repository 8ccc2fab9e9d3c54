"""Calibration of an amortized posterior across observations: SBC ranks and TARP coverage.

A network can look right on one observation and be wrong on others. Simulation-based
calibration (Talts et al., "Validating Bayesian inference algorithms with simulation-based
calibration", 2018) checks all of them at once: draw ``theta* ~ p(theta)`` and
``y ~ p(y | theta*)``, draw ``L`` posterior samples given ``y``, and record the rank of
``theta*`` among them. If the posterior is right, ``theta*`` is just one more draw from it,
so its rank is uniform on ``0 .. L`` for every parameter; too narrow posteriors give
U-shaped rank histograms, too wide ones humps, biased ones slopes. Ties (discrete
parameters) are broken at random, which keeps the ranks uniform.

TARP (Lemos et al., "Sampling-based accuracy testing of posterior estimators for general
inference", ICML 2023) tests the joint posterior of all parameters: for a random reference
point ``theta_r`` (here: the true parameters of another simulation, independent of this
one), the share of posterior samples closer to ``theta_r`` than ``theta*`` is uniform when
the posterior is right, so the expected coverage of the balls around ``theta_r`` equals
their credibility at every level. Distances are taken after scaling each parameter by its
standard deviation over the simulations.

Both statistics are discrete uniforms on ``0 .. L`` under a correct posterior;
:class:`CalibrationResult` tests them with a chi-square test on ``bins`` equal groups of
ranks (``L + 1`` divisible by ``bins``), Bonferroni-corrected over the parameters and the
joint (TARP) test. Posterior samples come from the network alone (``method="proposal"``:
what neural posterior estimation would report) or from inference-compilation importance
sampling (``method="ic"``: ``ic_traces`` weighted traces, resampled to ``L``), which the
importance weights calibrate whatever the network's quality, given enough ESS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATION_FILE", "CalibrationResult", "calibrate"]

CALIBRATION_FILE = "calibration.json"
METHODS = ("proposal", "ic")


@dataclass
class CalibrationResult:
    """Ranks of the true parameters among posterior samples, over many simulations.

    Attributes:
        parameters: Parameter labels (``"mu"``; vector parameters ``"p[0]"``, ``"p[1]"``...).
        ranks: ``(simulations, parameters)`` ranks in ``0 .. num_samples`` (NaN where a
            simulation lacks the parameter).
        tarp_ranks: ``(simulations,)`` rank of the true parameters' distance to the
            reference point among the samples' distances (TARP).
        num_samples: Posterior samples ``L`` per simulation.
        method: ``"proposal"`` or ``"ic"``.
        model: The model's name.
        seed: The seed of the run.
        ess: Per simulation, the ESS of the importance weights (``method="ic"``).
        skipped: Simulations left out (an observation the network needs was missing).
    """

    parameters: list[str]
    ranks: np.ndarray
    tarp_ranks: np.ndarray
    num_samples: int
    method: str
    model: str = "model"
    seed: int | None = None
    ess: np.ndarray | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_simulations(self) -> int:
        """Simulations behind the ranks."""
        return int(self.ranks.shape[0])

    def default_bins(self) -> int:
        """The largest divisor of ``L + 1`` up to 20 leaving at least 5 simulations a bin."""
        n = self.num_samples + 1
        ok = [b for b in range(2, 21) if n % b == 0 and self.num_simulations / b >= 5]
        return max(ok) if ok else 1

    def histogram(self, column: np.ndarray, bins: int | None = None) -> np.ndarray:
        """Counts of ``column`` (ranks) in ``bins`` equal groups of ``0 .. L``."""
        bins = bins or self.default_bins()
        r = column[np.isfinite(column)].astype(int)
        groups = r * bins // (self.num_samples + 1)
        return np.bincount(groups, minlength=bins)

    def chi2_test(self, column: np.ndarray, bins: int | None = None) -> tuple[float, float]:
        """Chi-square statistic and p-value of ``column``'s rank histogram against uniform."""
        from scipy import stats

        counts = self.histogram(column, bins)
        if len(counts) < 2 or counts.sum() == 0:
            return float("nan"), float("nan")
        expected = counts.sum() / len(counts)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        return chi2, float(stats.chi2.sf(chi2, len(counts) - 1))

    def tests(self, bins: int | None = None) -> dict[str, tuple[float, float]]:
        """``label -> (chi-square, p-value)`` for each parameter and ``"joint (TARP)"``."""
        out = {p: self.chi2_test(self.ranks[:, i], bins) for i, p in enumerate(self.parameters)}
        out["joint (TARP)"] = self.chi2_test(self.tarp_ranks.astype(float), bins)
        return out

    def passed(self, level: float = 0.01, bins: int | None = None) -> bool:
        """Whether no test rejects uniformity at ``level`` (Bonferroni over all tests)."""
        p_values = [p for _, p in self.tests(bins).values() if np.isfinite(p)]
        return bool(p_values) and min(p_values) * len(p_values) >= level

    def coverage(self, levels: Sequence[float] | np.ndarray) -> dict[str, np.ndarray]:
        """Empirical coverage of central credible intervals (per parameter) and of TARP
        balls (``"joint (TARP)"``) at each credibility level: the diagonal if calibrated."""
        levels = np.asarray(levels, dtype=float)
        out: dict[str, np.ndarray] = {}
        for i, p in enumerate(self.parameters):
            u = self._pit(self.ranks[:, i])
            out[p] = np.array([np.mean(np.abs(u - 0.5) < c / 2) for c in levels])
        u = self._pit(self.tarp_ranks.astype(float))
        out["joint (TARP)"] = np.array([np.mean(u < c) for c in levels])
        return out

    def _pit(self, column: np.ndarray) -> np.ndarray:
        r = column[np.isfinite(column)]
        out: np.ndarray = (r + 0.5) / (self.num_samples + 1)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (ranks as lists, NaN as ``None``)."""

        def plain(a: np.ndarray) -> Any:
            return [None if not np.isfinite(x) else float(x) for x in np.ravel(a)]

        return {
            "format": "rotalumis-calibration",
            "parameters": self.parameters,
            "ranks": [plain(row) for row in self.ranks],
            "tarp_ranks": plain(self.tarp_ranks),
            "num_samples": self.num_samples,
            "method": self.method,
            "model": self.model,
            "seed": self.seed,
            "ess": None if self.ess is None else plain(self.ess),
            "skipped": self.skipped,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationResult:
        """Inverse of :meth:`to_dict`."""

        def arr(x: Any) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in x], dtype=float)

        ranks = np.array([arr(r) for r in d["ranks"]], dtype=float)
        return cls(
            list(d["parameters"]),
            ranks.reshape(len(d["ranks"]), len(d["parameters"])),
            arr(d["tarp_ranks"]),
            int(d["num_samples"]),
            str(d["method"]),
            str(d.get("model", "model")),
            d.get("seed"),
            None if d.get("ess") is None else arr(d["ess"]),
            int(d.get("skipped", 0)),
            dict(d.get("extra", {})),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file (atomically)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationResult:
        """Read a file written by :meth:`save`.

        Raises:
            DatasetError: if it is missing or not a calibration result.
        """
        from rotalumis.core import DatasetError

        try:
            d = json.loads(Path(path).read_text())
            if d.get("format") != "rotalumis-calibration":
                raise ValueError("not a rotalumis calibration file")
            return cls.from_dict(d)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"cannot read calibration result {path}: {exc}") from exc

    def summary(self, level: float = 0.01) -> str:
        """A few lines: the tests and the verdict."""
        lines = [
            f"{self.model}: {self.num_simulations} simulations, {self.num_samples} posterior "
            f"samples each ({self.method})"
        ]
        for label, (chi2, p) in self.tests().items():
            lines.append(f"  {label}: chi2 {chi2:.1f}, p = {p:.3g}")
        verdict = "calibrated" if self.passed(level) else "NOT calibrated"
        lines.append(f"  {verdict} (uniform ranks, level {level}, Bonferroni)")
        return "\n".join(lines)


def _flat(name: str, value: Any) -> dict[str, float]:
    a = np.asarray(value.tolist() if hasattr(value, "tolist") else value, dtype=float)
    if a.ndim == 0:
        return {name: float(a)}
    return {f"{name}[{i}]": float(x) for i, x in enumerate(a.ravel())}


def _rank(truth: float, samples: np.ndarray, rng: np.random.Generator) -> int:
    below = int(np.sum(samples < truth))
    ties = int(np.sum(samples == truth))
    return below + int(rng.integers(0, ties + 1))


def calibrate(
    model: Any,
    network: Any,
    num_simulations: int = 200,
    num_samples: int = 99,
    *,
    method: str = "proposal",
    ic_traces: int = 1000,
    seed: int = 0,
    parameters: Sequence[str] | None = None,
    model_args: tuple[Any, ...] = (),
    on_simulation: Any = None,
) -> CalibrationResult:
    """Simulation-based calibration (ranks) and TARP coverage of a network's posteriors.

    Args:
        model: The model the network was trained for.
        network: An :class:`~rotalumis.nn.InferenceNetwork` or the path of a saved one.
        num_simulations: Prior simulations (each a ``(theta*, y)`` pair).
        num_samples: Posterior samples ``L`` per simulation (``L + 1`` should have a
            divisor near 10-20: the histogram bins).
        method: ``"proposal"`` (the network alone) or ``"ic"`` (importance sampling).
        ic_traces: Importance-sampling traces per simulation (``method="ic"``).
        seed: Seed of the simulations, samples and tie-breaking.
        parameters: Named latents to check (default: every named latent in the samples).
        model_args: Arguments of ``model.forward``.
        on_simulation: Called as ``on_simulation(done, total)`` after each simulation.

    Returns:
        A :class:`CalibrationResult`.
    """
    from rotalumis.core import RNG, InvalidPolicy, SimulationCounter
    from rotalumis.core.rng import derive_seed
    from rotalumis.core.validity import simulate_valid
    from rotalumis.infer.ic import load_network

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for what, n in (("num_simulations", num_simulations), ("num_samples", num_samples)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"{what} must be an integer of at least 2, got {n!r}")
    net = load_network(network)
    names = [s.name for s in net.config.observations]
    traces = simulate_valid(
        model, RNG(derive_seed(seed, "sbc")), num_simulations, InvalidPolicy(),
        SimulationCounter(), model_args=model_args,
    )  # fmt: skip
    rng = np.random.default_rng(derive_seed(seed, "sbc-ranks"))
    truths: list[dict[str, float]] = []
    draws: list[dict[str, np.ndarray]] = []
    ess: list[float] = []
    skipped = 0
    for i, trace in enumerate(traces):
        observed = {v.name: v.value for v in trace.variables if v.kind == "observe" and v.name}
        if any(n not in observed for n in names):
            skipped += 1
            continue
        obs = {n: observed[n] for n in names}
        post, e = _posterior(model, net, obs, num_samples, method, ic_traces, seed, i, rng)
        truth: dict[str, float] = {}
        for name, value in trace.named_latents.items():
            truth.update(_flat(name, value))
        truths.append(truth)
        draws.append(post)
        ess.append(e)
        if on_simulation is not None:
            on_simulation(i + 1, len(traces))
    labels = _labels(truths, draws, parameters)
    ranks = np.full((len(truths), len(labels)), np.nan)
    for i, (truth, post) in enumerate(zip(truths, draws, strict=True)):
        for j, label in enumerate(labels):
            if label in truth and label in post:
                ranks[i, j] = _rank(truth[label], post[label], rng)
    tarp = _tarp_ranks(truths, draws, labels, rng)
    return CalibrationResult(
        labels, ranks, tarp, num_samples, method, model.name, seed,
        np.asarray(ess) if method == "ic" else None, skipped,
    )  # fmt: skip


def _posterior(
    model: Any,
    net: Any,
    obs: dict[str, Any],
    num_samples: int,
    method: str,
    ic_traces: int,
    seed: int,
    i: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], float]:
    from rotalumis.core.rng import derive_seed
    from rotalumis.nn import sample_proposal

    s = derive_seed(seed, "sbc-posterior", i)
    if method == "proposal":
        emp = sample_proposal(net, obs, num_samples, seed=s)
        idx = np.arange(num_samples)
        e = float(num_samples)
    else:
        emp = model.posterior(ic_traces, engine="ic", observe=obs, seed=s, network=net)
        w = np.asarray(emp.weights, dtype=float)
        idx = rng.choice(len(w), size=num_samples, p=w / w.sum())
        e = float(emp.ess)
    out: dict[str, np.ndarray] = {}
    for name in emp.latent_names:
        values = np.asarray(emp.get(name).to_numpy(), dtype=float)[idx]
        values = values.reshape(num_samples, -1)
        if values.shape[1] == 1:
            out[name] = values[:, 0]
        else:
            out.update({f"{name}[{k}]": values[:, k] for k in range(values.shape[1])})
    return out, e


def _labels(
    truths: list[dict[str, float]],
    draws: list[dict[str, np.ndarray]],
    parameters: Sequence[str] | None,
) -> list[str]:
    seen: dict[str, None] = {}
    for post in draws:
        seen.update(dict.fromkeys(post))
    labels = [x for x in seen if any(x in t for t in truths)]
    if parameters is not None:
        wanted = list(parameters)
        labels = [x for x in labels if x in wanted or x.split("[")[0] in wanted]
        missing = [p for p in wanted if not any(x.split("[")[0] == p or x == p for x in labels)]
        if missing:
            raise ValueError(
                f"no posterior samples of {', '.join(missing)} (latents: {', '.join(seen)})"
            )
    if not labels:
        raise ValueError("the posteriors have no named latent to calibrate")
    return labels


def _tarp_ranks(
    truths: list[dict[str, float]],
    draws: list[dict[str, np.ndarray]],
    labels: list[str],
    rng: np.random.Generator,
) -> np.ndarray:
    n = len(truths)
    chosen = [x for x in labels if all(x in t for t in truths) and all(x in d for d in draws)]
    if not chosen or n < 2:
        return np.full(n, np.nan)
    theta = np.array([[t[x] for x in chosen] for t in truths])
    scale = theta.std(axis=0)
    scale[scale == 0] = 1.0
    out = np.empty(n)
    for i in range(n):
        ref = theta[(i + 1) % n] / scale  # another simulation's truth: independent of this one
        samples = np.stack([draws[i][x] for x in chosen], axis=1) / scale
        d_samples = np.linalg.norm(samples - ref, axis=1)
        d_truth = float(np.linalg.norm(theta[i] / scale - ref))
        out[i] = _rank(d_truth, d_samples, rng)
    return out
